"""Values from standard input or a file: one a line (or NUL-separated), read a chunk
at a time only when the runner asks for the next task, so the first task starts before
input ends and a million lines cost no more memory than a hundred."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import AsyncIterator, Iterator

import anyio

from fanout_cli.errors import UsageError

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


class RecordReader:
    """Values from a file descriptor (stdin, or a `::::`/`-a` file): lines (LF or CRLF)
    or, with -0, NUL-separated; empty ones are skipped. Read a chunk at a time, only
    when the next value is asked for."""

    def __init__(self, fd: int, null_separated: bool = False, name: str = "stdin",
                 owns_fd: bool = False) -> None:  # fmt: skip
        self.fd = fd
        self.owns_fd = owns_fd  # a file fanout opened: closed at its end
        self.null_separated = null_separated
        self.name = name
        self._splitter = RecordSplitter(b"\0" if null_separated else b"\n")
        self._records = 0  # every record, empty ones too, so stdin:N is line N
        self._ready: list[tuple[int, str]] = []  # read ahead by first()
        self._ended = False

    def _values(self, chunk: bytes) -> Iterator[tuple[int, str]]:
        """(line, value) of one chunk (b"" at the end of input), one at a time."""
        records = self._splitter.feed(chunk) if chunk else self._splitter.finish()
        for record in records:
            self._records += 1
            data = record[:-1] if not self.null_separated and record.endswith(b"\r") else record
            if data:
                yield self._records, data.decode("utf-8", "surrogateescape")  # byte-exact

    def _chunk(self) -> bytes:
        """The next chunk; b"" at the end. A read error is the input's, said in one line."""
        if self._ended:
            return b""
        try:
            chunk = read_chunk(self.fd)
        except OSError as exc:
            raise UsageError(f"{self.name}: cannot read: {exc.strerror}") from None
        self._ended = not chunk
        if self._ended and self.owns_fd:
            os.close(self.fd)
        return chunk

    def all_lazily(self) -> Iterator[tuple[int, str]]:
        """Every value, with blocking reads."""
        yield from self._take_ready()
        while not self._ended:
            yield from self._values(self._chunk())

    def all(self) -> list[tuple[int, str]]:
        return list(self.all_lazily())

    def first(self) -> str | None:
        """The first value, taken off (a header); None when there is none."""
        while not self._ready and not self._ended:
            self._ready += self._values(self._chunk())
        return self._ready.pop(0)[1] if self._ready else None

    def _take_ready(self) -> list[tuple[int, str]]:
        ready, self._ready = self._ready, []
        return ready

    async def chunks(self) -> AsyncIterator[list[tuple[int, str]]]:
        """The values, a chunk's worth at a time, waiting for a pipe without blocking."""
        yield self._take_ready()
        waits = pollable(self.fd)
        while not self._ended:
            if waits:
                await anyio.wait_readable(self.fd)
            yield list(self._values(self._chunk()))


def pollable(fd: int) -> bool:
    """Pipes and sockets can be waited on; files and /dev/null are read straight away."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:  # stdin closed: read() will report the end of input
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def read_chunk(fd: int, size: int = CHUNK_BYTES) -> bytes:
    """Up to `size` bytes (b"" at the end, and when there is no stdin at all)."""
    while True:
        try:
            return os.read(fd, size)
        except BlockingIOError:  # an inherited O_NONBLOCK descriptor woke us too early
            os.set_blocking(fd, True)
        except OSError as exc:
            if exc.errno == errno.EBADF:  # no stdin at all (started with 0<&-): no input
                return b""
            raise
