"""Writing a run folder: a run as it goes (RunStore), a merged run written whole, and the
atomic replacement every record goes through.

Every file that is read back later (details, manifest) is written to a temporary name
and renamed into place, so a crash never leaves a half-written record behind."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import time
from array import array
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from fanout_cli.aop import JOURNAL, LOCK, MANIFEST, TASK_LIST, RunFolder, details_name, files
from fanout_cli.aop.documents import (
    details_document,
    iso_time,
    journal_event,
    json_bytes,
    json_with_tasks,
    manifest_chunks,
    spec_document,
    task_list_end,
)
from fanout_cli.errors import IOFailure, StoreError, UsageError
from fanout_cli.models import OutputInfo, RunReport, TaskResult, TaskSpec

# A file system with less room than this counts as full once a task has ended on it:
# its output may have been cut short (tmpfs and most disks fill to within a page).
FULL_BELOW = 16 * 1024
_ROOT = os.geteuid() == 0  # the blocks kept back for root are room for it too


def new_run_id() -> str:
    """Time-based, sortable and unique: 20261122T101530-3f9a."""
    # os.urandom(2).hex() is what secrets.token_hex(2) returns, without loading
    # secrets and hmac on every run.
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + os.urandom(2).hex()


@contextlib.contextmanager
def replacing(path: Path | str, mode: int = 0o600) -> Iterator[int]:
    """A descriptor on a temporary file beside `path` (an unpredictable name, created
    exclusively), renamed over `path` when the block ends well and removed when it
    does not: readers never see half a file. For a file the user names (--junit);
    a run folder's own files go through RunFolder.replacing. A device, FIFO or other
    file that is not a regular one (/dev/null, /dev/stdout) is written into instead:
    renaming over it would replace it (as root, even /dev/null)."""
    if _is_special(path):
        special = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            yield special
        finally:
            os.close(special)
        return
    folder, name = os.path.split(os.fspath(path))
    descriptor = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with files.replacing_at(descriptor, name, mode) as temporary:
            yield temporary
    finally:
        os.close(descriptor)


def write_chunks(descriptor: int, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            view = view[os.write(descriptor, view) :]


def _is_special(path: Path | str) -> bool:
    """Whether `path` names an existing file that is not a regular one (a device, a
    FIFO, a directory): renaming a new file over it would replace it (as root, even
    /dev/null), so it is written in place or refused by the system."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def write_atomic(path: Path | str, chunks: Iterable[bytes]) -> None:
    """Write to a temporary name in the same folder, then rename over `path`."""
    with replacing(path) as descriptor:
        write_chunks(descriptor, chunks)


def write_member(folder: RunFolder, name: str, chunks: Iterable[bytes]) -> None:
    """A file of a run folder written whole, then renamed into place."""
    with folder.replacing(name) as descriptor:
        write_chunks(descriptor, chunks)


def write_json_atomic(path: Path, document: object) -> None:
    """IOFailure (exit 74) when the disk is full, StoreError (exit 2) when the path is wrong."""
    try:
        write_atomic(path, [json_bytes(document, indent=2), b"\n"])
    except OSError as exc:
        raise IOFailure.of(path, exc) from None


def create_run_folder(output_dir: Path | str, run_id: str | None = None) -> Path:
    """A new private (0700) folder in `output_dir` (created if need be), named `run_id`,
    or a fresh id when none is given. StoreError when it cannot be made."""
    folder = Path(output_dir).absolute()  # reports name it; cwd may differ
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{output_dir}: cannot create the output folder: {exc.strerror}") from None
    for _ in range(100):
        run_dir = folder / (run_id or new_run_id())
        try:
            run_dir.mkdir(mode=0o700)
        except FileExistsError:
            if run_id:
                raise StoreError(
                    f"{run_dir}: a run with this id already exists; choose another --run-id"
                ) from None
            continue
        except OSError as exc:
            raise StoreError(f"{run_dir}: cannot create the run folder: {exc.strerror}") from None
        run_dir.chmod(0o700)  # mkdir's mode is filtered by the umask
        return run_dir
    raise StoreError(f"{folder}: could not find a free run id")  # pragma: no cover


def write_whole_run(
    folder: RunFolder,
    header: Mapping[str, Any],
    rows: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
) -> None:
    """A run written at once (a merge): its manifest over `rows`, then its journal."""
    _write_or_fail(folder, MANIFEST, json_with_tasks(header, rows))
    _write_or_fail(folder, JOURNAL, (json_bytes(event) + b"\n" for event in events))


