"""`fanout runs`, `fanout show` and `fanout clean`, printed from what the commands return."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fanout_cli.aop import REPORT
from fanout_cli.aop.documents import iso_time, json_bytes
from fanout_cli.render.console import Console, plain_text
from fanout_cli.render.lines import display_path, format_seconds, status_code

if TYPE_CHECKING:  # the types only, not their modules
    from fanout_cli.aop.reader import RunInfo
    from fanout_cli.results import CleanResult, ReportResult, RunView, TaskView

PROMPT_CHARS = 200  # of an agent task's prompt, in `show`'s header


def _started(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _verdict_word(run: RunInfo) -> str:
    stopped = ("running", "crashed", "interrupted", "io_error", "input_error")
    if run.status in stopped and run.passed is not True:
        return run.status
    return "pass" if run.passed else "fail"


def print_runs(console: Console, runs: list[RunInfo], *, as_json: bool) -> None:
    if as_json:
        for run in runs:
            console.line(json.dumps({
                "run_id": run.run_id, "path": str(run.path), "started_at": iso_time(run.started_at),
                "status": run.status, "tasks": run.tasks, "passed": run.passed,
                "duration_ms": run.duration_ms,
            }))  # fmt: skip
        return
    if not runs:
        console.line("no runs yet")
        return
    width = max(len(run.run_id) for run in runs)
    console.line(f"{'RUN':<{width}}  {'STARTED':<19}  {'TASKS':>6}  {'VERDICT':<11}  DURATION")
    for run in runs:
        duration = "-" if run.duration_ms is None else format_seconds(run.duration_ms / 1000)
        console.line(
            f"{run.run_id:<{width}}  {_started(run.started_at):<19}  {run.tasks:>6}  "
            f"{_verdict_word(run):<11}  {duration}"
        )


def print_run(console: Console, view: RunView) -> None:
    run = view.info
    started = _started(run.started_at)
    console.line(f"run {run.run_id}: {plain_text(run.title)}  ({run.status}, started {started})")
    for row in view.rows:
        status = str(row.get("status"))
        style = status_code(status) or "0"
        duration = format_seconds((row.get("duration_ms") or 0) / 1000)
        attempts = row.get("attempts") or 0
        tries = f" [{attempts} attempts]" if attempts > 1 else ""
        console.line(
            f"{console.style(f'{status:<9}', style)} {row.get('seq')}  "
            f"{plain_text(row.get('task_id'))}  {duration}{tries}  {plain_text(row.get('summary'))}"
        )
    drawn = run.path / REPORT
    if drawn.is_file() and not drawn.is_symlink():
        console.line(f"report: {display_path(str(drawn))} "
                     f"(fanout report {run.run_id} draws it again)")
    else:
        console.line(f"report: fanout report {run.run_id} draws its timeline as an HTML page")
    verdict = "pass" if run.passed else ("fail" if run.passed is False else run.status)
    console.line(f"{verdict}: {run.tasks} tasks · {run.path}")


def print_rows_json(console: Console, view: RunView) -> None:
    """`fanout show RUN --json`: one JSON object a task, as the manifest keeps it."""
    for row in view.rows:
        console.write_bytes(json_bytes(row) + b"\n")


def print_task_json(console: Console, view: TaskView) -> None:
    """`fanout show RUN TASK --json`: the task's whole record (its details document)."""
    console.write_bytes(json_bytes(dict(view.record), indent=2) + b"\n")


def print_task(console: Console, view: TaskView) -> None:
    """A few lines on the task, then its stdout and its stderr, byte for byte, each
    under a line naming it (none for an empty one)."""
    record = view.record
    status = str(record.get("status"))
    console.line(f"{console.style(status, status_code(status) or '0')}  {task_line(record)}")
    for line in task_header(view):
        console.line(line)
    for output in view.outputs:
        chunks = output.chunks()
        first = next(chunks, b"")
        if not first:
            continue
        console.line(f"----- {output.stream} -----")
        console.write_bytes(first)
        last = first[-1:]
        for chunk in chunks:
            console.write_bytes(chunk)
            last = chunk[-1:]
        if last != b"\n":
            console.write_bytes(b"\n")


def task_line(record: Mapping[str, Any]) -> str:
    """The id, seq, how it ended, its duration and attempts (after its status). The
    record is read from disk: a value of the wrong type counts as missing."""
    attempts, milliseconds = record.get("attempts"), record.get("duration_ms")
    count = len(attempts) if isinstance(attempts, list) else attempts
    count = count if isinstance(count, int) else 0
    duration = format_seconds(milliseconds / 1000 if isinstance(milliseconds, int | float) else 0)
    return (f"{plain_text(record.get('task_id'))}  seq {record.get('seq')}  {_outcome(record)}  "
            f"{duration}  {count} attempt{'s' * (count != 1)}")  # fmt: skip


