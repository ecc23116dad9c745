"""Rendering: one RunReport (and the live events before it) as human text, AOP, JSON, JSONL.

Nothing else in fanout prints to stdout; errors go to stderr through `error_line`."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

from fanout_cli.config import RunConfig
from fanout_cli.models import RunReport, TaskResult, TaskSpec, TaskStatus
from fanout_cli.store import iso_time, journal_row, json_bytes, report_row, verdict_document
from fanout_cli.summaries import cap

RESULT_VERSION = 1
_COLORS = {
    TaskStatus.SUCCESS: "32",
    TaskStatus.FAILURE: "31",
    TaskStatus.TIMEOUT: "33",
    TaskStatus.CANCELLED: "90",
    TaskStatus.ERROR: "35",
}


def use_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty() and os.environ.get("TERM") != "dumb"


class Console:
    """The one place fanout writes its output."""

    def __init__(self, stream: TextIO | None = None, color: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.color = use_color(self.stream) if color is None else color

    def line(self, text: str = "") -> None:
        # surrogateescape: bytes of input that are not UTF-8 go out as they came in.
        self.write_bytes((text + "\n").encode("utf-8", "surrogateescape"))

    def write_bytes(self, data: bytes) -> None:
        buffer = getattr(self.stream, "buffer", None)
        if buffer is None:  # a text-only stream (tests); it cannot take raw bytes
            self.stream.write(data.decode("utf-8", "replace"))
        else:
            self.stream.flush()
            buffer.write(data)
            buffer.flush()

    def style(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text


def error_line(message: str) -> None:
    sys.stderr.write(f"fanout: error: {message}\n")
    sys.stderr.flush()


def display_path(path: str) -> str:
    """Relative to the current folder when inside it: shorter, and still copy-pastable."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def format_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 600:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def print_dry_run(console: Console, specs: Iterable[TaskSpec]) -> None:
    """One pasteable command a line (with `cd DIR &&` when the task sets a cwd)."""
    batch: list[bytes] = []
    for spec in specs:
        line = spec.display_command()
        if spec.cwd:
            line = f"cd {shlex.quote(spec.cwd)} && {line}"
        batch.append(line.encode("utf-8", "surrogateescape") + b"\n")
        if len(batch) >= 1024:
            console.write_bytes(b"".join(batch))
            batch.clear()
    console.write_bytes(b"".join(batch))


class HumanRenderer:
    """A line per task as it ends, then the verdict line."""

    def __init__(self, console: Console, config: RunConfig) -> None:
        self.console = console
        self.quiet = config.quiet
        self.not_started: dict[str, int] = {}  # status -> count, shown as one line

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None:
        pass

    def task_ended(self, result: TaskResult) -> None:
        if self.quiet:
            return
        if not result.attempts:
            self.not_started[result.summary] = self.not_started.get(result.summary, 0) + 1
            return
        status = self.console.style(f"{result.status:<9}", _COLORS[result.status])
        duration = format_seconds(result.duration) if result.attempts else "-"
        retries = f" [{len(result.attempts)} attempts]" if len(result.attempts) > 1 else ""
        self.console.line(f"{status} {result.task_id}  {duration}{retries}  {result.summary}")

    def finish(self, report: RunReport) -> None:
        for summary, count in self.not_started.items():
            tasks = f"{count} task{'s' * (count != 1)}"
            self.console.line(f"{self.console.style('cancelled', '90')} {tasks} {summary}")
        self.console.line(verdict_line(report, self.console))


def verdict_line(report: RunReport, console: Console) -> str:
    verdict = report.verdict
    word = console.style("PASS", "1;32") if verdict.passed else console.style("FAIL", "1;31")
    tasks = verdict.counts["tasks"]
    return (
        f"{word} {verdict.strategy}: {verdict.reason} · {tasks} task{'s' * (tasks != 1)} in "
        f"{format_seconds(report.duration)} · {display_path(report.manifest_path)}"
    )


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
        self.emit({"event": "run_ended", "run_id": report.run_id,
                   "details_dir": report.run_dir, "verdict": verdict_document(report)})


class SilentRenderer:
    """Formats that print only at the end: aop and json."""

    def __init__(self, console: Console, config: RunConfig) -> None:
        self.console = console
        self.config = config

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None:
        pass

    def task_ended(self, result: TaskResult) -> None:
        pass

    def finish(self, report: RunReport) -> None:
        if self.config.format == "json":
            for chunk in json_chunks(report):
                self.console.write_bytes(chunk)
        else:
            for line in aop_lines(report, self.config.max_lines, self.config.summary_chars):
                self.console.line(line)


Renderer = HumanRenderer | JsonLinesRenderer | SilentRenderer


def make_renderer(config: RunConfig, console: Console) -> Renderer:
    if config.format == "human" or config.quiet:
        return HumanRenderer(console, config)
    if config.format == "jsonl":
        return JsonLinesRenderer(console)
    return SilentRenderer(console, config)


def json_chunks(report: RunReport) -> Iterator[bytes]:
    """The versioned result envelope; its task list streamed one compact line a task."""
    head = json_bytes(
        {
            "fanout_result_version": RESULT_VERSION,
            "run_id": report.run_id,
            "details_dir": report.run_dir,
            "manifest": report.manifest_path,
            "duration_ms": round(report.duration * 1000),
            "verdict": verdict_document(report),
        },
        indent=2,
    )
    yield head[: head.rindex(b"}")].rstrip() + b',\n  "tasks": ['
    separator = b"\n    "
    for row in report.rows():
        yield separator + json_bytes(report_row(row))
        separator = b",\n    "
    yield b"\n  ]\n}\n"


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
        f"[AOP:TASK] {report.title}",
        "[AOP:SUMMARY]",
    ]
    shown = 0
    for wanted_success in (False, True):  # two passes over the rows: failures, then the rest
        for row in report.rows():
            if (row["status"] == "success") != wanted_success or shown >= max_lines:
                continue
            shown += 1
            target = f" -> {row['details_file']}" if row["details_file"] else ""
            line = cap(f"- {row['status']} {row['task_id']}: {row['summary']}", line_chars)
            lines.append(line + target)
    if counts["tasks"] > shown:
        lines.append(f"... {counts['tasks'] - shown} more {_describe_rest(counts, shown)}")
    if not counts["tasks"]:
        lines.append("- no tasks")
    metrics = ", ".join(f"{name}: {value}" for name, value in counts.items())
    lines += [
        f"[AOP:DETAILS_FILE] {display_path(report.manifest_path)}",
        f"[AOP:METRICS] {metrics}, duration: {report.duration:.1f}s",
        f"[AOP:VERDICT] {'pass' if report.verdict.passed else 'fail'} "
        f"strategy={report.verdict.strategy}",
        f"[AOP:STATUS] {aop_status(report)}",
        f"[AOP:END] {_aop_time(report.finished_at)}",
    ]
    return lines


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