def _write_or_fail(folder: RunFolder, name: str, chunks: Iterable[bytes]) -> None:
    try:
        write_member(folder, name, chunks)
    except OSError as exc:
        raise IOFailure.of(folder.member(name), exc) from None


def remove_run_folder(output_dir: Path, path: Path) -> int:
    """Delete one run folder (never a symlink, never outside the output folder);
    return the bytes freed."""
    if path.is_symlink() or path.resolve().parent != output_dir.resolve():
        raise UsageError(f"{path}: not a run folder inside {output_dir}; left alone")
    size = sum(
        entry.stat(follow_symlinks=False).st_size
        for entry in os.scandir(path)
        if entry.is_file(follow_symlinks=False)
    )
    shutil.rmtree(path)
    return size


class RowIndex:
    """Where each task's `task_ended` line starts in the journal, by seq: eight bytes a
    task, so a run of a million tasks need not keep its results in memory."""

    def __init__(self) -> None:
        self._offsets = array("q")

    def add(self, seq: int, offset: int) -> None:
        if len(self._offsets) < seq:
            self._offsets.extend([-1] * (seq - len(self._offsets)))
        self._offsets[seq - 1] = offset

    def __len__(self) -> int:
        return sum(1 for offset in self._offsets if offset >= 0)

    def offsets(self) -> Iterator[int]:
        return (offset for offset in self._offsets if offset >= 0)


