"""`fanout cat RUN [TASK...]`: which output files to print, and in which order, as data
(fanout_cli.results.CatRun); render.cat prints them. Nothing here prints.

The final attempt's file of each task: `<seq>-<slug>.stdout` beside the task's details
file (an earlier attempt's is `.aN.stdout`, never printed). The run's tasks in input
order, read one at a time (aop.rows), or the TASKs named, in the order given (as cat(1)
prints its files). Every file is opened through aop, never through a link planted in
the run folder."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fanout_cli import history
from fanout_cli.aop import MANIFEST, RunFolder, output_names_of, reader
from fanout_cli.aop.checks import TASK_STATUSES
from fanout_cli.aop.files import RunFolderError, UnsafeFile
from fanout_cli.aop.rows import rows_in_input_order
from fanout_cli.errors import UsageError
from fanout_cli.models import STATUS_ORDER
from fanout_cli.render.tags import tag_of
from fanout_cli.results import CatOutput, CatRun

# Run folders kept open at once (a merged run's tasks are in the runs it came from);
# the folders after these are opened for each file.
_HELD_FOLDERS = 64


def parse_statuses(values: Sequence[str]) -> frozenset[str] | None:
    """--status, repeated or comma-separated: the task statuses to print; None for all.
    UsageError naming a word that is not a task status."""
    if not values:
        return None
    chosen = set()
    for value in values:
        for word in value.split(","):
            name = word.strip().lower()
            if name not in TASK_STATUSES:
                known = ", ".join(STATUS_ORDER)
                raise UsageError(f"--status {word!r}: not a task status (one of {known})")
            chosen.add(name)
    return frozenset(chosen)


def cat_run(
    output_dir: Path,
    run: str,
    tasks: Sequence[str],
    *,
    stream: str = "stdout",
    statuses: frozenset[str] | None = None,
    tag: bool = False,
) -> CatRun:
    """The output files (`stream`: stdout or stderr) of the run's tasks. The run and
    the TASKs named are found before anything is printed (UsageError for one that is
    not there); the rows of a whole run are read as they are printed."""
    run_dir = history.resolve_run(output_dir, _run_name(run))
    rows: Iterable[dict[str, Any]]
    if tasks:
        rows = [history.find_task(run_dir, name) for name in tasks]
    else:
        rows = rows_in_input_order(run_dir)
    outputs = _outputs(run_dir, rows, stream, statuses, tag)
    return CatRun(run_dir, outputs, _not_ended(run_dir))


def _run_name(run: str) -> str:
    """A run folder's manifest.json (what every verdict line prints) names its folder."""
    path = Path(run)
    if path.name == MANIFEST and path.is_file():
        return str(path.parent)
    return run


def _not_ended(run_dir: Path) -> str | None:
    """What to say of a run that has not ended: only its ended tasks are printed."""
    if reader.read_manifest_header(run_dir).get("status") not in (None, "running"):
        return None
    if reader.held_by(run_dir) is not None:
        return f"run {run_dir.name} is still running: printing the tasks that have ended so far"
    return (f"run {run_dir.name} did not finish (it crashed or was killed): "
            "printing the tasks that ended")  # fmt: skip


def _outputs(
    run_dir: Path,
    rows: Iterable[dict[str, Any]],
    stream: str,
    statuses: frozenset[str] | None,
    tag: bool,
) -> Iterator[CatOutput]:
    folders: dict[Path, RunFolder] = {}
    try:
        for row in rows:
            if statuses is not None and row.get("status") not in statuses:
                continue
            details_file = row.get("details_file")
            if details_file is None:  # never started: no output
                continue
            task_dir = history.task_folder(run_dir, row)
            names = output_names_of(reader.details_file_name(task_dir, details_file))
            assert names is not None  # details_file_name accepts only a details file's name
            folder = folders.get(task_dir) or _folder(folders, task_dir)
            prefix = _tag(task_dir, details_file, row) if tag else None
            yield CatOutput(folder, names[0] if stream == "stdout" else names[1], prefix)
    finally:
        for folder in folders.values():
            folder.release()


def _folder(folders: dict[Path, RunFolder], task_dir: Path) -> RunFolder:
    """The task's run folder, kept open (up to _HELD_FOLDERS of them)."""
    folder = RunFolder(task_dir)
    if len(folders) < _HELD_FOLDERS:
        try:
            folder.hold()
        except UnsafeFile as exc:
            raise RunFolderError(str(exc)) from None
        except FileNotFoundError:  # only a merged run's tasks are elsewhere
            raise RunFolderError(f"{task_dir}: no such folder: a run merged into "
                                 "this one was removed since") from None  # fmt: skip
        except OSError as exc:
            raise RunFolderError(f"{task_dir}: cannot read: {exc.strerror}") from None
        folders[task_dir] = folder
    return folder


def _tag(task_dir: Path, details_file: str, row: dict[str, Any]) -> str:
    """--tag's prefix: the task's values, as its details file records them (GNU
    parallel's rule, render.tags); a --pipe task's block has none, as there."""
    task_id = str(row.get("task_id"))
    value = reader.read_details(task_dir, details_file).get("input")
    if isinstance(value, dict):
        if all(isinstance(item, str) for item in value.values()):
            return tag_of(task_id, value)
        return ""  # {"block": N, "bytes": ..., "records": ...}: --pipe
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tag_of(task_id, value)
    return tag_of(task_id, value if isinstance(value, str) else None)
