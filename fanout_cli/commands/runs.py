"""`fanout runs`, `fanout show` and `fanout clean`: what they find or remove, as data
(fanout_cli.results); render.runs prints it, nothing here prints."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from fanout_cli import history
from fanout_cli.aop import JOURNAL, LOCK, MANIFEST, TASK_LIST, TIMINGS, reader
from fanout_cli.aop.files import NOT_A_NAME, RunFolderError, is_plain_name
from fanout_cli.aop.reader import RunInfo
from fanout_cli.errors import FanoutError, UsageError
from fanout_cli.results import CleanResult, RunView, TaskOutput, TaskView
from fanout_cli.values import parse_duration

# The files of a run folder that stand for the run, not for one of its tasks.
RUN_FILES = (MANIFEST, JOURNAL, TASK_LIST, LOCK, TIMINGS)


def list_runs(output_dir: Path) -> list[RunInfo]:
    """The runs in the output folder that can be read, newest first (a warning for
    each of the others)."""
    return history.readable_runs(output_dir)


def show_target(run: str, task: str | None) -> tuple[str, str | None]:
    """RUN and TASK as `fanout show` was given them, with the task a file path names
    when RUN is a task's file (`.cache/agent-outputs/R/0003-e2e.json`) and no TASK
    is given."""
    found = history.run_folder_of(run)
    if task is None and found is not None and found[1] not in (None, *RUN_FILES):
        return str(found[0]), found[1]
    return run, task


def show_run(output_dir: Path, name: str) -> RunView:
    run_dir = history.resolve_run(output_dir, name)
    return RunView(reader.run_info(run_dir), reader.task_rows(run_dir))


def show_task(output_dir: Path, name: str, task: str) -> TaskView:
    """A task's details and output files. Every file is in a run folder (a merged run's
    task: the run it came from) and named by a plain name: RunFolderError otherwise,
    before anything is printed."""
    run_dir = history.resolve_run(output_dir, name)
    row = _task_or_reduce(run_dir, task)
    task_dir = history.task_folder(run_dir, row)
    details_file = row.get("details_file")
    details = reader.read_details(task_dir, details_file) if details_file else {}
    record = details or {key: value for key, value in row.items() if key not in ("event",)}
    outputs = []
    for stream in ("stdout", "stderr"):
        info = details.get(stream)
        if isinstance(info, dict) and info.get("path"):
            outputs.append(_output(task_dir, details_file, stream, info))
    details_path = task_dir / str(details_file) if details else None
    return TaskView(record, tuple(outputs), details_path)


def _task_or_reduce(run_dir: Path, task: str) -> dict[str, Any]:
    """The task `task` names; or, when no task is called so, `reduce` (or the name of
    its record) is the run's reduce step, shown as a task is."""
    from fanout_cli.reduce.record import DETAILS

    try:
        return history.find_task(run_dir, task)
    except UsageError:
        if task not in ("reduce", DETAILS) or not (run_dir / DETAILS).is_file():
            raise
    return {"task_id": "reduce", "details_file": DETAILS}


def _output(task_dir: Path, details_file: object, stream: str, info: dict[str, Any]) -> TaskOutput:
    name = info["path"]
    if not is_plain_name(name):
        raise RunFolderError(
            f"{task_dir / str(details_file)}: {stream}.path {name!r}: {NOT_A_NAME}"
        )
    with contextlib.suppress(FileNotFoundError):
        reader.open_file(task_dir, name).close()  # a link or a FIFO: refused here
    return TaskOutput(stream, info.get("bytes"), task_dir, name, info.get("lines"))


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