def task_header(view: TaskView) -> list[str]:
    """The command (as a shell reads it), the summary and the task's files."""
    record = view.record
    lines = [f"summary: {plain_text(record.get('summary'))}"]
    scorer = record.get("scorer")
    if isinstance(scorer, dict) and scorer.get("error"):
        lines.append(f"scorer failed: {plain_text(scorer.get('error'))}")
    command = _command(record)
    if command:
        lines.insert(0, command)
    if view.details is not None:
        lines.append(f"details: {plain_text(display_path(str(view.details)))}")
    for output in view.outputs:
        lines.append(f"{output.stream}: {plain_text(display_path(str(output.path)))} "
                     f"({_size(output.size, output.lines)})")  # fmt: skip
    return lines


def _outcome(record: Mapping[str, Any]) -> str:
    """`exit 3`, `signal 9 (SIGKILL)`, and why it failed when that says more."""
    code, number, reason = record.get("exit_code"), record.get("signal"), record.get("reason")
    parts = []
    if isinstance(number, int):
        parts.append(f"signal {number}{_signal_name(number)}")
    elif code is not None:
        parts.append(f"exit {code}")
    if reason and not str(reason).startswith(("exit ", "signal ")):
        parts.append(plain_text(reason))
    return ", ".join(parts) or "not started"


def _signal_name(number: int) -> str:
    import signal  # only `show` of a task a signal ended

    try:
        return f" ({signal.Signals(number).name})"
    except (ValueError, OverflowError):
        return ""


def _command(record: Mapping[str, Any]) -> str | None:
    """`command: WORDS` quoted for a shell (a string command is shell text already),
    after `cd DIR &&` when the task ran elsewhere; `prompt: ...` for an agent call."""
    from fanout_cli.replacements import shell_word  # only `show` of one task

    command = record.get("command")
    if isinstance(command, list):
        text = " ".join(shell_word(str(word)) for word in command)
    elif isinstance(command, str):
        text = command
    elif isinstance(record.get("prompt"), str):
        prompt = str(record["prompt"])
        cut = "…" if len(prompt) > PROMPT_CHARS else ""
        return f"prompt: {plain_text(prompt[:PROMPT_CHARS])}{cut}"
    else:
        return None
    cwd = record.get("cwd")
    if isinstance(cwd, str) and cwd:
        text = f"cd {shell_word(cwd)} && {text}"
    return f"command: {plain_text(text)}"


def _size(size: object, lines: object) -> str:
    if not size:
        return "empty" if size == 0 else "size unknown"
    if not isinstance(lines, int):
        return f"{size} bytes"
    return f"{size} bytes, {lines} line{'s' * (lines != 1)}"


def print_clean(console: Console, result: CleanResult) -> None:
    """A line per run removed (or that would be), per run kept, then the total. When
    removing stopped part way, only the runs removed before it."""
    verb = "would remove" if result.dry_run else "removed"
    for run in result.removed:
        console.line(f"{verb} {run.run_id}")
    if result.error is not None:
        return
    for run in result.busy:
        console.line(f"kept {run.run_id}: still running")
    size = "" if result.dry_run else f", {result.freed_bytes / 1_048_576:.1f} MiB"
    runs = f"{len(result.removed)} run{'s' * (len(result.removed) != 1)}"
    console.line(f"{verb} {runs}{size} from {result.folder}")


def print_report(console: Console, result: ReportResult) -> None:
    """`fanout report`: a warning for what could not be read, then where the page is."""
    from fanout_cli.render.console import warn

    for note in result.notes:
        warn(note)
    if result.status == "running":
        warn(f"run {result.run_id} is still going: the report draws what has happened so far")
    if result.page is not None:  # --output -: the page is the output
        console.write_bytes(result.page)
        return
    size = f"{result.size / 1024:.0f} KiB" if result.size < 1_048_576 else \
        f"{result.size / 1_048_576:.1f} MiB"  # fmt: skip
    detail = {"compact": "; bars are not links", "aggregate": "; aggregated"}.get(result.mode, "")
    tasks = f"{result.tasks} task{'s' * (result.tasks != 1)}"
    attempts = f"{result.attempts} attempt{'s' * (result.attempts != 1)}"
    console.line(f"report: {display_path(result.path)} ({tasks}, {attempts}, {size}{detail})")
