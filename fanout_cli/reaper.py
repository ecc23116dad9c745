"""No descendant of a task outlives it, even one that left its process group.

A task runs in its own session and process group, and fanout ends that group when the
task ends. A descendant that calls setsid or setpgid leaves the group. On Linux, fanout
is a child subreaper (prctl PR_SET_CHILD_SUBREAPER): when such a descendant's parent
exits it becomes fanout's child instead of init's, so fanout can find it, end it
(TERM, grace, KILL, as for the group) and reap it, so that no zombie stays either.

Which task a re-parented process came from: its session is the task's (the leader's
pid) unless it called setsid; else the task's mark, an environment variable every task
inherits (`FANOUT_TASK_MARK`), read from /proc/PID/environ. A session that an escaped
process leads is remembered as the task's, so that its own children are found as well.
A descendant that clears its environment and starts a new session cannot be told
apart; fanout leaves it alone. Elsewhere (macOS) the subreaper does not exist and
`Orphans` does nothing: the documented limit stays."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import signal
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field

MARK_VARIABLE = "FANOUT_TASK_MARK"
_PR_SET_CHILD_SUBREAPER = 36
_GIVE_UP_SECONDS = 5.0  # after the KILL: a process in uninterruptible sleep is let go
_numbers = itertools.count(1)  # marks are unique in a process, whichever thread asks


@functools.cache
def become_subreaper() -> bool:
    """Make this process the child subreaper of its descendants (Linux); once."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # only here: the one call that needs it, once per process

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):  # no libc symbol: a static or odd interpreter
        return False


@dataclass(frozen=True)
class Process:
    """The fields of /proc/PID/stat this module reads."""

    pid: int
    ppid: int
    group: int
    session: int
    zombie: bool


def read_process(pid: int) -> Process | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ..."; comm may hold spaces and parentheses.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return Process(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0] in b"ZX")


def processes() -> list[Process]:
    """Every process this one can see (one pass over /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (process := read_process(int(entry))) is not None:
            found.append(process)
    return found


def signal_group(pgid: int, signum: int) -> bool:
    """Signal every process of a group; False when the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - the pgid was reused by another user
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether the group still has a running member.

    Zombies count as gone: an orphan's zombie may wait for a parent that does not reap
    it (PID 1 in many containers), so a signal-0 probe alone would wait out the grace."""
    if not signal_group(pgid, 0):
        return False
    if not os.path.isdir("/proc"):  # no procfs (macOS): the probe is all there is
        return True
    return any(process.group == pgid and not process.zombie for process in processes())


def mark_of(pid: int) -> str | None:
    """The task mark in a process's environment (None: no mark, or unreadable)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environ = handle.read()
    except OSError:
        return None
    key = MARK_VARIABLE.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(key):
            return entry[len(key) :].decode("ascii", "replace")
    return None


