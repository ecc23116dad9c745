"""Rendering: one RunReport (and the live events before it) as human text, AOP, JSON, JSONL.

Nothing else in fanout prints to stdout; errors go to stderr through `error_line`."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO

from fanout_cli.aop.documents import (
    iso_time,
    journal_row,
    json_bytes,
    json_with_tasks,
    report_row,
    verdict_document,
)
from fanout_cli.config import RunConfig
from fanout_cli.errors import OutputClosedError
from fanout_cli.models import RunReport, TaskResult, TaskSpec, TaskStatus
from fanout_cli.summaries import cap
from fanout_cli.template import display_command

if TYPE_CHECKING:  # runs/show/clean only; a plain run does not load history
    from fanout_cli.aop.reader import RunInfo
    from fanout_cli.history import CleanPlan
    from fanout_cli.timings import ShardPlan

RESULT_VERSION = 1
_COLORS = {
    TaskStatus.SUCCESS: "32",
    TaskStatus.FAILURE: "31",
    TaskStatus.TIMEOUT: "33",
    TaskStatus.CANCELLED: "90",
    TaskStatus.ERROR: "35",
}
_CODES = {str(status): code for status, code in _COLORS.items()}


def use_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty() and os.environ.get("TERM") != "dumb"


class Console:
    """The one place fanout writes its output."""

    def __init__(self, stream: TextIO | None = None, color: bool | None = None) -> None:
        self.closed = False  # its reader went away: nothing more is written
        self.stream = stream or sys.stdout
        self.color = use_color(self.stream) if color is None else color

    def line(self, text: str = "") -> None:
        # surrogateescape: bytes of input that are not UTF-8 go out as they came in.
        self.write_bytes((text + "\n").encode("utf-8", "surrogateescape"))

    def write_bytes(self, data: bytes) -> None:
        if self.closed:
            return
        buffer = getattr(self.stream, "buffer", None)
        try:
            if buffer is None:  # a text-only stream (tests); it cannot take raw bytes
                self.stream.write(data.decode("utf-8", "replace"))
            else:
                self.stream.flush()
                buffer.write(data)
                buffer.flush()
        except BrokenPipeError:  # the reader went away (`fanout run | head`)
            self.closed = True
            with contextlib.suppress(OSError, ValueError):
                # Whatever Python still holds for it (and flushes at exit) goes nowhere.
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
            raise OutputClosedError(str(getattr(self.stream, "name", "stdout"))) from None

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


def print_dry_run(
    console: Console, commands: Iterable[tuple[tuple[str, ...] | str, str | None]]
) -> None:
    """One pasteable command a line (with `cd DIR &&` when the task sets a cwd)."""
    batch: list[bytes] = []
    for command, cwd in commands:
        line = display_command(command)
        if cwd:
            line = f"cd {shlex.quote(cwd)} && {line}"
        batch.append(line.encode("utf-8", "surrogateescape") + b"\n")
        if len(batch) >= 1024:
            console.write_bytes(b"".join(batch))
            batch.clear()
    console.write_bytes(b"".join(batch))


def print_shard_plan(
    console: Console, plans: list[ShardPlan], shard: str | None, known: int
) -> None:
    """--dry-run --shard: every shard's size and estimated time, as shell comments."""
    count = sum(len(plan.tasks) for plan in plans)
    total = sum(plan.estimate for plan in plans)
    if known:
        basis = f"recorded durations of {known} of {count} tasks (the rest at their median)"
        if known == count:
            basis = "recorded durations of every task"
        console.line(f"# {len(plans)} shards by {basis}: {format_seconds(total)} in all, "
                     f"ideal {format_seconds(total / len(plans))} a shard")
    else:
        console.line(f"# {len(plans)} shards by task count: no recorded durations")
    for number, plan in enumerate(plans, start=1):
        marker = "  <- this shard" if f"{number}/{len(plans)}" == shard else ""
        tasks = len(plan.tasks)
        estimate = f", estimated {format_seconds(plan.estimate)}" if known else ""
        console.line(f"# shard {number}/{len(plans)}: {tasks} task{'s' * (tasks != 1)}"
                     f"{estimate}{marker}")


