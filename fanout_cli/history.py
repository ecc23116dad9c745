"""Runs kept in the output folder: find one by name, find a task in it, plan a clean-up.

The run folders themselves are read and removed through `fanout_cli.aop`. A run that
cannot be read (a corrupt manifest, a planted link) is skipped with one warning by
what looks through the runs, is an error (exit 2) for what names it, and is removed
by `clean` like any other."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fanout_cli.aop import MANIFEST
from fanout_cli.aop.files import RunFolderError
from fanout_cli.aop.reader import (
    RunInfo,
    is_run_folder,
    list_runs,
)
from fanout_cli.aop.writer import remove_run_folder
from fanout_cli.errors import UsageError
from fanout_cli.render.console import warn

_CANDIDATES = 5  # an ambiguous prefix names this many of its tasks
_KEPT = 10  # rows kept of the tasks a rule matched (a message names at most that many)
_EARLIER_ATTEMPT = re.compile(r"\.a[0-9]+$")  # the suffix of an earlier attempt's outputs


def skip_unreadable(runs: list[RunInfo]) -> list[RunInfo]:
    """The runs that can be read; a warning for each of the others."""
    for run in runs:
        if run.problem is not None:
            warn(f"{run.problem}; skipped")
    return [run for run in runs if run.problem is None]


def readable_runs(output_dir: Path) -> list[RunInfo]:
    """The runs of the output folder that can be read, newest first; a warning for
    each of the others."""
    return skip_unreadable(list_runs(output_dir))


def resolve_run(output_dir: Path, name: str) -> Path:
    """`last`, a run id, a unique prefix of one, or the path of a run folder (inside
    the output folder or not) or of a file in one (the manifest a verdict line prints)."""
    found = run_folder_of(name)
    if found is not None:
        return found[0]
    runs = list_runs(output_dir)
    if not runs:
        raise UsageError(f"no runs in {output_dir}")
    if name == "last":
        return _newest(runs, output_dir).path
    exact = [run for run in runs if run.run_id == name]
    matches = exact or [run for run in runs if run.run_id.startswith(name)]
    if len(matches) == 1:
        if matches[0].problem is not None:
            raise RunFolderError(matches[0].problem)
        return matches[0].path
    if not matches:
        raise UsageError(f"no run {name!r} in {output_dir} (fanout runs lists them)")
    shown = ", ".join(run.run_id for run in matches[:5])
    raise UsageError(f"{name!r} matches {len(matches)} runs ({shown}); give more of the id")


def run_folder_of(name: str) -> tuple[Path, str | None] | None:
    """The run folder a path names, and the file of it the path names (None for the
    folder itself): a folder path, or a file's (manifest.json, a details or output
    file). None when `name` is no such path."""
    path = Path(name)
    if is_run_folder(path):
        return path, None
    if name.endswith("/") or not os.path.lexists(path) or not is_run_folder(path.parent):
        return None
    return path.parent, path.name


def _newest(runs: list[RunInfo], output_dir: Path) -> RunInfo:
    """The newest run that can be read; a warning for each newer one that cannot."""
    newer: list[RunInfo] = []
    for run in runs:
        if run.problem is None:
            skip_unreadable(newer)
            return run
        newer.append(run)
    skip_unreadable(newer)
    raise UsageError(f"no readable runs in {output_dir}")


class _Matches:
    """The tasks one rule matched, counted, and the first few of them kept."""

    __slots__ = ("count", "rows")

    def __init__(self) -> None:
        self.count = 0
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.count += 1
        if len(self.rows) < _KEPT:
            self.rows.append(row)


def find_task(run_dir: Path, name: str) -> dict[str, Any]:
    """A task by what a person types, tried in this order: its id; its id give or take
    a trailing slash (tab completion adds one, `--glob '*/'` ids have one); its seq
    number; its details or output file's name or path; a unique prefix of its id.
    One pass over the run's rows, holding only the few that match (aop.rows)."""
    from fanout_cli.aop.rows import rows_in_input_order

    bare = name.rstrip("/")
    seq = int(name) if name.isdigit() else None
    wanted = _details_name(run_dir, name)
    exact, slash, by_seq, by_file, prefix = (_Matches() for _ in range(5))
    for row in rows_in_input_order(run_dir):
        task_id = str(row.get("task_id"))
        if task_id == name:
            exact.add(row)
        elif task_id.rstrip("/") == bare:
            slash.add(row)
        if seq is not None and row.get("seq") == seq:
            by_seq.add(row)
        if wanted is not None and row.get("details_file") == wanted:
            by_file.add(row)
        if name and task_id.startswith(name):
            prefix.add(row)
    for matches in (exact, slash, by_seq, by_file):
        if matches.count > 1:
            seqs = ", ".join(str(row.get("seq")) for row in matches.rows)
            raise UsageError(f"{matches.count} tasks are called {name!r}; give a seq number: "
                             f"{seqs}")  # fmt: skip
        if matches.count:
            return matches.rows[0]
    return _by_prefix(prefix, run_dir, name)


