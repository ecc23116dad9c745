"""Rendering: one RunReport (and the live events before it) as human text, AOP, JSON, JSONL.

Nothing else in fanout prints to stdout; errors go to stderr through `error_line`."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from fanout_cli.config import RunConfig
from fanout_cli.models import RunReport, TaskResult, TaskSpec, TaskStatus
from fanout_cli.store import iso_time, task_row, verdict_document
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
        self.stream.write(text + "\n")
        self.stream.flush()

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


class HumanRenderer:
    """A line per task as it ends, then the verdict line."""

    def __init__(self, console: Console, config: RunConfig) -> None:
        self.console = console
        self.quiet = config.quiet

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None:
        pass

    def task_ended(self, result: TaskResult) -> None:
        if self.quiet:
            return
        status = self.console.style(f"{result.status:<9}", _COLORS[result.status])
        duration = format_seconds(result.duration) if result.attempts else "-"
        retries = f" [{len(result.attempts)} attempts]" if len(result.attempts) > 1 else ""
        self.console.line(f"{status} {result.task_id}  {duration}{retries}  {result.summary}")

    def finish(self, report: RunReport) -> None:
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
        self.console.line(json.dumps(event, ensure_ascii=False))

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None:
        self.emit({"event": "task_started", "seq": spec.seq, "task_id": spec.task_id,
                   "attempt": attempt, "slot": slot})

    def task_ended(self, result: TaskResult) -> None:
        self.emit({"event": "task_ended", **task_row(result)})

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
            self.console.line(json.dumps(json_document(report), indent=2, ensure_ascii=False))
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


def json_document(report: RunReport) -> dict[str, Any]:
    return {
        "fanout_result_version": RESULT_VERSION,
        "run_id": report.run_id,
        "details_dir": report.run_dir,
        "manifest": report.manifest_path,
        "duration_ms": round(report.duration * 1000),
        "verdict": verdict_document(report),
        "tasks": [task_row(result) for result in report.results],
    }


def aop_status(report: RunReport) -> str:
    if not report.verdict.passed:
        return "failure"
    everyone = all(result.status is TaskStatus.SUCCESS for result in report.results)
    return "success" if everyone else "partial"


def aop_lines(report: RunReport, max_lines: int, line_chars: int) -> list[str]:
    """The whole run as one AOP v1.0 inline block; failures first, then input order."""
    counts = report.verdict.counts
    ordered = sorted(report.results, key=lambda r: (r.status is TaskStatus.SUCCESS, r.seq))
    shown, rest = ordered[:max_lines], ordered[max_lines:]
    lines = [
        f"[AOP:START] {_aop_time(report.started_at)}",
        f"[AOP:TASK] {report.title}",
        "[AOP:SUMMARY]",
    ]
    for result in shown:
        target = f" -> {result.details_file}" if result.details_file else ""
        line = cap(f"- {result.status} {result.task_id}: {result.summary}", line_chars)
        lines.append(line + target)
    if rest:
        lines.append(f"... {len(rest)} more {_describe_statuses(rest)}")
    if not report.results:
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


def _describe_statuses(results: list[TaskResult]) -> str:
    statuses = {str(result.status) for result in results}
    if statuses == {"success"}:
        return "succeeded"
    tally: dict[str, int] = {}
    for result in results:
        tally[str(result.status)] = tally.get(str(result.status), 0) + 1
    return "(" + ", ".join(f"{count} {status}" for status, count in tally.items()) + ")"


def _aop_time(epoch: float) -> str:
    stamp = iso_time(epoch) or ""
    return stamp[:19] + "Z"
