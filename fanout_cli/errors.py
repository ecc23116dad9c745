"""fanout's own failures. A failed *task* is data (a TaskResult), never one of these."""

from __future__ import annotations

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


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