def _details_name(run_dir: Path, name: str) -> str | None:
    """The details file of the task `name` names as a file: the name of its details
    file, or of its stdout or stderr, without the extension or with it, or a path of
    one in this run's folder. None when a path's folder is another."""
    folder, base = os.path.split(name)
    if folder and not _same_folder(Path(folder), run_dir):
        return None
    stem, extension = os.path.splitext(base)
    if extension not in (".json", ".stdout", ".stderr"):
        stem = base
    return f"{_EARLIER_ATTEMPT.sub('', stem)}.json"  # 0001-a.a1.stdout: task 0001-a


def _same_folder(folder: Path, run_dir: Path) -> bool:
    try:
        return os.path.samefile(folder, run_dir)
    except OSError:
        return False


def _by_prefix(matches: _Matches, run_dir: Path, name: str) -> dict[str, Any]:
    if matches.count == 1:
        return matches.rows[0]
    if not matches.count:
        raise UsageError(f"no task {name!r} in run {run_dir.name} (fanout show {run_dir.name} "
                         "lists them)")  # fmt: skip
    shown = ", ".join(repr(row.get("task_id")) for row in matches.rows[:_CANDIDATES])
    more = ", ..." if matches.count > _CANDIDATES else ""
    raise UsageError(f"{name!r} matches {matches.count} tasks ({shown}{more}); give more of the id")


def task_folder(run_dir: Path, row: dict[str, Any]) -> Path:
    """The folder a task's files are in: its run's, or, for a task of a merged run, the
    run it came from, which must be a run folder: a manifest cannot send fanout to
    read elsewhere (RunFolderError). A shard run removed since reads as files gone."""
    named = row.get("run_dir")
    if not named:
        return run_dir
    folder = Path(str(named))
    if os.path.lexists(folder) and not is_run_folder(folder):
        raise RunFolderError(
            f"{run_dir / MANIFEST}: task {row.get('seq')}: run_dir {named!r} is not a run folder"
        )
    return folder


@dataclass(frozen=True)
class CleanPlan:
    remove: list[RunInfo]
    busy: list[RunInfo]  # still held by a running fanout: never removed


def plan_clean(
    output_dir: Path, *, older_than: float | None, keep: int | None, everything: bool
) -> CleanPlan:
    runs = list_runs(output_dir)
    now = time.time()
    chosen = []
    for position, run in enumerate(runs):
        if keep is not None and position < keep:
            continue
        if older_than is not None and now - (run.started_at or now) < older_than:
            continue
        if keep is None and older_than is None and not everything:
            continue
        chosen.append(run)
    # An entry that is a link or a file is not a run folder to remove, whatever its name.
    chosen = [run for run in chosen if run.path.is_dir() and not run.path.is_symlink()]
    for run in chosen:
        if run.problem is not None:
            warn(f"{run.problem}; it can be removed all the same")
    busy = [run for run in chosen if run.status == "running"]
    return CleanPlan([run for run in chosen if run.status != "running"], busy)


def remove_run(output_dir: Path, run: RunInfo) -> int:
    """Delete one run folder (never a symlink, never outside the output folder);
    return the bytes freed."""
    return remove_run_folder(output_dir, run.path)
