"""Runs kept in the output folder: list them, find one, read its tasks, clean them up.

Reads only what fanout wrote, and tolerates what a crash (kill -9) leaves behind: a
manifest still marked running, a journal whose last line is torn."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fanout_cli.errors import UsageError

JOURNAL = "journal.jsonl"
MANIFEST = "manifest.json"
LOCK = "lock"
_TASKS_MARKER = b'\n  "tasks": ['


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    path: Path
    started_at: float | None  # epoch seconds
    status: str  # finished, interrupted, running, crashed
    tasks: int
    passed: bool | None
    duration_ms: int | None
    title: str


def is_run_folder(path: Path) -> bool:
    return (
        path.is_dir()
        and not path.is_symlink()
        and ((path / JOURNAL).is_file() or (path / MANIFEST).is_file())
    )


def read_journal_at(run_dir: Path) -> Iterator[tuple[dict[str, Any], int]]:
    """(event, byte offset of its line) for every complete event; a torn line (a
    crash mid-write) is skipped."""
    try:
        handle = open(run_dir / JOURNAL, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with handle:
        offset = 0
        for line in handle:
            start, offset = offset, offset + len(line)
            if not line.endswith(b"\n"):
                return  # torn: the writer died before finishing this line
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a torn line that a later writer ended with a newline
            if isinstance(event, dict):
                yield event, start


def read_journal(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every complete event of the journal."""
    return (event for event, _ in read_journal_at(run_dir))


def read_manifest_header(run_dir: Path) -> dict[str, Any]:
    """The manifest without its task list (which may hold a million rows)."""
    try:
        with open(run_dir / MANIFEST, "rb") as handle:
            head = b""
            while _TASKS_MARKER not in head:
                chunk = handle.read(1 << 16)
                if not chunk:
                    break
                head += chunk
    except FileNotFoundError:
        return {}
    cut = head.find(_TASKS_MARKER)
    text = head[:cut].rstrip().rstrip(b",") + b"\n}" if cut >= 0 else head
    try:
        document = json.loads(text)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def held_by(run_dir: Path) -> int | None:
    """The pid of a live fanout that holds the run's lock, if any."""
    try:
        handle = open(run_dir / LOCK, "r+")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def parse_time(stamp: object) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def run_info(run_dir: Path) -> RunInfo:
    header = read_manifest_header(run_dir)
    verdict = header.get("verdict") if isinstance(header.get("verdict"), dict) else None
    status = str(header.get("status") or "crashed")
    if status == "running":
        status = "running" if held_by(run_dir) else "crashed"
    if verdict is not None:
        tasks = int(verdict.get("counts", {}).get("tasks", 0))
    else:
        tasks = sum(1 for event in read_journal(run_dir) if event.get("event") == "task_ended")
    # A merge is as new as its making, not as its oldest shard: `last` is the merge.
    started = parse_time(header.get("merged_at") or header.get("started_at"))
    argv = header.get("argv")
    return RunInfo(
        run_id=run_dir.name,
        path=run_dir,
        started_at=started if started is not None else run_dir.stat().st_mtime,
        status=status,
        tasks=tasks,
        passed=None if verdict is None else bool(verdict.get("passed")),
        duration_ms=header.get("duration_ms"),
        title=" ".join(argv[1:]) if isinstance(argv, list) else "",
    )


def list_runs(output_dir: Path) -> list[RunInfo]:
    """Every run in the output folder, newest first."""
    if not output_dir.is_dir():
        return []
    runs = [run_info(path) for path in output_dir.iterdir() if is_run_folder(path)]
    return sorted(runs, key=lambda run: (run.started_at or 0.0, run.run_id), reverse=True)


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


def task_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The tasks of a run, in input order: the manifest's list once the run has ended;
    for a run still going or crashed, the latest row of each task in the journal."""
    if read_manifest_header(run_dir).get("status") in ("finished", "interrupted"):
        with contextlib.suppress(OSError, ValueError):
            tasks = json.loads((run_dir / MANIFEST).read_bytes()).get("tasks")
            if isinstance(tasks, list):
                return [row for row in tasks if isinstance(row, dict)]
    rows: dict[int, dict[str, Any]] = {}
    for event in read_journal(run_dir):
        if event.get("event") == "task_ended" and isinstance(event.get("seq"), int):
            rows[event["seq"]] = event
    return [rows[seq] for seq in sorted(rows)]


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
    path = run.path
    if path.is_symlink() or path.resolve().parent != output_dir.resolve():
        raise UsageError(f"{path}: not a run folder inside {output_dir}; left alone")
    size = sum(
        entry.stat(follow_symlinks=False).st_size
        for entry in os.scandir(path)
        if entry.is_file(follow_symlinks=False)
    )
    shutil.rmtree(path)
    return size