class RunStore:
    """Owns `<output-dir>/<run-id>/` while a run writes it. All paths it hands out stay
    inside that folder."""

    def __init__(self, output_dir: str, run_id: str | None) -> None:
        self.run_dir = create_run_folder(output_dir, run_id)
        self.output_dir = self.run_dir.parent
        self.run_id = self.run_dir.name
        self._open()

    @classmethod
    def reopen(cls, run_dir: Path) -> RunStore:
        """An existing run folder, to add to it (--resume)."""
        store = cls.__new__(cls)
        store.run_dir = run_dir.absolute()
        store.output_dir = store.run_dir.parent
        store.run_id = run_dir.name
        store._open()
        return store

    def _open(self) -> None:
        self.folder = RunFolder(self.run_dir)
        opened: list[IO[Any] | files.Appender] = []
        try:
            self.folder.hold()
            # The lock says "a fanout is writing here": --resume and clean keep off.
            # flock is released by the kernel when the process dies, even by kill -9.
            self._lock = self._open_member(LOCK, "r+", opened)
            self._take_lock()
            self._journal = self._appender(JOURNAL)
            opened.append(self._journal)
            self._task_list = self._appender(TASK_LIST)
            opened.append(self._task_list)
            self._listed = 0  # tasks put on the saved list by this process
        except BaseException:
            for handle in opened:
                handle.close()
            self.folder.release()
            raise

    def _appender(self, name: str) -> files.Appender:
        """The journal or the saved task list, to append lines to; never through a link
        planted in its place (StoreError naming it), IOFailure when the disk is full."""
        try:
            descriptor = self.folder.open(name, files.APPEND)
        except files.UnsafeFile as exc:
            raise StoreError(str(exc)) from None
        except OSError as exc:
            raise IOFailure.of(self.folder.member(name), exc) from None
        return files.Appender(descriptor, self.folder.member(name))

    def _open_member(self, name: str, mode: str, opened: list[IO[Any] | files.Appender]) -> IO[Any]:
        """A file of the folder to add to, created if need be; never through a link
        planted in its place (StoreError naming it)."""
        try:
            descriptor = self.folder.open(name, files.APPEND)
        except files.UnsafeFile as exc:
            raise StoreError(str(exc)) from None
        handle = open(descriptor, mode)  # noqa: SIM115 - closed in close()
        opened.append(handle)
        return handle

    def _take_lock(self) -> None:
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "?"
            raise StoreError(
                f"run {self.run_id} is in use by another fanout (pid {holder}); "
                "wait for it to end or stop it first"
            ) from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()


    def close(self) -> None:
        self._journal.close()
        self._task_list.close()
        with contextlib.suppress(OSError):
            self.folder.remove(LOCK)
        self._lock.close()
        self.folder.release()

    @property
    def manifest_path(self) -> Path:
        return self.folder.manifest

    # --- streams -----------------------------------------------------------------

    def output_paths(self, spec: TaskSpec, attempt: int | None = None) -> tuple[str, str]:
        """The stdout and stderr files of a task; earlier attempts keep a `.aN` suffix."""
        return self.folder.outputs(spec, attempt)

    def set_aside_attempt(self, spec: TaskSpec, attempt: int) -> tuple[str, str]:
        """Before a retry, keep the previous attempt's outputs under `.aN` names."""
        current = self.output_paths(spec)
        kept = self.output_paths(spec, attempt)
        for source, target in zip(current, kept, strict=True):
            # A link planted at either name is moved or replaced, never followed; a
            # folder planted at the kept name stays (the next attempt replaces the file).
            try:
                self.folder.rename(os.path.basename(source), os.path.basename(target))
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                pass
            except OSError as exc:
                raise IOFailure.of(target, exc) from None
        return os.path.basename(kept[0]), os.path.basename(kept[1])

    def discard_outputs(self, spec: TaskSpec) -> None:
        """The outputs of an attempt cut short to run again (--memfree), removed before
        it starts again: nothing reading the run (--line-buffer) finds and prints them."""
        for path in self.output_paths(spec):
            try:
                self.folder.remove(os.path.basename(path))
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                pass  # none written; a folder planted there fails the attempt's own open
            except OSError as exc:
                raise IOFailure.of(path, exc) from None

    def check_room(self) -> None:
        """IOFailure when the run folder's file system is full, of bytes or of inodes:
        a task that ended just now may have lost output it could not write."""
        try:
            room = os.statvfs(self.run_dir)
        except OSError:
            return
        privileged = _ROOT  # root may use the blocks kept back for it
        free_bytes = (room.f_bfree if privileged else room.f_bavail) * room.f_frsize
        free_inodes = room.f_ffree if privileged else room.f_favail
        if (room.f_blocks and free_bytes < FULL_BELOW) or (room.f_files and free_inodes == 0):
            raise IOFailure(f"{self.run_dir}: cannot write: No space left on device")

    def describe_output(self, path: str, tail: bytes, size: int) -> OutputInfo:
        """The stream, with its line count when `tail` is the whole of it (most are)."""
        from fanout_cli.scan import lines_in  # not loaded by commands that write no task

        excerpt = tail[-4096:]
        return OutputInfo(
            path=os.path.basename(path),
            bytes=size,
            excerpt=excerpt.decode("utf-8", errors="replace") if excerpt else "",
            truncated=size > len(excerpt),
            lines=lines_in(tail) if len(tail) >= size else None,
        )

    # --- records -----------------------------------------------------------------

    def journal(self, event: str, **fields: object) -> int:
        """Append one event line; return the offset where it starts. IOFailure when it
        cannot be written whole (the journal then ends where it did)."""
        record = journal_event(event, iso_time(time.time()), fields)
        return self._journal.append(json_bytes(record) + b"\n")

    def rows(self, index: RowIndex) -> Iterator[dict[str, Any]]:
        """The task rows of the journal, in input order."""
        with open(self.folder.open(JOURNAL), "rb") as journal:
            for offset in index.offsets():
                journal.seek(offset)
                row: dict[str, Any] = json.loads(journal.readline())
                row.pop("event", None)
                row.pop("time", None)
                yield row

    def save_specs(self, specs: Iterable[TaskSpec]) -> None:
        """Append tasks to the run's saved task list (secrets redacted), written through
        so that a task never starts before it is on the list."""
        for spec in specs:
            self._task_list.append(json_bytes(spec_document(spec)) + b"\n")
            self._listed += 1

    def end_task_list(self) -> None:
        """Say on the saved list that the task source was read to its end: a list
        without this last line is a part of the run's tasks (see reader.task_list_end)."""
        self._task_list.append(json_bytes(task_list_end(self._listed)) + b"\n")

    def replace_task_list(self, specs: Iterable[TaskSpec]) -> None:
        """Make `specs` the saved task list (atomically), and append to it from now on."""
        self._listed = 0

        def lines() -> Iterator[bytes]:
            for spec in specs:
                self._listed += 1
                yield json_bytes(spec_document(spec)) + b"\n"

        _write_or_fail(self.folder, TASK_LIST, lines())
        self._task_list.close()
        self._task_list = self._appender(TASK_LIST)

    def write_details(self, result: TaskResult, run_id: str) -> str:
        """One compact JSON line (the C encoder: indenting costs ten times as much);
        `fanout show` prints it readably."""
        name = details_name(result.spec)
        try:
            self.folder.write_whole(name, json_bytes(details_document(result, run_id)) + b"\n")
        except OSError as exc:
            raise IOFailure.of(self.folder.member(name), exc) from None
        return name

    def write_manifest(
        self, header: Mapping[str, Any], report: RunReport | None, status: str
    ) -> None:
        _write_or_fail(self.folder, MANIFEST, manifest_chunks(header, report, status))

