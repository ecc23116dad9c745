"""Run a task as a child process in its own process group.

stdout and stderr go straight to files (fanout never holds the bytes), stdin is
/dev/null (or, with --pipe, a pipe fed the task's block: feed.py), and every way out
of an attempt (exit, timeout, cancellation) leaves no member of the group behind:
the --termseq signals (SIGTERM, `grace`, SIGKILL unless told) go to the group.

Exits are awaited without a thread per child (watchers.py)."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from fanout_cli.aop import open_output
from fanout_cli.errors import STOP_SIGNALS
from fanout_cli.executors import (
    AttemptPlan,
    TimeLimit,
    describe_signal,
    ended_attempt,
    start_failure,
)
from fanout_cli.executors.launcher import Launcher
from fanout_cli.executors.watchers import (
    Child,
    ChildProcess,
    ChildWatcher,
    PidfdWatcher,
    SigchldWatcher,
    pidfd_supported,
)
from fanout_cli.limits import when_descriptors_allow
from fanout_cli.models import Attempt, StdinBlock, TaskSpec, TaskStatus
from fanout_cli.options import PolicyOptions
from fanout_cli.reaper import (
    MARK_VARIABLE,
    Orphans,
    TermSeq,
    group_alive,
    signal_group,
    signals_of,
)
from fanout_cli.values import format_duration

if TYPE_CHECKING:
    from fanout_cli.executors.feed import StdinFeed

_GROUP_POLL_SECONDS = 0.02
# How often what ended tasks left is looked for: tasks ending close together share
# one pass over /proc.
_ORPHAN_POLL_SECONDS = 0.05
_REAP_EVERY_SECONDS = 1.0
_SHELL_EXIT_MEANINGS = {126: "not executable", 127: "command not found"}


@functools.lru_cache(maxsize=256)
def _executable(name: str, search_path: str | None) -> str | None:
    return name if "/" in name else shutil.which(name, path=search_path)


def open_local(policy: PolicyOptions) -> ProcessExecutor:
    """--executor local (the default): processes on this machine."""
    return ProcessExecutor()


class ProcessExecutor:
    def __init__(self) -> None:
        self._watcher: ChildWatcher = PidfdWatcher()
        self._sweeper: anyio.abc.TaskGroup | None = None
        self._live: set[int] = set()  # process groups of attempts still running
        # os.environ decodes every variable on each read; a start reads them all.
        self._environ = dict(os.environ)
        self._launcher = Launcher(self._environ)
        self._doomed: set[int] = set()  # groups a task left, between TERM and KILL
        self._orphans = Orphans()  # Linux: what a task leaves outside its group
        self._task_ended = anyio.Event()
        self._hurried = False  # kill_all: what is ended from now on is KILLed at once

    def kill_all(self) -> None:
        self._hurried = True
        for pgid in [*self._live, *self._doomed]:
            signal_group(pgid, signal.SIGKILL)
        self._orphans.hurry()

    def abandoned(self, spec: TaskSpec) -> None:
        return None  # a process's record is its output files

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            if not pidfd_supported():
                watcher = SigchldWatcher()
                await group.start(watcher.serve)
                self._watcher = watcher
            self._sweeper = group
            if self._orphans.active:
                group.start_soon(self._end_orphans)
            try:
                yield
            finally:
                self._launcher.close()
                with anyio.CancelScope(shield=True):
                    await self._finish_sweeps()
                self._sweeper = None
                # Stops the SIGCHLD server; left-over sweeps are shielded and finish
                # within their grace before the group exits.
                group.cancel_scope.cancel()

    async def run_attempt(self, spec: TaskSpec, plan: AttemptPlan) -> Attempt:
        started_at = time.time()
        command = spec.command_for_slot(plan.slot)
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        mark = self._orphans.new_mark()
        extra = {**spec.env, MARK_VARIABLE: mark} if mark else spec.env
        spawn = functools.partial(self._spawn, argv, spec.cwd, extra, plan)
        try:  # with a pipe for stdin when the task reads a block (--pipe)
            process, feed = await when_descriptors_allow(_start, spawn, spec.stdin)
        except OSError as exc:
            return ended_attempt(
                plan, started_at, TaskStatus.ERROR, start_failure(exc, argv[0], spec.cwd)
            )
        timed_out = False
        stop = functools.partial(self._stop, process, plan.stop_sequence)
        self._live.add(process.pid)
        try:
            exited = functools.partial(self._watcher.wait, process)
            if plan.timeout is None and plan.limit is None:  # nothing can time out
                returncode = await _exit(feed, exited)
            else:
                with TimeLimit(plan) as timer:
                    timer.start()
                    returncode = await _exit(feed, exited)
                if timer.expired:
                    timed_out = True
                    returncode = await stop()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stop()
            raise
        finally:
            if feed is not None:
                feed.close()
            self._live.discard(process.pid)
            left = self._sweep_leftovers(process.pid, plan.stop_sequence)
            self._orphans.task_ended(mark, process.pid, plan.stop_sequence, group_left=left)
            self._task_ended.set()
        return classify_exit(spec, plan, started_at, returncode, timed_out)

    async def _finish_sweeps(self) -> None:
        """Before the run ends, wait until what ended tasks left is gone. The runner no
        longer listens for signals then: a stop signal (a second Ctrl-C) KILLs at once."""
        if not (self._orphans.pending or self._doomed):
            return
        async with anyio.create_task_group() as waiting:
            if threading.current_thread() is threading.main_thread():
                await waiting.start(self._kill_all_on_signal)
            while self._orphans.sweep(self._live) or self._doomed:
                await anyio.sleep(_GROUP_POLL_SECONDS)
            waiting.cancel_scope.cancel()

    async def _kill_all_on_signal(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
            task_status.started()
            async for _ in signals:
                self.kill_all()

    async def _end_orphans(self) -> None:
        """End what ended tasks left outside their group, a pass at a time; now and
        then, reap what running tasks left that has exited."""
        while True:
            with anyio.move_on_after(_REAP_EVERY_SECONDS):
                await self._task_ended.wait()
            if not self._task_ended.is_set():
                self._orphans.reap_exited(self._live)
                continue
            self._task_ended = anyio.Event()
            await anyio.sleep(_ORPHAN_POLL_SECONDS)  # let tasks ending together share it
            while self._orphans.sweep(self._live):
                await anyio.sleep(_GROUP_POLL_SECONDS)

    async def _spawn(
        self, argv: list[str], cwd: str | None, extra: Mapping[str, str], plan: AttemptPlan,
        stdin: int | None,
    ) -> ChildProcess:  # fmt: skip
        """posix_spawn (launcher.py: off the loop where it can): the child gets the
        output files as fds 1 and 2, `stdin` (None: /dev/null) as 0, a new session (its
        own process group), default SIGPIPE, fanout's environment plus `extra`.
        Popen where posix_spawn cannot do it: a working directory to change to."""
        stdout = open_output(plan.stdout_path)
        try:
            stderr = open_output(plan.stderr_path)
            try:
                if cwd is None and min(stdout, stderr, 3 if stdin is None else stdin) > 2:
                    search = extra.get("PATH", self._environ.get("PATH", os.defpath))
                    path = _executable(argv[0], search)
                    if path is None:
                        raise FileNotFoundError(errno.ENOENT, "not found", argv[0])
                    launched = self._launcher.spawn(path, argv, extra, stdin, stdout, stderr)
                    return Child(await launched)  # own process group: pgid == pid
                return subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL if stdin is None else stdin,
                    stdout=stdout,
                    stderr=stderr,
                    cwd=cwd,
                    env={**self._environ, **extra} if extra else None,
                    start_new_session=True,  # own process group: pgid == pid
                    close_fds=True,
                )
            finally:
                os.close(stderr)
        finally:
            os.close(stdout)

    async def _stop(self, process: ChildProcess, sequence: TermSeq) -> int:
        """End the whole group with `sequence` (--termseq), then reap the leader."""
        exited = functools.partial(self._watcher.wait, process)
        await end_group(process.pid, self._hurry(sequence), exited)
        return await self._watcher.wait(process)

    def _sweep_leftovers(self, pgid: int, sequence: TermSeq) -> bool:
        """The leader is gone; background children it left in its group go too. Whether
        it left any."""
        if not group_alive(pgid):
            return False
        if self._sweeper is None:  # pragma: no cover - attempts run inside session()
            signal_group(pgid, signal.SIGKILL)
            return True
        self._doomed.add(pgid)  # now: a kill_all before the sweep starts reaches it
        self._sweeper.start_soon(self._end_left_group, pgid, sequence)
        return True

    async def _end_left_group(self, pgid: int, sequence: TermSeq) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await end_group(pgid, self._hurry(sequence))
        finally:
            self._doomed.discard(pgid)

    def _hurry(self, sequence: TermSeq) -> TermSeq:
        return TermSeq.kill_now() if self._hurried else sequence


async def end_group(
    pgid: int, sequence: TermSeq, leader_exit: Callable[[], Awaitable[object]] | None = None
) -> None:
    """Send `sequence` to a process group: after each signal, wait up to its wait for
    the group to empty (for `leader_exit` first: the leader is reaped as it exits)."""
    for wait in signals_of(pgid, sequence):
        with anyio.move_on_after(wait):
            if leader_exit is not None:
                await leader_exit()
            while group_alive(pgid):
                await anyio.sleep(_GROUP_POLL_SECONDS)


def classify_exit(
    spec: TaskSpec, plan: AttemptPlan, started_at: float, returncode: int, timed_out: bool
) -> Attempt:
    """The Attempt of a process that ended with `returncode` (negative: killed by that
    signal): success, failure or timeout, with the reason a summary shows. Shared by
    every executor that runs processes, so that a remote run reads like a local one."""
    exit_code = returncode if returncode >= 0 else None
    signum = -returncode if returncode < 0 else None
    if timed_out:
        return ended_attempt(plan, started_at, TaskStatus.TIMEOUT, timeout_reason(plan),
                             exit_code=exit_code, signal=signum)  # fmt: skip
    if exit_code is not None and exit_code in plan.ok_exit:
        reason = f"exit {exit_code}" if exit_code else ""
        return ended_attempt(plan, started_at, TaskStatus.SUCCESS, reason, exit_code=exit_code)
    if signum is not None:
        reason = f"killed by {describe_signal(signum)}"
    else:
        reason = f"exit {exit_code}"
        meaning = _SHELL_EXIT_MEANINGS.get(exit_code or 0)
        if meaning and isinstance(spec.command, str):
            reason += f" ({meaning})"
    return ended_attempt(
        plan, started_at, TaskStatus.FAILURE, reason, exit_code=exit_code, signal=signum
    )


def timeout_reason(plan: AttemptPlan) -> str:
    """"timed out after 30s"; for a moving limit, the limit it had reached and its rule:
    "timed out after 6.3s (300% of the median)"."""
    if plan.limit is None:
        return f"timed out after {format_duration(plan.timeout or 0)}"
    seconds = format_duration(plan.limit.seconds() or 0)
    return f"timed out after {seconds} ({plan.limit.describe()})"


async def _start(spawn: Callable[[int | None], Awaitable[ChildProcess]],
                 block: StdinBlock | None) -> tuple[ChildProcess, StdinFeed | None]:  # fmt: skip
    """The child, with /dev/null as stdin, or a pipe fed its block (--pipe: feed.py,
    imported only then)."""
    if block is None:
        return await spawn(None), None
    from fanout_cli.executors.feed import start_fed

    return await start_fed(spawn, block)


async def _exit(feed: StdinFeed | None, exited: Callable[[], Awaitable[int]]) -> int:
    if feed is None:
        return await exited()
    from fanout_cli.executors.feed import wait_feeding

    return await wait_feeding(feed, exited)
