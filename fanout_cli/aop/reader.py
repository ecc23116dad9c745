"""Reading run folders as they lie on disk: the manifest (whole, or its header only),
the journal, the task rows, a task's details document, the saved task list.

Reads only what fanout wrote, and tolerates what a crash (kill -9) leaves behind: a
manifest still marked running, a journal or task list whose last line is torn. Every
file is opened through RunFolder, never through a link planted in the folder; a file
that is planted or corrupt raises RunFolderError (exit 2) naming it, and `list_runs`
lists such a run with its problem, for the commands to warn about and skip."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fanout_cli.aop import DETAILS_EXTENSION, JOURNAL, LOCK, MANIFEST, TASK_LIST, RunFolder
from fanout_cli.aop.checks import checked_header, checked_row, ended_event_problem
from fanout_cli.aop.documents import TASKS_MARKER, manifest_header_from, parse_json, parse_time
from fanout_cli.aop.files import NOT_A_NAME, RunFolderError, UnsafeFile, is_plain_name
from fanout_cli.replacements import shell_word

_ENDED = ("finished", "interrupted", "io_error", "input_error")
# What new_run_id makes: an entry of the output folder named so is meant to be a run.
_RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9a-f]{4}")
_MANIFEST_END = b"}"


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    path: Path
    started_at: float | None  # epoch seconds
    status: str  # finished, interrupted, running, crashed; corrupt (see problem)
    tasks: int
    passed: bool | None
    duration_ms: int | None
    title: str
    problem: str | None = None  # why the run cannot be read: `PATH: PROBLEM`


def is_run_folder(path: Path) -> bool:
    """A real folder (not a link) holding a journal or a manifest. A folder that cannot
    be looked into counts, so that the commands can say so."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return False
        return any(os.path.lexists(path / name) for name in (JOURNAL, MANIFEST)) or not (
            os.access(path, os.R_OK | os.X_OK)
        )
    except OSError:
        return False


def has_manifest(run_dir: Path) -> bool:
    """Whether the run wrote its manifest (every run does as it starts; a merge at once)."""
    return os.path.lexists(run_dir / MANIFEST)


def open_file(run_dir: Path, name: str) -> IO[bytes]:
    """A file of the run folder, for reading. FileNotFoundError when it is not there;
    RunFolderError for a link, a FIFO or a device planted there, or one unreadable."""
    folder = RunFolder(run_dir)
    try:
        return open(folder.open(name), "rb")
    except FileNotFoundError:
        raise
    except UnsafeFile as exc:
        raise RunFolderError(str(exc)) from None
    except OSError as exc:
        raise RunFolderError(f"{folder.member(name)}: cannot read: {exc.strerror}") from None


# --- the journal ------------------------------------------------------------------------


def read_journal_at(run_dir: Path) -> Iterator[tuple[dict[str, Any], int]]:
    """(event, byte offset of its line) for every complete event; a torn line (a
    crash mid-write) is skipped. RunFolderError when no whole line is an event."""
    try:
        handle = open_file(run_dir, JOURNAL)
    except FileNotFoundError:
        return
    with handle:
        offset = 0
        whole_lines = events = 0
        for line in handle:
            start, offset = offset, offset + len(line)
            if not line.endswith(b"\n"):
                break  # torn: the writer died before finishing this line
            whole_lines += 1
            try:
                event = parse_json(line)
            except ValueError:
                continue  # a torn line that a later writer ended with a newline
            if isinstance(event, dict):
                events += 1
                yield event, start
    if whole_lines and not events:
        raise RunFolderError(f"{RunFolder(run_dir).journal}: not a journal: no line is an event")


