"""The reduce step as the formats print it: its output whole after the verdict (human;
with -q, its output alone), its object in the JSON envelope, its line in the AOP
block, and what --dry-run says it would run.

The output is read back from the run folder (no-follow) and copied a chunk at a time:
a reduce that prints gigabytes costs no memory here."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fanout_cli.models import ReduceResult, RunReport
from fanout_cli.render.console import Console

if TYPE_CHECKING:
    from fanout_cli.reduce.execute import Reduce

JSON_OUTPUT_LIMIT = 1 << 20  # of the reduce's output in --format json (the rest: its file)
_CHUNK = 1 << 16


def print_with_reduce(
    console: Console, report: RunReport, verdict_line: Callable[[RunReport, Console], str],
    quiet: bool,
) -> None:  # fmt: skip
    """The verdict line, then the reduce's output whole. With -q only the output: the
    verdict line then goes to stderr, and only when the run failed."""
    if not quiet:
        console.line(verdict_line(report, console))
    elif not report.verdict.passed:
        stderr = Console(sys.stderr)
        stderr.line(verdict_line(report, stderr))
    print_reduce_output(console, report)


def print_reduce_output(console: Console, report: RunReport) -> None:
    """The reduce's stdout, byte for byte (nothing when it printed nothing), and a line
    end after it when it has none (an agent's reply seldom does)."""
    if report.reduce is None:
        return
    descriptor = _open_output(report)
    if descriptor is None:
        return
    last = b"\n"
    with open(descriptor, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            console.write_bytes(chunk)
            last = chunk[-1:]
    if last != b"\n":
        console.write_bytes(b"\n")


def _open_output(report: RunReport) -> int | None:
    from fanout_cli.aop import RunFolder

    assert report.reduce is not None
    try:
        return RunFolder(report.run_dir).open(report.reduce.stdout_file)
    except OSError:  # none written (an agent that failed), or a link planted there
        return None


def reduce_document(report: RunReport) -> dict[str, Any] | None:
    """`"reduce"` of the JSON envelope: its entry, and its output (the first MiB)."""
    if report.reduce is None:
        return None
    from fanout_cli.reduce.record import reduce_entry

    document = reduce_entry(report.reduce)
    data = b""
    descriptor = _open_output(report)
    if descriptor is not None:
        with open(descriptor, "rb") as handle:
            data = handle.read(JSON_OUTPUT_LIMIT)
    document["output"] = data.decode("utf-8", "replace")
    document["output_truncated"] = report.reduce.stdout_bytes > len(data)
    return document


def reduce_summary_line(reduce: ReduceResult, one_line: Callable[[str], str], chars: int) -> str:
    """The AOP block's first SUMMARY line: `- success reduce: SUMMARY -> reduce.json`."""
    from fanout_cli.interpret import cap

    text = cap(f"- {reduce.status} reduce: {one_line(reduce.summary)}", chars)
    return f"{text} -> {reduce.details_file}"


def print_dry_run_reduce(console: Console, reduce: Reduce) -> None:
    """After the commands: the reduce that would run, as a shell comment."""
    step = reduce.step
    when = {"pass": "when the verdict passes", "fail": "when the verdict fails",
            "always": "whatever the verdict"}[step.when]  # fmt: skip
    if step.command is not None:
        from fanout_cli.models import display_command

        what = display_command(step.command)
    else:
        call = reduce.call(step.prompt or "")
        what = (f"one agent call (provider {call.provider}, model {call.model}, {{outputs}} "
                f"capped at {step.max_bytes} bytes): {step.prompt}")
    text = f"# then, {when}, the reduce: {what}"
    console.line(text.replace("\n", "\\n"))
