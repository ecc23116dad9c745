"""Opening the files of a run folder without following what may be planted in it.

fanout trusts the output folder's path as the user gives it (links included) and
nothing inside a run folder: a task, another program or a downloaded CI artifact may
have put a symbolic link, a FIFO or a hard link where fanout keeps a file. So a file
of a run folder is opened relative to a descriptor on the folder, with O_NOFOLLOW,
and used only when it is a regular file; a name taken from a record (`details_file`,
an output's `path`) must be a plain name of the folder; a file fanout writes anew is
created exclusively (O_EXCL), and a temporary file gets an unpredictable name.

Only `os`, `errno` and `stat` are used: this is on every run's path."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from fanout_cli.errors import FanoutError, IOFailure

_NO_FOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a planted FIFO must not wait for a writer (or a reader); on a
# regular file the flag changes nothing.
READ = os.O_RDONLY | os.O_NONBLOCK | _NO_FOLLOW
# Read as well: a writer checks the last byte of what a crash left (see RunStore).
APPEND = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | _NO_FOLLOW
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | _NO_FOLLOW
_TEMPORARY_TRIES = 100

LINK = "a symbolic link; fanout does not follow links inside a run folder"
NOT_REGULAR = "not a regular file; fanout uses only regular files inside a run folder"
HARD_LINKED = "has other hard links; fanout does not write through them"
NOT_A_NAME = "not a file name inside the run folder"


class UnsafeFile(OSError):
    """A file of a run folder that fanout will not open: a link, not a regular file,
    or a name that leaves the folder. `str()` is the line to show: `PATH: PROBLEM`."""

    def __init__(self, path: str, problem: str) -> None:
        # The whole line as strerror: what reports an OSError by its strerror (a task
        # that could not start) names the file too.
        super().__init__(errno.ELOOP, f"{path}: {problem}")
        self.path = path
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class RunFolderError(FanoutError):
    """A run folder that cannot be read as one: a planted link, a corrupt document.
    Exit 2: the command reading the run stops with one line naming the file."""


def is_plain_name(name: object) -> bool:
    """A name of a file directly inside a folder: no `/`, not `.` or `..`, no NUL."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\0" not in name
    )


def open_folder(path: str) -> int:
    """A descriptor on a run folder; the folder itself must not be a link."""
    try:
        return os.open(path, _FOLDER)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise UnsafeFile(path, LINK) from None
        raise


@contextlib.contextmanager
def folder_descriptor(path: str, held: int | None = None) -> Iterator[int]:
    """`held` when given, else a descriptor on `path` closed when the block ends."""
    if held is not None:
        yield held
        return
    descriptor = open_folder(path)
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def open_at(folder: int, name: str, flags: int, shown: str, mode: int = 0o600) -> int:
    """`name` of the folder opened with `flags` and no-follow; UnsafeFile for a link,
    for anything but a regular file, and (when writing) for a file with other hard
    links. FileNotFoundError and other OSErrors as os.open raises them."""
    if not is_plain_name(name):
        raise UnsafeFile(shown, NOT_A_NAME)
    try:
        descriptor = os.open(name, flags | _NO_FOLLOW, mode, dir_fd=folder)
    except OSError as exc:
        raise _unsafe_or(exc, shown) from None
    status = os.fstat(descriptor)
    problem = None
    if not stat.S_ISREG(status.st_mode):
        problem = NOT_REGULAR
    elif flags & os.O_ACCMODE != os.O_RDONLY and status.st_nlink > 1:
        problem = HARD_LINKED
    if problem is not None:
        os.close(descriptor)
        raise UnsafeFile(shown, problem)
    return descriptor


def _unsafe_or(error: OSError, shown: str) -> OSError:
    if error.errno == errno.ELOOP:
        return UnsafeFile(shown, LINK)
    if error.errno in (errno.ENXIO, errno.EISDIR, errno.ENODEV):  # a FIFO, a folder, a device
        return UnsafeFile(shown, NOT_REGULAR)
    return error


def create_at(folder: int, name: str, shown: str, mode: int = 0o600) -> int:
    """A new, empty `name` in the folder, open for writing. What was there before is
    replaced, never written through: a link there is refused (UnsafeFile), any other
    file (an earlier attempt's output, a FIFO, a hard link) is unlinked first."""
    if not is_plain_name(name):
        raise UnsafeFile(shown, NOT_A_NAME)
    try:
        return os.open(name, _CREATE, mode, dir_fd=folder)
    except FileExistsError:
        pass
    except OSError as exc:
        raise _unsafe_or(exc, shown) from None
    with contextlib.suppress(FileNotFoundError):
        mode_there = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode_there):
            raise UnsafeFile(shown, LINK)
        if stat.S_ISDIR(mode_there):
            raise UnsafeFile(shown, NOT_REGULAR)
        os.unlink(name, dir_fd=folder)
    try:
        return os.open(name, _CREATE, mode, dir_fd=folder)
    except OSError as exc:  # planted again in between: still never followed
        raise _unsafe_or(exc, shown) from None


@contextlib.contextmanager
def replacing_at(folder: int, name: str, mode: int = 0o600) -> Iterator[int]:
    """A descriptor on a new temporary file of the folder, renamed over `name` when
    the block ends well and removed when it does not: readers never see half a file.
    The temporary name is unpredictable and created exclusively, so nothing planted
    can stand in for it; the rename replaces a link at `name`, never its target."""
    descriptor, temporary = _new_temporary(folder, name, mode)
    try:
        try:
            yield descriptor
        finally:
            os.close(descriptor)
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder)
        raise


def write_whole_at(folder: int, name: str, data: bytes, mode: int = 0o600) -> None:
    """`data` as the whole of `name`, through `replacing_at` (a task's details file)."""
    with replacing_at(folder, name, mode) as descriptor:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]


def _new_temporary(folder: int, name: str, mode: int) -> tuple[int, str]:
    for _ in range(_TEMPORARY_TRIES):
        temporary = f".{name[:100]}.{os.urandom(6).hex()}.tmp"
        try:
            return os.open(temporary, _CREATE, mode, dir_fd=folder), temporary
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", name)  # pragma: no cover


class Appender:
    """An append-only file of whole lines (the journal, the saved task list), on a
    descriptor opened with no-follow flags. Each line goes out in one write; one that
    cannot be written whole is cut off again, so the file stays a valid prefix
    whatever fails (a full disk, a file-size limit)."""

    def __init__(self, descriptor: int, path: str) -> None:
        self._fd = descriptor
        self.path = path
        try:
            self._end = os.fstat(descriptor).st_size
            self._end_torn_line()
        except BaseException:
            os.close(descriptor)
            raise

    def _end_torn_line(self) -> None:
        """A crash can leave a half-written last line; end it, so that what is appended
        now (a resume) starts on a line of its own. Readers skip the torn one."""
        if self._end and os.pread(self._fd, 1, self._end - 1) != b"\n":
            self.append(b"\n")

    def append(self, line: bytes) -> int:
        """Write `line` at the end; return the offset where it starts."""
        start = self._end
        try:
            written = os.write(self._fd, line)
            if written != len(line):  # a short write: the disk filled or a limit hit
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise IOFailure.of(self.path, exc) from None
        self._end = start + written
        return start

    def close(self) -> None:
        os.close(self._fd)
