"""Reading run folders as they lie on disk: the manifest (whole, or its header only),
the journal, the task rows, a task's details document, the saved task list.

Reads only what fanout wrote, and tolerates what a crash (kill -9) leaves behind: a
manifest still marked running, a journal or task list whose last line is torn."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fanout_cli.aop import RunFolder
from fanout_cli.aop.documents import TASKS_MARKER, manifest_header_from, parse_time

_ENDED = ("finished", "interrupted", "io_error")


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
    folder = RunFolder(path)
    return (
        path.is_dir()
        and not path.is_symlink()
        and (folder.journal.is_file() or folder.manifest.is_file())
    )


def has_manifest(run_dir: Path) -> bool:
    """Whether the run wrote its manifest (every run does as it starts; a merge at once)."""
    return RunFolder(run_dir).manifest.is_file()


# --- the journal ------------------------------------------------------------------------


def read_journal_at(run_dir: Path) -> Iterator[tuple[dict[str, Any], int]]:
    """(event, byte offset of its line) for every complete event; a torn line (a
    crash mid-write) is skipped."""
    try:
        handle = open(RunFolder(run_dir).journal, "rb")  # noqa: SIM115 - closed below
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


def ended_rows(run_dir: Path) -> dict[int, dict[str, Any]]:
    """The last `task_ended` event of each task in the journal, by seq."""
    rows: dict[int, dict[str, Any]] = {}
    for event in read_journal(run_dir):
        if event.get("event") == "task_ended" and isinstance(event.get("seq"), int):
            rows[event["seq"]] = event
    return rows


# --- the manifest -----------------------------------------------------------------------


def read_manifest_header(run_dir: Path) -> dict[str, Any]:
    """The manifest without its task list (which may hold a million rows); {} when
    there is none or it is not a manifest."""
    try:
        with open(RunFolder(run_dir).manifest, "rb") as handle:
            head = b""
            while TASKS_MARKER not in head:
                chunk = handle.read(1 << 16)
                if not chunk:
                    break
                head += chunk
    except FileNotFoundError:
        return {}
    return manifest_header_from(head)


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The whole manifest, task list included; None when it cannot be read or is not
    a JSON object."""
    try:
        document = json.loads(RunFolder(run_dir).manifest.read_bytes())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def held_by(run_dir: Path) -> int | None:
    """The pid of a live fanout that holds the run's lock, if any."""
    try:
        handle = open(RunFolder(run_dir).lock, "r+")  # noqa: SIM115 - closed below
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


# --- runs -------------------------------------------------------------------------------


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


def task_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The tasks of a run, in input order: the manifest's list once the run has ended;
    for a run still going or crashed, the latest row of each task in the journal."""
    if read_manifest_header(run_dir).get("status") in _ENDED:
        with contextlib.suppress(OSError, ValueError):
            tasks = json.loads(RunFolder(run_dir).manifest.read_bytes()).get("tasks")
            if isinstance(tasks, list):
                return [row for row in tasks if isinstance(row, dict)]
    rows = ended_rows(run_dir)
    return [rows[seq] for seq in sorted(rows)]


# --- a task's files ---------------------------------------------------------------------


def read_details(run_dir: Path, details_file: str) -> dict[str, Any]:
    """A task's details document by the name its row gives; {} when it cannot be read."""
    with contextlib.suppress(OSError, ValueError):
        with open(RunFolder(run_dir).member(details_file), "rb") as handle:
            document = json.loads(handle.read())
        if isinstance(document, dict):
            return document
    return {}


def read_task_list(run_dir: Path) -> Iterator[dict[str, Any]] | None:
    """The documents of the run's saved task list, one a task, a torn line (a crash
    mid-write: that task had not started) left out; None when the run saved none."""
    try:
        handle = open(RunFolder(run_dir).task_list, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    return _task_documents(handle)


def _task_documents(handle: IO[bytes]) -> Iterator[dict[str, Any]]:
    with handle:
        for line in handle:
            try:
                document = json.loads(line)
            except ValueError:
                continue  # torn by a crash: that task had not started yet
            if (
                line.endswith(b"\n")
                and isinstance(document, dict)
                and "end_of_list" not in document  # the list's last line, not a task
            ):
                yield document


def read_task_list_end(run_dir: Path) -> int | None:
    """The number of tasks the saved list says it holds in full, or None when the list
    does not end with that line (its source was not read to the end)."""
    try:
        with open(RunFolder(run_dir).task_list, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 256))
            tail = handle.read()
    except OSError:
        return None
    if not tail.endswith(b"\n"):
        return None
    try:
        document = json.loads(tail[tail.rfind(b"\n", 0, -1) + 1 :])
    except ValueError:
        return None
    if isinstance(document, dict) and document.get("end_of_list") is True:
        count = document.get("tasks")
        return count if isinstance(count, int) else None
    return None