def write_run_junit(
    path: str,
    report: RunReport,
    rows: Iterable[Mapping[str, Any]] | None = None,
    properties: Mapping[str, str] | None = None,
) -> None:
    """--junit FILE of a run (its rows read back from disk, each with its folder) or of a
    merge (`rows` given). Raises StoreError naming the file when it cannot be written."""
    from fanout_cli.errors import StoreError
    from fanout_cli.junit import write_junit

    if rows is None:
        rows = ({**row, "run_dir": report.run_dir} for row in report.rows())
    try:
        write_junit(
            path,
            rows,
            suite=report.title,
            run_id=report.run_id,
            timestamp=report.started_at,
            duration=report.duration,
            shard=report.shard,
            properties=properties,
        )
    except OSError as exc:
        raise StoreError(f"--junit {path}: cannot write: {exc.strerror}") from None


def task_line(result: TaskResult) -> tuple[str, str]:
    """A task's line as it ends: its status (padded), and the rest."""
    duration = format_seconds(result.duration) if result.attempts else "-"
    retries = f" [{len(result.attempts)} attempts]" if len(result.attempts) > 1 else ""
    return f"{result.status:<9}", f" {result.task_id}  {duration}{retries}  {result.summary}"


def status_label(console: Console, label: str) -> str:
    """A (padded) status word in its colour."""
    code = _CODES.get(label.strip())
    return label if code is None else console.style(label, code)


class Renderer(Protocol):
    """Receives the run's events as they happen (runner.Listener), then its report."""

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None: ...

    def task_ended(self, result: TaskResult) -> None: ...

    def finish(self, report: RunReport) -> None: ...


class HumanRenderer:
    """A line per task as it ends, then the verdict line (in a pipe, a CI log; on a
    terminal, progress.LiveRenderer)."""

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
        label, rest = task_line(result)
        self.console.line(status_label(self.console, label) + rest)

    def finish(self, report: RunReport) -> None:
        for summary, count in self.not_started.items():
            tasks = f"{count} task{'s' * (count != 1)}"
            self.console.line(f"{self.console.style('cancelled', '90')} {tasks} {summary}")
        self.console.line(verdict_line(report, self.console))


