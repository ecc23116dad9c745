"""Waiting for a child process to exit without a thread per child: on Linux through a
pidfd the event loop polls, elsewhere (or with FANOUT_CHILD_WATCHER=sigchld) through
SIGCHLD. `Child` is a child started with os.posix_spawn, reaped as Popen would be."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Protocol

import anyio
import anyio.abc

from fanout_cli.limits import OUT_OF_DESCRIPTORS

POLL_SECONDS = 0.02  # when no pidfd can be had (out of descriptors): poll this often


class ChildProcess(Protocol):
    """What the watchers need of a child: subprocess.Popen, or a posix_spawn'ed Child."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


class Child:
    """A child started with os.posix_spawn: reaped with waitpid, as Popen would."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


class ChildWatcher(Protocol):
    async def wait(self, process: ChildProcess) -> int:
        """Wait for the child to exit and reap it; return its returncode."""
        ...


class PidfdWatcher:
    """Linux 5.3+: a pidfd becomes readable when its process exits."""

    async def wait(self, process: ChildProcess) -> int:
        if process.returncode is not None:
            return process.returncode
        try:
            pidfd = os.pidfd_open(process.pid)
        except ProcessLookupError:  # already reaped
            return process.wait()
        except OSError as exc:  # out of descriptors: poll instead
            if exc.errno not in OUT_OF_DESCRIPTORS:
                raise
            while (returncode := process.poll()) is None:
                await anyio.sleep(POLL_SECONDS)
            return returncode
        try:
            while (returncode := process.poll()) is None:
                await _readable(pidfd)
        finally:
            os.close(pidfd)
        return returncode


async def _readable(descriptor: int) -> None:
    """anyio.wait_readable, straight on the asyncio loop anyio runs: one future and one
    reader, where anyio's layers cost as much as the rest of the wait (a task's exit is
    waited for once a task). Cancelling the awaiting task (a cancel scope) ends it."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # another anyio backend
        await anyio.wait_readable(descriptor)
        return
    ready = loop.create_future()
    loop.add_reader(descriptor, _settle, ready)
    try:
        await ready
    finally:
        loop.remove_reader(descriptor)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():  # readable again before the waiter ran
        future.set_result(None)


class SigchldWatcher:
    """Portable: every SIGCHLD wakes the waiters whose child has exited."""

    def __init__(self) -> None:
        self._waiting: dict[int, tuple[ChildProcess, anyio.Event]] = {}

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(signal.SIGCHLD) as signals:
            task_status.started()
            async for _ in signals:
                for process, exited in list(self._waiting.values()):
                    if process.poll() is not None:
                        exited.set()

    async def wait(self, process: ChildProcess) -> int:
        exited = anyio.Event()
        self._waiting[process.pid] = (process, exited)
        try:
            # Registered first, checked second: an exit between the two still wakes us.
            if process.poll() is None:
                await exited.wait()
        finally:
            del self._waiting[process.pid]
        return process.wait()


def pidfd_supported() -> bool:
    if os.environ.get("FANOUT_CHILD_WATCHER", "").lower() == "sigchld":
        return False
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True
