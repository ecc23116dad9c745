"""A task's stdin fed from memory (--pipe): a pipe whose read end the child gets as fd 0
and whose write end fanout fills, without blocking the event loop, then closes so that
the child sees the end of its input.

The block is written from the one copy the task holds (memoryview slices, no copies).
A child that exits, or closes its stdin, before reading it all is no error: the rest is
dropped (EPIPE ends the feed; SIGPIPE is ignored in fanout, as Python does)."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from fanout_cli.models import StdinBlock

_GONE = (errno.EPIPE, errno.ECONNRESET)
Child = TypeVar("Child")


class StdinFeed:
    """One attempt's stdin pipe. `read_end` goes to the child (close it once spawned)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.read_end, self.write_end = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.write_end, False)

    def child_started(self) -> None:
        """The child holds its own copy of the read end; fanout's must go, or the
        pipe would never report that the child is gone."""
        self._close_read_end()

    async def write(self) -> None:
        """Write the whole block (or until the child stops reading), then close."""
        try:
            with memoryview(self.data) as view:
                position = 0
                while position < len(view):
                    try:
                        position += os.write(self.write_end, view[position:])
                    except BlockingIOError:
                        await anyio.wait_writable(self.write_end)
                    except OSError as exc:
                        if exc.errno in _GONE:
                            return
                        raise
        finally:
            self.close()

    def close(self) -> None:
        self._close_read_end()
        if self.write_end >= 0:
            with contextlib.suppress(OSError):
                os.close(self.write_end)
            self.write_end = -1

    def _close_read_end(self) -> None:
        if self.read_end >= 0:
            with contextlib.suppress(OSError):
                os.close(self.read_end)
            self.read_end = -1


async def wait_feeding(feed: StdinFeed | None, waiting: Callable[[], Awaitable[int]]) -> int:
    """Await `waiting` (a child's exit) while the feed writes its stdin; a feed still
    writing when the child is gone stops there."""
    if feed is None:
        return await waiting()
    async with anyio.create_task_group() as group:
        group.start_soon(feed.write)
        returncode = await waiting()
        group.cancel_scope.cancel()
    return returncode


async def start_fed(
    spawn: Callable[[int | None], Awaitable[Child]], block: StdinBlock | None
) -> tuple[Child, StdinFeed | None]:
    """`spawn(stdin)`: with /dev/null (None), or with a pipe to feed when there is a block."""
    if block is None:
        return await spawn(None), None
    feed = StdinFeed(block.data)
    try:
        child = await spawn(feed.read_end)
    except BaseException:
        feed.close()
        raise
    feed.child_started()
    return child, feed
