"""fanout's own failures. A failed *task* is data (a TaskResult), never one of these."""

from __future__ import annotations

import errno
import signal
from typing import Protocol

# Every exit status of fanout (the man page's EXIT STATUS lists the same).
EXIT_PASS = 0  # the verdict passed (or nothing had to run: --dry-run, merge with --help)
EXIT_FAIL = 1  # the verdict failed
EXIT_USAGE = 2  # usage, option, task-file or output-folder error
EXIT_IO = 74  # an I/O error (disk full, file too large, no inodes, stdout closed; EX_IOERR)
EXIT_INTERNAL = 70  # a bug in fanout (EX_SOFTWARE); FANOUT_DEBUG=1 shows the traceback
EXIT_SIGINT = 128 + signal.SIGINT  # 130: interrupted; 128 + the signal for the others
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143
EXIT_SIGPIPE = 128 + signal.SIGPIPE  # 141: standard output's reader went away
# The signals that stop a run (the first: end the tasks; a second: kill them at once).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Outcome(Protocol):
    """What a finished run says about itself: enough to choose its exit status."""

    @property
    def passed(self) -> bool: ...

    @property
    def interrupted(self) -> str | None: ...  # the signal's name: "SIGINT"


def run_exit_status(outcome: Outcome) -> int:
    """0 or 1 by the verdict; 128 + the signal when a signal stopped the run."""
    if outcome.interrupted is not None:
        return 128 + signal.Signals[outcome.interrupted].value  # 130 SIGINT, 143 SIGTERM
    return EXIT_PASS if outcome.passed else EXIT_FAIL


class FanoutError(Exception):
    """An error fanout reports as one line on stderr before exiting with `exit_code`."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(FanoutError):
    """The command line does not make sense (two task sources, a bad option value)."""


class TaskFileError(FanoutError):
    """The task file cannot be read or is not valid; the message starts with FILE:LINE."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


class StoreError(FanoutError):
    """The output folder cannot be created or written."""


class OutputClosedError(Exception):
    """Standard output was closed by its reader (`fanout run | head`): nothing more
    can be printed, and the run stops as for SIGPIPE."""


class IOFailure(FanoutError):
    """Writing or reading fanout's own files, or its standard output, failed at the
    operating system (disk full, file too large, no inodes, a closed stdout): one line
    naming the path and the cause, exit 74, never recorded as a signal."""

    exit_code = EXIT_IO

    @classmethod
    def of(cls, path: object, error: OSError, doing: str = "cannot write") -> FanoutError:
        """The error to report for `error` on `path`: an IOFailure when the system ran
        out of something (space, inodes, a size limit) or the device failed; a
        StoreError (exit 2) when the path itself is wrong (no such folder, no access)."""
        cause = error.strerror or str(error)
        kind = cls if error.errno in IO_ERRNOS else StoreError
        return kind(f"{path}: {doing}: {cause}")


# What the system runs out of, or a device failing: not the user's path being wrong.
IO_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EMFILE,
     errno.ENFILE, errno.ENOMEM, errno.EBADF}
)  # fmt: skip
