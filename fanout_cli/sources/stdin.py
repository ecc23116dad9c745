"""Standard input as a task source: one value a line (or NUL-separated), read a chunk
at a time only when the runner asks for the next task, so the first task starts before
input ends and a million lines cost no more memory than a hundred."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import AsyncIterator, Iterator

import anyio

from fanout_cli.models import TaskSpec
from fanout_cli.sources.values import ValueTasks

CHUNK_BYTES = 1 << 16


class RecordSplitter:
    """Cuts a byte stream into records at a separator; keeps only the unfinished one."""

    def __init__(self, separator: bytes) -> None:
        self.separator = separator
        self._pending: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        if self.separator not in chunk:
            self._pending.append(chunk)
            return []
        pieces = chunk.split(self.separator)
        if self._pending:
            pieces[0] = b"".join([*self._pending, pieces[0]])
        self._pending = [pieces.pop()] if pieces[-1] else []
        return pieces

    def finish(self) -> list[bytes]:
        rest = b"".join(self._pending)
        self._pending = []
        return [rest] if rest else []


class StdinSource:
    """Values from a file descriptor: lines (LF or CRLF) or, with -0, NUL-separated."""

    total: int | None = None  # not known until the input ends

    def __init__(self, tasks: ValueTasks, null_separated: bool = False, fd: int = 0) -> None:
        self.tasks = tasks
        self.null_separated = null_separated
        self.fd = fd
        self.name = "stdin"
        self._splitter = RecordSplitter(b"\0" if null_separated else b"\n")
        self._records = 0  # every record, empty ones too, so stdin:N is line N
        self._seq = 0

    def _values(self, chunk: bytes) -> Iterator[tuple[int, str]]:
        """(seq, value) of one chunk (b"" at the end of input), one at a time."""
        records = self._splitter.feed(chunk) if chunk else self._splitter.finish()
        for record in records:
            self._records += 1
            data = record[:-1] if not self.null_separated and record.endswith(b"\r") else record
            if data:
                self._seq += 1
                yield self._seq, data.decode("utf-8", "surrogateescape")  # kept byte-exact

    def _blocking_values(self) -> Iterator[tuple[int, str]]:
        while True:
            chunk = _read(self.fd)
            yield from self._values(chunk)
            if not chunk:
                return

    def specs(self) -> Iterator[TaskSpec]:
        """All the tasks, with blocking reads."""
        for seq, value in self._blocking_values():
            yield self.tasks.spec(seq, value, f"stdin:{self._records}")

    def commands(self, jobs: int) -> Iterator[tuple[tuple[str, ...] | str, str | None]]:
        """For --dry-run: the commands alone, without building whole tasks (a million
        lines must print in seconds). `{%}` gets the slots 1..jobs in turn."""
        for seq, value in self._blocking_values():
            yield self.tasks.command(seq, value, (seq - 1) % jobs + 1), None

    async def stream(self) -> AsyncIterator[TaskSpec]:
        pollable = _pollable(self.fd)
        while True:
            if pollable:
                await anyio.wait_readable(self.fd)
            chunk = _read(self.fd)
            for seq, value in self._values(chunk):
                yield self.tasks.spec(seq, value, f"stdin:{self._records}")
            if not chunk:
                return


def _pollable(fd: int) -> bool:
    """Pipes and sockets can be waited on; files and /dev/null are read straight away."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:  # stdin closed: read() will report the end of input
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _read(fd: int) -> bytes:
    while True:
        try:
            return os.read(fd, CHUNK_BYTES)
        except BlockingIOError:  # an inherited O_NONBLOCK descriptor woke us too early
            os.set_blocking(fd, True)
        except OSError as exc:
            if exc.errno == errno.EBADF:  # no stdin at all (started with 0<&-): no values
                return b""
            raise
