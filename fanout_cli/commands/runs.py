"""`fanout runs`, `fanout show` and `fanout clean`: what they find or remove, as data
(fanout_cli.results); render.runs prints it, nothing here prints."""

from __future__ import annotations

from pathlib import Path

from fanout_cli import history
from fanout_cli.aop import RunFolder, reader
from fanout_cli.aop.reader import RunInfo
from fanout_cli.errors import FanoutError, UsageError
from fanout_cli.results import CleanResult, RunView, TaskOutput, TaskView
from fanout_cli.values import parse_duration


def list_runs(output_dir: Path) -> list[RunInfo]:
    """The runs in the output folder, newest first."""
    return reader.list_runs(output_dir)


def show_run(output_dir: Path, name: str) -> RunView:
    run_dir = history.resolve_run(output_dir, name)
    return RunView(reader.run_info(run_dir), reader.task_rows(run_dir))


def show_task(output_dir: Path, name: str, task: str) -> TaskView:
    run_dir = history.resolve_run(output_dir, name)
    row = history.find_task(run_dir, task)
    # A merged run's tasks keep their files in the run they came from.
    task_dir = Path(row.get("run_dir") or run_dir)
    details_file = row.get("details_file")
    details = reader.read_details(task_dir, details_file) if details_file else {}
    record = details or {key: value for key, value in row.items() if key not in ("event",)}
    folder = RunFolder(task_dir)
    outputs = []
    for stream in ("stdout", "stderr"):
        info = details.get(stream)
        if isinstance(info, dict) and info.get("path"):
            path = Path(folder.member(str(info["path"])))
            outputs.append(TaskOutput(stream, info.get("bytes"), path))
    return TaskView(record, tuple(outputs))


def clean_runs(
    folder: Path, *, older_than: str | None, keep: int | None, everything: bool, dry_run: bool
) -> CleanResult:
    """Remove the runs the options choose (none with `dry_run`); runs in progress stay."""
    if older_than is None and keep is None and not everything:
        raise UsageError("say what to remove: --older-than DUR, --keep N or --all")
    try:
        age = None if older_than is None else parse_duration(older_than)
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None
    plan = history.plan_clean(folder, older_than=age, keep=keep, everything=everything)
    if dry_run:
        return CleanResult(folder, tuple(plan.remove), tuple(plan.busy), 0, dry_run=True)
    removed: list[RunInfo] = []
    freed = 0
    for run in plan.remove:
        try:
            freed += history.remove_run(folder, run)
        except (FanoutError, OSError) as exc:
            return CleanResult(folder, tuple(removed), tuple(plan.busy), freed, False, exc)
        removed.append(run)
    return CleanResult(folder, tuple(removed), tuple(plan.busy), freed, dry_run=False)