def _signal(pid: int, signum: int, *, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


@dataclass
class Leftovers:
    """An ended task whose re-parented descendants are being ended."""

    mark: str
    group: int  # the task's process group, also its session: the leader's pid
    kill_at: float
    give_up_at: float
    sessions: set[int]  # the task's, and those its escaped descendants lead
    found: set[int] = field(default_factory=set)  # seen alive: theirs even as zombies
    killed: bool = False


class Orphans:
    """What this process (a run, or a Dask worker) does as a subreaper: give each task
    a mark, and end what an ended task left, in passes (`sweep`) over /proc."""

    def __init__(self) -> None:
        self.active = become_subreaper()
        self._ended: list[Leftovers] = []
        self._hurried = False

    @property
    def pending(self) -> bool:
        return bool(self._ended)

    def new_mark(self) -> str | None:
        """The mark for a task's environment; None when there is nothing to mark for."""
        return f"{os.getpid()}.{next(_numbers)}" if self.active else None

    def task_ended(self, mark: str | None, group: int, grace: float) -> None:
        """The task is over: what it left is ended by the next sweeps."""
        if mark is not None:
            kill_at = time.monotonic() + (0.0 if self._hurried else grace)
            leftovers = Leftovers(mark, group, kill_at, kill_at + _GIVE_UP_SECONDS, {group})
            self._ended.append(leftovers)

    def hurry(self) -> None:
        """KILL at once instead of waiting out the grace (a second Ctrl-C)."""
        self._hurried = True
        for leftovers in self._ended:
            leftovers.kill_at = 0.0

    def reap_exited(self, running: Collection[int]) -> None:
        """Reap what running tasks left re-parented here that has exited: zombies in a
        running task's session (which keeps its id while its leader runs). Else a long
        task that leaves many short-lived processes would pile them up."""
        if not self.active or not running:
            return
        me = os.getpid()
        for process in processes():
            theirs = process.session in running and process.pid not in running
            if theirs and process.zombie and process.ppid == me:
                _reap(process.pid)

    def sweep(self, running: Collection[int]) -> bool:
        """One pass: TERM what each ended task left (its group, its re-parented
        descendants), KILL it after the grace, reap what exited. `running`: the
        process groups (= leader pids) of tasks still running, which are not touched.
        True while some ended task still has something left."""
        if not self._ended:
            return False
        now = time.monotonic()
        everyone = processes()
        live_groups = {process.group for process in everyone if not process.zombie}
        me = os.getpid()
        # The living first: a zombie is known as a task's once its session is.
        children = sorted(
            (p for p in everyone if p.ppid == me and p.pid not in running),
            key=lambda process: process.zombie,
        )
        for child in children:
            owner = self._owner(child, running)
            if owner is not None:
                self._end(owner, child)
        alive = {child.pid for child in children if not child.zombie}
        still: list[Leftovers] = []
        for leftovers in self._ended:
            if now >= leftovers.kill_at and not leftovers.killed:
                leftovers.killed = True
                self._kill(leftovers, alive, live_groups - set(running))
            left = leftovers.group in live_groups or any(
                child.pid in leftovers.found or child.session in leftovers.sessions
                for child in children
            )
            if left and now < leftovers.give_up_at:
                still.append(leftovers)
        self._ended = still
        return bool(still)

    def _owner(self, child: Process, running: Collection[int]) -> Leftovers | None:
        """The ended task `child` (re-parented to this process) comes from, if any."""
        mark = None if child.zombie else mark_of(child.pid)
        for leftovers in self._ended:
            if child.pid in leftovers.found or (mark is not None and mark == leftovers.mark):
                return leftovers
        if mark is not None and mark.startswith(f"{os.getpid()}."):
            return None  # a running task's
        for leftovers in self._ended:
            if child.session in leftovers.sessions and child.session not in running:
                return leftovers
        return None

    @staticmethod
    def _end(leftovers: Leftovers, child: Process) -> None:
        if child.zombie:
            _reap(child.pid)
            leftovers.found.discard(child.pid)  # the pid is free for reuse now
            return
        if child.pid not in leftovers.found:
            leftovers.found.add(child.pid)
            leftovers.sessions.add(child.session)
            signum = signal.SIGKILL if leftovers.killed else signal.SIGTERM
            _signal(child.pid, signum, group=False)
            if child.group == child.pid:  # it leads a group: its members go too
                _signal(child.group, signum, group=True)

    @staticmethod
    def _kill(leftovers: Leftovers, alive: Collection[int], groups: Collection[int]) -> None:
        """SIGKILL the task's group and what it left. Only pids still unreaped (and so
        not reused): `alive` children of this process, and live `groups` that are no
        running task's."""
        if leftovers.group in groups:
            _signal(leftovers.group, signal.SIGKILL, group=True)
        for pid in leftovers.found & set(alive):
            _signal(pid, signal.SIGKILL, group=False)
            _signal(pid, signal.SIGKILL, group=True)  # when it leads a group