def verdict_line(report: RunReport, console: Console) -> str:
    verdict = report.verdict
    word = console.style("PASS", "1;32") if verdict.passed else console.style("FAIL", "1;31")
    tasks = verdict.counts["tasks"]
    shard = f" of shard {report.shard}" if report.shard else ""
    return (
        f"{word} {verdict.strategy}: {verdict.reason} · {tasks} task{'s' * (tasks != 1)}{shard} "
        f"in {format_seconds(report.duration)} · {display_path(report.manifest_path)}"
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


# Set by CI services (CI by most of them); a live area would only fill their logs.
CI_VARIABLES = (
    "CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "CIRCLECI", "JENKINS_URL", "TF_BUILD",
)  # fmt: skip
ProgressMode = Literal["off", "terminal", "stderr"]


def in_ci(env: Mapping[str, str]) -> bool:
    """A CI service runs us. `CI=false` (or 0) is how a user says it does not."""
    return any(
        env.get(name, "").strip().lower() not in ("", "0", "false", "no") for name in CI_VARIABLES
    )


def terminal_streams(stdout: TextIO, stderr: TextIO) -> tuple[bool, bool]:
    """(stderr is a terminal, stdout is that same terminal)."""
    try:
        stderr_fd, stdout_fd = stderr.fileno(), stdout.fileno()
        if not os.isatty(stderr_fd):
            return False, False
        if not os.isatty(stdout_fd):
            return True, False
        return True, os.fstat(stdout_fd).st_rdev == os.fstat(stderr_fd).st_rdev
    except (AttributeError, OSError, ValueError):  # a stream with no file (tests), or closed
        return False, False


def progress_mode(
    config: RunConfig, env: Mapping[str, str], stderr_terminal: bool, stdout_same_terminal: bool
) -> ProgressMode:
    """The human format's live progress. `terminal`: a live area on stderr, task lines
    scrolling up above it, the run's table at the end. `stderr`: only the live area
    (--progress while stdout goes elsewhere: stdout keeps its plain lines). `off`: the
    plain lines, as in a pipe or a CI log."""
    if config.format != "human" or config.quiet or config.progress is False:
        return "off"
    if not stderr_terminal or env.get("TERM") == "dumb":
        return "off"
    if config.progress is None and (in_ci(env) or not stdout_same_terminal):
        return "off"
    return "terminal" if stdout_same_terminal else "stderr"


def make_renderer(config: RunConfig, console: Console, total: int | None = None) -> Renderer:
    """`total`: the number of tasks when known up front (the live bar's end)."""
    if config.format == "human" or config.quiet:
        mode = progress_mode(config, os.environ, *terminal_streams(console.stream, sys.stderr))
        if mode == "off":
            return HumanRenderer(console, config)
        from fanout_cli.progress import LiveRenderer  # only on a terminal: it brings rich

        return LiveRenderer(console, config, total, lines_on_stdout=mode == "stderr")
    if config.format == "jsonl":
        return JsonLinesRenderer(console)
    return SilentRenderer(console, config)


def json_chunks(report: RunReport) -> Iterator[bytes]:
    """The versioned result envelope; its task list streamed one compact line a task."""
    head = {
        "fanout_result_version": RESULT_VERSION,
        "run_id": report.run_id,
        "details_dir": report.run_dir,
        "manifest": report.manifest_path,
        "duration_ms": round(report.duration * 1000),
        "verdict": verdict_document(report),
    }
    return json_with_tasks(head, (report_row(row) for row in report.rows()))


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


# --- fanout runs / show / clean -----------------------------------------------------


def _started(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _verdict_word(run: RunInfo) -> str:
    if run.status in ("running", "crashed", "interrupted") and run.passed is not True:
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


def print_run(console: Console, run: RunInfo, rows: list[dict[str, Any]]) -> None:
    started = _started(run.started_at)
    console.line(f"run {run.run_id}: {run.title}  ({run.status}, started {started})")
    colors = {str(status): code for status, code in _COLORS.items()}
    for row in rows:
        status = str(row.get("status"))
        style = colors.get(status, "0")
        duration = format_seconds((row.get("duration_ms") or 0) / 1000)
        attempts = row.get("attempts") or 0
        tries = f" [{attempts} attempts]" if attempts > 1 else ""
        console.line(
            f"{console.style(f'{status:<9}', style)} {row.get('seq')}  {row.get('task_id')}  "
            f"{duration}{tries}  {row.get('summary')}"
        )
    verdict = "pass" if run.passed else ("fail" if run.passed is False else run.status)
    console.line(f"{verdict}: {run.tasks} tasks · {run.path}")


def print_task(console: Console, run_dir: Path, row: dict[str, Any]) -> None:
    """The details file, then the task's full stdout and stderr, byte for byte."""
    details_file = row.get("details_file")
    details: dict[str, Any] = {}
    if details_file:
        with contextlib.suppress(OSError, ValueError):
            details = json.loads((run_dir / details_file).read_bytes())
    record = details or {key: value for key, value in row.items() if key not in ("event",)}
    for key, value in record.items():
        shown = value
        if key in ("stdout", "stderr") and isinstance(value, dict):
            shown = f"{value.get('path')} ({value.get('bytes')} bytes)"
        elif isinstance(value, dict | list):
            shown = json.dumps(value, ensure_ascii=False)
        console.line(f"{key}: {shown}")
    for stream in ("stdout", "stderr"):
        info = details.get(stream)
        if not isinstance(info, dict) or not info.get("path"):
            continue
        path = run_dir / str(info["path"])
        console.line(f"----- {stream} ({info.get('bytes')} bytes, {path}) -----")
        with contextlib.suppress(FileNotFoundError), open(path, "rb") as handle:
            last = b"\n"
            while chunk := handle.read(1 << 16):
                console.write_bytes(chunk)
                last = chunk[-1:]
            if last != b"\n":
                console.write_bytes(b"\n")


def print_clean(console: Console, folder: Path, plan: CleanPlan, *, dry_run: bool) -> None:
    from fanout_cli.history import remove_run

    freed = 0
    for run in plan.remove:
        if dry_run:
            console.line(f"would remove {run.run_id}")
        else:
            freed += remove_run(folder, run)
            console.line(f"removed {run.run_id}")
    for run in plan.busy:
        console.line(f"kept {run.run_id}: still running")
    verb = "would remove" if dry_run else "removed"
    size = "" if dry_run else f", {freed / 1_048_576:.1f} MiB"
    runs = f"{len(plan.remove)} run{'s' * (len(plan.remove) != 1)}"
    console.line(f"{verb} {runs}{size} from {folder}")
