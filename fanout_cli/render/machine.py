"""The formats read by programs: the versioned JSON envelope, JSON lines as tasks
run, and the AOP v1.0 block."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from fanout_cli.aop.documents import (
    iso_time,
    journal_row,
    json_bytes,
    json_with_tasks,
    report_row,
    verdict_document,
)
from fanout_cli.interpret import cap
from fanout_cli.models import RunReport, TaskResult, TaskSpec
from fanout_cli.render.console import Console
from fanout_cli.render.lines import display_path, dry_run_line
from fanout_cli.render.reduce import reduce_document, reduce_summary_line

if TYPE_CHECKING:
    from fanout_cli.options import OutputOptions

RESULT_VERSION = 1
# What may end a line for some reader: C0 controls but TAB, and DEL (CR, VT, FF, FS, GS
# and RS among them, which str.splitlines() cuts at), C1 controls (NEL) and Unicode's
# line and paragraph separators; and a marker the block did not write itself.
_UNSAFE_IN_FIELD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]|\[AOP:")


def json_chunks(report: RunReport) -> Iterator[bytes]:
    """The versioned result envelope; its task list streamed one compact line a task."""
    head = {
        "fanout_result_version": RESULT_VERSION,
        "run_id": report.run_id,
        "details_dir": report.run_dir,
        "manifest": report.manifest_path,
        "duration_ms": round(report.duration * 1000),
        "verdict": verdict_document(report),
        "reduce": reduce_document(report),
        "tokens": None if report.tokens is None else dict(report.tokens),
    }
    return json_with_tasks(head, (report_row(row) for row in report.rows()))


def print_dry_run_plan(
    console: Console,
    record: Mapping[str, Any],
    commands: Iterable[tuple[tuple[str, ...] | str, str | None]],
) -> None:
    """--dry-run --shard --format json: the shard's plan record (what plan.json would
    hold) and the commands it would run, in the order they start, as one document."""
    document = {**record, "commands": [dry_run_line(command, cwd) for command, cwd in commands]}
    console.write_bytes(json_bytes(document, indent=2) + b"\n")


def print_report(
    console: Console, report: RunReport, output_format: str, max_lines: int, line_chars: int
) -> None:
    """The whole run at its end: the JSON envelope (`json`) or the AOP block (else)."""
    if output_format == "json":
        for chunk in json_chunks(report):
            console.write_bytes(chunk)
    else:
        for line in aop_lines(report, max_lines, line_chars):
            console.line(line)


def aop_status(report: RunReport) -> str:
    counts = report.verdict.counts
    if not report.verdict.passed:
        return "failure"
    return "success" if counts["success"] == counts["tasks"] else "partial"


def aop_lines(report: RunReport, max_lines: int, line_chars: int) -> list[str]:
    """The whole run as one AOP v1.0 inline block; failures first, then input order."""
    counts = report.verdict.counts
    lines = [
        f"[AOP:START] {_aop_time(report.started_at)}",
        f"[AOP:TASK] {one_line(report.title)}",
        "[AOP:SUMMARY]",
    ]
    lines += [cap(f"- {one_line(problem)}", line_chars) for problem in report.verdict.problems]
    if report.reduce is not None:  # the reduce's answer comes first
        lines.append(reduce_summary_line(report.reduce, one_line, line_chars))
    shown = 0
    for wanted_success in (False, True):  # two passes over the rows: failures, then the rest
        for row in report.rows():
            if (row["status"] == "success") != wanted_success or shown >= max_lines:
                continue
            shown += 1
            target = _pointers(row)
            text = f"- {row['status']} {one_line(row['task_id'])}: {one_line(row['summary'])}"
            lines.append(cap(text, line_chars) + target)
    if counts["tasks"] > shown:
        lines.append(f"... {counts['tasks'] - shown} more {_describe_rest(counts, shown)}")
    if not counts["tasks"]:
        lines.append("- no tasks")
    metrics = ", ".join(f"{name}: {value}" for name, value in counts.items())
    metrics += f", duration: {report.duration:.1f}s"
    if report.tokens is not None:  # the run had agent tasks: what they used
        tokens = report.tokens
        metrics += (f", input_tokens: {tokens['input_tokens']}, output_tokens: "
                    f"{tokens['output_tokens']}, total_tokens: {tokens['total_tokens']}, "
                    f"tokens_unknown: {tokens['unknown']}")  # fmt: skip
    lines += [
        f"[AOP:DETAILS_FILE] {one_line(display_path(report.manifest_path))}",
        f"[AOP:METRICS] {metrics}",
        f"[AOP:VERDICT] {'pass' if report.verdict.passed else 'fail'} "
        f"strategy={report.verdict.strategy}",
        f"[AOP:STATUS] {aop_status(report)}",
        f"[AOP:END] {_aop_time(report.finished_at)}",
    ]
    return lines


def _pointers(row: Mapping[str, Any]) -> str:
    """` -> DETAILS; stdout FILE (N bytes, M lines)`: where a task's record and output
    are, and how much output (an earlier run's rows may not say: then less)."""
    if not row["details_file"]:
        return ""
    target = f" -> {one_line(row['details_file'])}"
    stdout, size, lines = row.get("stdout_file"), row.get("stdout_bytes"), row.get("stdout_lines")
    if not stdout or not isinstance(size, int) or not isinstance(lines, int):
        return target
    amount = f"{size} byte{'s' * (size != 1)}, {lines} line{'s' * (lines != 1)}"
    return f"{target}; stdout {one_line(stdout)} ({amount})"


def one_line(text: str) -> str:
    """A field of the AOP block as one line that cannot pass for a marker: line breaks
    and other control characters become escapes such as `\\n` or `\\u2028`, and
    `[AOP:` becomes `[AOP\\:`, so that whatever a command, id, summary or path holds,
    an agent reading the block finds each marker once, where fanout wrote it."""
    return _UNSAFE_IN_FIELD.sub(_escape_in_field, text)


def _escape_in_field(match: re.Match[str]) -> str:
    found = match.group(0)
    if found == "[AOP:":
        return "[AOP\\:"
    code = ord(found)
    return {"\n": "\\n", "\r": "\\r"}.get(found) or (
        f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    )


def _describe_rest(counts: Mapping[str, int], shown: int) -> str:
    """What the lines not shown hold (failures were listed first)."""
    hidden = counts["tasks"] - shown
    hidden_failures = max(counts["tasks"] - counts["success"] - shown, 0)
    if not hidden_failures:
        return "succeeded"
    return f"({hidden_failures} not succeeded, {hidden - hidden_failures} succeeded)"


def _aop_time(epoch: float) -> str:
    stamp = iso_time(epoch) or ""
    return stamp[:19] + "Z"


class JsonLinesRenderer:
    """One JSON event per line as tasks start and end, then the run's end."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def emit(self, event: dict[str, Any]) -> None:
        self.console.write_bytes(json_bytes(event) + b"\n")

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None:
        self.emit({"event": "task_started", "seq": spec.seq, "task_id": spec.task_id,
                   "attempt": attempt, "slot": slot})

    def task_ended(self, result: TaskResult) -> None:
        self.emit({"event": "task_ended", **report_row(journal_row(result))})

    def finish(self, report: RunReport) -> None:
        self.emit({"event": "run_ended", "run_id": report.run_id, "details_dir": report.run_dir,
                   "verdict": verdict_document(report), "reduce": reduce_document(report)})


class SilentRenderer:
    """Formats that print only at the end: aop and json."""

    def __init__(self, console: Console, output: OutputOptions) -> None:
        self.console = console
        self.output = output

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None:
        pass

    def task_ended(self, result: TaskResult) -> None:
        pass

    def finish(self, report: RunReport) -> None:
        output = self.output
        print_report(self.console, report, output.format, output.max_lines, output.summary_chars)
