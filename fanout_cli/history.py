"""Runs kept in the output folder: find one by name, find a task in it, plan a clean-up.

The run folders themselves are read and removed through `fanout_cli.aop`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fanout_cli.aop.reader import (
    RunInfo,
    is_run_folder,
    list_runs,
    task_rows,
)
from fanout_cli.aop.writer import remove_run_folder
from fanout_cli.errors import UsageError


def resolve_run(output_dir: Path, name: str) -> Path:
    """`last`, a run id, a unique prefix of one, or the path of a run folder."""
    as_path = Path(name)
    if as_path.is_dir() and is_run_folder(as_path):
        return as_path
    runs = list_runs(output_dir)
    if not runs:
        raise UsageError(f"no runs in {output_dir}")
    if name == "last":
        return runs[0].path
    exact = [run for run in runs if run.run_id == name]
    matches = exact or [run for run in runs if run.run_id.startswith(name)]
    if len(matches) == 1:
        return matches[0].path
    if not matches:
        raise UsageError(f"no run {name!r} in {output_dir} (fanout runs lists them)")
    shown = ", ".join(run.run_id for run in matches[:5])
    raise UsageError(f"{name!r} matches {len(matches)} runs ({shown}); give more of the id")


def find_task(run_dir: Path, name: str) -> dict[str, Any]:
    """A task by id, by seq number, or by its details file name."""
    rows = task_rows(run_dir)
    matches = [row for row in rows if row.get("task_id") == name]
    if not matches and name.isdigit():
        matches = [row for row in rows if row.get("seq") == int(name)]
    if not matches:
        matches = [row for row in rows if row.get("details_file") in (name, f"{name}.json")]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"no task {name!r} in run {run_dir.name}")
    seqs = ", ".join(str(row.get("seq")) for row in matches[:10])
    raise UsageError(f"{len(matches)} tasks are called {name!r}; give a seq number: {seqs}")


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
    busy = [run for run in chosen if run.status == "running"]
    return CleanPlan([run for run in chosen if run.status != "running"], busy)


def remove_run(output_dir: Path, run: RunInfo) -> int:
    """Delete one run folder (never a symlink, never outside the output folder);
    return the bytes freed."""
    return remove_run_folder(output_dir, run.path)
