"""`fanout runs`, `fanout show` and `fanout clean`, printed from what the commands return."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from fanout_cli.aop.documents import iso_time
from fanout_cli.render.console import Console, plain_text
from fanout_cli.render.lines import format_seconds, status_code

if TYPE_CHECKING:  # the types only, not their modules
    from fanout_cli.aop.reader import RunInfo
    from fanout_cli.results import CleanResult, RunView, TaskView


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
    verdict = "pass" if run.passed else ("fail" if run.passed is False else run.status)
    console.line(f"{verdict}: {run.tasks} tasks · {run.path}")


def print_task(console: Console, view: TaskView) -> None:
    """The details file, then the task's full stdout and stderr, byte for byte."""
    for key, value in view.record.items():
        shown: Any = value
        if key in ("stdout", "stderr") and isinstance(value, dict):
            shown = f"{value.get('path')} ({value.get('bytes')} bytes)"
        elif isinstance(value, dict | list):
            shown = json.dumps(value, ensure_ascii=False)
        console.line(f"{key}: {shown}")
    for output in view.outputs:
        console.line(f"----- {output.stream} ({output.size} bytes, {output.path}) -----")
        last = b"\n"
        for chunk in output.chunks():
            console.write_bytes(chunk)
            last = chunk[-1:]
        if last != b"\n":
            console.write_bytes(b"\n")


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
