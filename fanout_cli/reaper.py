"""No descendant of a task outlives it, even one that left its process group.

A task runs in its own session and process group, and fanout ends that group when the
task ends. A descendant that calls setsid or setpgid leaves the group. On Linux, fanout
is a child subreaper (prctl PR_SET_CHILD_SUBREAPER): when such a descendant's parent
exits it becomes fanout's child instead of init's, so fanout can find it, end it
(the --termseq signals, as for the group) and reap it, so that no zombie stays either.

Which task a re-parented process came from: its session is the task's (the leader's
pid) unless it called setsid; else the task's mark, an environment variable every task
inherits (`FANOUT_TASK_MARK`), read from /proc/PID/environ. A session that an escaped
process leads is remembered as the task's, so that its own children are found as well.
A descendant that clears its environment and starts a new session cannot be told
apart; fanout leaves it alone. Elsewhere (macOS) the subreaper does not exist and
`Orphans` does nothing: the documented limit stays.

How a group is ended is a `TermSeq` (--termseq: TERM, grace, KILL unless told), read
from its text by fanout_cli/termseq.py (imported only when the option is given);
`signals_of` is the one way through it, awaited by the local executor and waited for
by a Dask worker's thread."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import signal
import sys
import time
from collections.abc import Collection, Iterator, Mapping
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
        descriptor = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:  # one read: the kernel makes the line whole (a file object costs 3x the calls)
        stat = os.read(descriptor, 4096)
    except OSError:
        return None
    finally:
        os.close(descriptor)
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


def own_children() -> set[int] | None:
    """The pids of this process's children, every thread's (/proc/self/task/*/children:
    a few reads, where a pass over /proc reads a file per process); None where the
    kernel does not list them (CONFIG_PROC_CHILDREN off, no procfs)."""
    if not _lists_children():
        return None
    children: set[int] = set()
    for thread in os.listdir("/proc/self/task"):
        try:
            descriptor = os.open(f"/proc/self/task/{thread}/children", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # the thread ended meanwhile (fanout's children are the
            continue  # main thread's: it starts every process)
        try:
            while chunk := os.read(descriptor, 65536):
                children.update(map(int, chunk.split()))
        finally:
            os.close(descriptor)
    return children


@functools.cache
def _lists_children() -> bool:
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


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


@dataclass(frozen=True)
class TermSeq:
    """The signals that end a task's process group, each with the longest wait that
    follows it for the group to empty (seconds); the last is SIGKILL (its wait unused).
    Its text form (`TERM,5s,KILL`, str() below) is read by fanout_cli/termseq.py."""

    steps: tuple[tuple[int, float], ...]

    @classmethod
    def default(cls, grace: float) -> TermSeq:
        """TERM, `grace`, KILL: --grace's sequence, and fanout's default."""
        return cls(((int(signal.SIGTERM), grace), (int(signal.SIGKILL), 0.0)))

    @classmethod
    def kill_now(cls) -> TermSeq:
        """KILL at once (a second Ctrl-C, a worker that is closing)."""
        return cls(((int(signal.SIGKILL), 0.0),))

    @property
    def total_wait(self) -> float:
        """The longest the sequence can take, from its first signal to its KILL."""
        return sum((wait for _, wait in self.steps[:-1]), 0.0)

    def __str__(self) -> str:
        """The text form fanout_cli/termseq.py reads back: TERM,5s,INT,300ms,KILL."""
        items = [_signal_name(self.steps[0][0])]
        for (_, wait), (signum, _) in zip(self.steps, self.steps[1:], strict=False):
            items += [_wait_text(round(wait * 1000)), _signal_name(signum)]
        return ",".join(items)

    def schedule(self, start: float) -> list[tuple[float, int]]:
        """(when, signal) of each step, had nothing ended before: from `start`."""
        when, timed = start, []
        for signum, wait in self.steps:
            timed.append((when, signum))
            when += wait
        return timed


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name.removeprefix("SIG")
    except ValueError:  # a real-time signal has no name of its own
        return str(signum)


def _wait_text(milliseconds: int) -> str:
    if milliseconds % 1000 == 0:
        return f"{milliseconds // 1000}s"
    return f"{milliseconds}ms" if milliseconds < 1000 else f"{milliseconds / 1000!r}s"


def signals_of(pgid: int, sequence: TermSeq) -> Iterator[float]:
    """Send the sequence's signals to a process group in turn. After each but the
    KILL, yield its wait: the caller waits up to that long for the group to empty. The
    sequence stops as soon as the group has no running member (or is gone)."""
    for signum, wait in sequence.steps:
        if not signal_group(pgid, signum) or signum == signal.SIGKILL:
            return
        yield wait
        if not group_alive(pgid):
            return


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


def _signal_once(process: Process, signum: int) -> None:
    """Signal a process, and the group it leads (if it does) with it, once: a trap in
    it runs once for each signal of the sequence."""
    _signal(process.pid, signum, group=process.group == process.pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


@dataclass
class Leftovers:
    """An ended task whose re-parented descendants are being ended."""

    mark: str
    group: int  # the task's process group, also its session: the leader's pid
    steps: list[tuple[float, int]]  # (when, signal): the task's --termseq from its end
    give_up_at: float
    sessions: set[int]  # the task's, and those its escaped descendants lead
    group_left: bool = True  # its group had members when the leader exited
    found: set[int] = field(default_factory=set)  # seen alive: theirs even as zombies
    escaped: set[int] = field(default_factory=set)  # of `found`, those not in `group`
    sent: int = 0  # how many of `steps` have gone out

    @property
    def killed(self) -> bool:
        return self.sent == len(self.steps)

    @property
    def last_signal(self) -> int | None:
        return self.steps[self.sent - 1][1] if self.sent else None


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

    def task_ended(self, mark: str | None, group: int, sequence: TermSeq, *,
                   group_left: bool = True) -> None:  # fmt: skip
        """The task is over: what it left is ended by the next sweeps, each signal of
        `sequence` at its time from now (the waits run from the task's end).
        `group_left=False`: its group was found empty as the leader exited, so only
        what left the group before can remain (no process joins an empty group)."""
        if mark is not None:
            steps = (TermSeq.kill_now() if self._hurried else sequence).schedule(time.monotonic())
            give_up_at = steps[-1][0] + _GIVE_UP_SECONDS
            self._ended.append(Leftovers(mark, group, steps, give_up_at, {group}, group_left))

    def hurry(self) -> None:
        """KILL at once instead of waiting out the sequence (a second Ctrl-C)."""
        self._hurried = True
        for leftovers in self._ended:
            if not leftovers.killed:
                leftovers.steps[leftovers.sent :] = [(0.0, signal.SIGKILL)]

    def reap_exited(self, running: Collection[int]) -> None:
        """Reap what running tasks left re-parented here that has exited: zombies in a
        running task's session (which keeps its id while its leader runs). Else a long
        task that leaves many short-lived processes would pile them up."""
        if not self.active or not running or not self._strays(running):
            return
        me = os.getpid()
        for process in processes():
            theirs = process.session in running and process.pid not in running
            if theirs and process.zombie and process.ppid == me:
                _reap(process.pid)

    def sweep(self, running: Collection[int]) -> bool:
        """One pass: send what each ended task left (its re-parented descendants) the
        signals of its sequence that are due, KILL its group with the final one, reap
        what exited. `running`: the
        process groups (= leader pids) of tasks still running, which are not touched.
        True while some ended task still has something left."""
        if not self._ended:
            return False
        if not any(
            leftovers.group_left and signal_group(leftovers.group, 0) for leftovers in self._ended
        ) and not self._strays(running):  # each ended group is empty, no orphan came here
            self._ended = []
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
        alive = {child.pid: child for child in children if not child.zombie}
        still: list[Leftovers] = []
        for leftovers in self._ended:
            while not leftovers.killed and now >= leftovers.steps[leftovers.sent][0]:
                signum = leftovers.steps[leftovers.sent][1]
                leftovers.sent += 1
                self._send(leftovers, signum, alive, live_groups - set(running))
            left = leftovers.group in live_groups or any(
                child.pid in leftovers.found or child.session in leftovers.sessions
                for child in children
            )
            if left and now < leftovers.give_up_at:
                still.append(leftovers)
        self._ended = still
        return bool(still)

    @staticmethod
    def _strays(running: Collection[int]) -> bool:
        """Whether this process may have a child that is no running task's leader: an
        orphan re-parented here (the few children lists say; a pass over /proc where
        the kernel keeps none). Read after the ended groups were found empty, whose
        members were re-parented before they exited."""
        children = own_children()
        return children is None or any(child not in running for child in children)

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
            if child.group != leftovers.group:
                leftovers.escaped.add(child.pid)
            signum = leftovers.last_signal  # found late: the step it missed
            if signum == signal.SIGKILL or (signum is not None and child.group != leftovers.group):
                _signal_once(child, signum)

    @staticmethod
    def _send(
        leftovers: Leftovers, signum: int, alive: Mapping[int, Process], groups: Collection[int]
    ) -> None:
        """Signal what the task left; with SIGKILL, its group too. The other signals go
        only to what left the group: the executor sends the group the whole sequence.
        Only pids still unreaped (and so not reused): `alive` children of this process,
        and live `groups` that are no running task's."""
        killing = signum == signal.SIGKILL
        if killing and leftovers.group in groups:
            _signal(leftovers.group, signal.SIGKILL, group=True)
        for pid in (leftovers.found if killing else leftovers.escaped) & alive.keys():
            _signal_once(alive[pid], signum)