def read_journal(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every complete event of the journal."""
    return (event for event, _ in read_journal_at(run_dir))


def ended_rows(run_dir: Path) -> dict[int, dict[str, Any]]:
    """The last `task_ended` event of each task in the journal, by seq."""
    return {event["seq"]: event for event, _ in read_ended_at(run_dir)}


def read_ended_at(run_dir: Path) -> Iterator[tuple[dict[str, Any], int]]:
    """(event, offset) for every `task_ended` event of the journal. RunFolderError for
    one that cannot stand for a task's result (a missing field, a wrong type)."""
    for event, offset in read_journal_at(run_dir):
        if event.get("event") != "task_ended":
            continue
        problem = ended_event_problem(event)
        if problem is not None:
            where = RunFolder(run_dir).journal
            raise RunFolderError(f"{where}: the task_ended event at byte {offset}: {problem}")
        yield event, offset


# --- the manifest -----------------------------------------------------------------------


def read_manifest_header(run_dir: Path) -> dict[str, Any]:
    """The manifest without its task list (which may hold a million rows); {} when
    there is none, or it is empty (what a power cut after the rename may leave: the
    journal answers). RunFolderError when it is not a whole manifest."""
    where = str(RunFolder(run_dir).manifest)
    try:
        handle = open_file(run_dir, MANIFEST)
    except FileNotFoundError:
        return {}
    with handle:
        head = b""
        while TASKS_MARKER not in head:
            chunk = handle.read(1 << 16)
            if not chunk:
                break
            head += chunk
        size = os.fstat(handle.fileno()).st_size
        end = os.pread(handle.fileno(), 64, max(size - 64, 0)).rstrip()
    if not size:
        return {}
    header = manifest_header_from(head)
    if not header:
        raise RunFolderError(f"{where}: not a fanout manifest: not a JSON object")
    checked_header(header, where)
    if not end.endswith(_MANIFEST_END):
        raise RunFolderError(f"{where}: not a fanout manifest: cut short at byte {size}")
    return header


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The whole manifest, task list included; None when there is none.
    RunFolderError when it is not JSON or not a manifest."""
    where = str(RunFolder(run_dir).manifest)
    try:
        with open_file(run_dir, MANIFEST) as handle:
            document = parse_json(handle.read())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        if not read_manifest_header(run_dir):
            return None  # empty: see read_manifest_header
        raise RunFolderError(f"{where}: not valid JSON: {exc}") from None
    return checked_header(document, where)


def held_by(run_dir: Path) -> int | None:
    """The pid of a live fanout that holds the run's lock, if any. A lock that is not a
    regular file (a link planted there) is no lock fanout took."""
    try:
        handle = open_file(run_dir, LOCK)
    except (OSError, RunFolderError):
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
    """What `fanout runs` shows of a run; RunFolderError when it cannot be read."""
    header = read_manifest_header(run_dir)
    verdict = header.get("verdict")
    status = str(header.get("status") or "crashed")
    if status == "running":
        status = "running" if held_by(run_dir) else "crashed"
    if verdict is not None:
        tasks = int(verdict["counts"]["tasks"])
    else:
        tasks = sum(1 for event in read_journal(run_dir) if event.get("event") == "task_ended")
    # A merge is as new as its making, not as its oldest shard: `last` is the merge.
    started = parse_time(header.get("merged_at") or header.get("started_at"))
    duration = header.get("duration_ms")
    return RunInfo(
        run_id=run_dir.name,
        path=run_dir,
        started_at=started if started is not None else os.lstat(run_dir).st_mtime,
        status=status,
        tasks=tasks,
        passed=None if verdict is None else verdict["passed"],
        duration_ms=None if duration is None else int(duration),
        title=" ".join(shell_word(str(word)) for word in header.get("argv", [])[1:]),
    )


def _unreadable_run(path: Path, problem: str) -> RunInfo:
    """A run folder (or an entry meant to be one) that cannot be read: kept in the list
    with its problem, as old as its folder, `running` while a fanout holds its lock."""
    try:
        modified: float | None = os.lstat(path).st_mtime
    except OSError:
        modified = None
    status = "running" if is_run_folder(path) and held_by(path) else "corrupt"
    return RunInfo(path.name, path, modified, status, 0, None, None, "", problem)


def _not_a_run(path: Path) -> str:
    """What an entry named like a run is instead."""
    if path.is_symlink():
        return "a symbolic link, not a run folder"
    if not path.is_dir():
        return "not a folder, not a run folder"
    with contextlib.suppress(OSError):
        if not any(path.iterdir()):  # killed between making it and opening its journal
            return "empty: the run was stopped before it began; nothing to resume"
    return "holds no journal or manifest, not a run folder"


def _entry(path: Path) -> RunInfo | None:
    """The run an entry of the output folder is, if it is one."""
    if not is_run_folder(path):
        if _RUN_ID.fullmatch(path.name) and os.path.lexists(path):
            return _unreadable_run(path, f"{path}: {_not_a_run(path)}")
        return None
    try:
        return run_info(path)
    except RunFolderError as exc:
        return _unreadable_run(path, exc.message)


def list_runs(output_dir: Path) -> list[RunInfo]:
    """Every run in the output folder, newest first; one that cannot be read has its
    `problem` set (and is `corrupt`, or `running` while a fanout holds it)."""
    if not output_dir.is_dir():
        return []
    runs = [run for path in output_dir.iterdir() if (run := _entry(path)) is not None]
    return sorted(runs, key=lambda run: (run.started_at or 0.0, run.run_id), reverse=True)


def task_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The tasks of a run, in input order: the manifest's list once the run has ended;
    for a run still going or crashed, the latest row of each task in the journal.
    RunFolderError when a row is not a task row."""
    if read_manifest_header(run_dir).get("status") in _ENDED:
        document = read_manifest(run_dir) or {}
        where = str(RunFolder(run_dir).manifest)
        tasks = document.get("tasks")
        if not isinstance(tasks, list):
            raise RunFolderError(f"{where}: not a fanout manifest: no task list")
        return [checked_row(row, where) for row in tasks]
    rows = ended_rows(run_dir)
    where = str(RunFolder(run_dir).journal)
    return [checked_row(rows[seq], where) for seq in sorted(rows)]


# --- a task's files ---------------------------------------------------------------------


def details_file_name(run_dir: Path, details_file: object) -> str:
    """A row's `details_file` when it names a details document of the run folder;
    RunFolderError for anything else (a path, `..`)."""
    if not is_plain_name(details_file) or not str(details_file).endswith(DETAILS_EXTENSION):
        raise RunFolderError(f"{run_dir}: details_file {details_file!r}: {NOT_A_NAME}")
    return str(details_file)


def read_details(run_dir: Path, details_file: str) -> dict[str, Any]:
    """A task's details document by the name its row gives; {} when it is gone.
    RunFolderError when it is planted, unreadable or not a JSON object."""
    name = details_file_name(run_dir, details_file)
    try:
        with open_file(run_dir, name) as handle:
            document = parse_json(handle.read())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise RunFolderError(f"{run_dir / name}: not a details document: {exc}") from None
    if not isinstance(document, dict):
        raise RunFolderError(f"{run_dir / name}: not a details document: not a JSON object")
    return document


def read_task_list(run_dir: Path) -> Iterator[dict[str, Any]] | None:
    """The documents of the run's saved task list, one a task, a torn line (a crash
    mid-write: that task had not started) left out; None when the run saved none.
    RunFolderError for a whole line that is JSON but not an object."""
    try:
        handle = open_file(run_dir, TASK_LIST)
    except FileNotFoundError:
        return None
    return _task_documents(handle, str(RunFolder(run_dir).task_list))


def _task_documents(handle: IO[bytes], where: str) -> Iterator[dict[str, Any]]:
    with handle:
        for number, line in enumerate(handle, start=1):
            try:
                document = parse_json(line)
            except ValueError:
                continue  # torn by a crash: that task had not started yet
            if not line.endswith(b"\n"):
                continue
            if not isinstance(document, dict):
                raise RunFolderError(f"{where}:{number}: not a saved task but JSON {line[:40]!r}")
            if "end_of_list" not in document:  # the list's last line, not a task
                yield document


def read_task_list_end(run_dir: Path) -> int | None:
    """The number of tasks the saved list says it holds in full, or None when the list
    does not end with that line (its source was not read to the end)."""
    try:
        with open_file(run_dir, TASK_LIST) as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 256))
            tail = handle.read()
    except (OSError, RunFolderError):
        return None
    if not tail.endswith(b"\n"):
        return None
    try:
        document = parse_json(tail[tail.rfind(b"\n", 0, -1) + 1 :])
    except ValueError:
        return None
    if isinstance(document, dict) and document.get("end_of_list") is True:
        count = document.get("tasks")
        return count if isinstance(count, int) else None
    return None
