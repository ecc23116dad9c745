"""The worker side of the Dask executor: what runs in a Dask worker process's task
thread (its guardian process is dask_guardian.py). Plain data in and out; distributed
is imported by the task itself. See executors/dask.py for what runs where, and why."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

import fanout_cli
from fanout_cli.executors.dask_guardian import encoded_termseq, guardian_of_this_worker
from fanout_cli.limits import when_descriptors_allow_blocking
from fanout_cli.reaper import (
    MARK_VARIABLE,
    Orphans,
    TermSeq,
    group_alive,
    signal_group,
    signals_of,
)

if TYPE_CHECKING:
    import distributed

POLL_SECONDS = 0.1  # how often a running task asks whether the coordinator stops it
REAP_EVERY_SECONDS = 1.0  # how often what it left and has exited is reaped
_GROUP_POLL_SECONDS = 0.02
_OUTPUT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


class ClusterClient(Protocol):
    """The part of distributed.Client this module uses. distributed leaves most of its
    Client unannotated; one cast to this keeps the rest of the module type-checked."""

    scheduler: Any  # an RPC proxy: `await scheduler.event_set(name=...)`
    status: str  # "running" while connected

    def submit(
        self,
        func: Callable[[RemoteCommand], RemoteOutcome],
        command: RemoteCommand,
        *,
        key: str,
        pure: bool,
        resources: dict[str, float] | None,
        retries: int,
    ) -> distributed.Future[RemoteOutcome]: ...

    def run(self, function: Callable[[], str], *, on_error: str) -> Awaitable[dict[str, Any]]: ...

    def subscribe_topic(self, topic: str, handler: Callable[[tuple[float, Any]], None]) -> None: ...

    def unsubscribe_topic(self, topic: str) -> None: ...

    def cancel(self, futures: list[distributed.Future[Any]], *, reason: str) -> Awaitable[None]: ...

    def close(self) -> Awaitable[None]: ...

    def sync(self, func: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any: ...




@dataclass(frozen=True)
class RemoteCommand:
    """One attempt, as sent to a worker (pickled: plain data only)."""

    argv: tuple[str, ...]
    cwd: str | None  # absolute; the attempt is an error when the worker lacks it
    default_cwd: str  # the coordinator's directory: used when the worker has it
    env: dict[str, str]
    timeout: float | None
    termseq: TermSeq  # how the command's group is ended (--termseq)
    signals: str  # the prefix of this attempt's Event names (its Dask key)
    output_cap: int
    fanout_version: str
    nice: int | None = None  # --nice: the niceness of the command's process


@dataclass(frozen=True)
class RemoteOutput:
    data: bytes  # the last output_cap bytes
    size: int  # every byte the command wrote

    @property
    def dropped(self) -> int:
        return self.size - len(self.data)


_NO_OUTPUT = RemoteOutput(b"", 0)


@dataclass(frozen=True)
class RemoteOutcome:
    """What a worker reports of one attempt."""

    worker: str
    returncode: int | None = None  # negative: killed by that signal
    timed_out: bool = False
    start_error: OSError | None = None
    problem: str | None = None  # this worker cannot run fanout's tasks
    lost: bool = False  # a re-run of an attempt whose worker died: not run again
    stdout: RemoteOutput = _NO_OUTPUT
    stderr: RemoteOutput = _NO_OUTPUT


def worker_fanout_version() -> str:
    return fanout_cli.__version__


def run_command_on_worker(command: RemoteCommand) -> RemoteOutcome:
    """The Dask task: run one attempt's command and report how it ended."""
    import distributed

    worker = distributed.get_worker()
    if command.fanout_version != fanout_cli.__version__:
        return RemoteOutcome(
            worker.address,
            problem=f"worker {worker.address} runs fanout {fanout_cli.__version__}, "
            f"not {command.fanout_version}; install the same version on every worker",
        )
    client = cast(ClusterClient, distributed.get_client())
    claim = client.sync(_claim, client, command.signals, worker.address)
    if claim is not None:
        return RemoteOutcome(worker.address, lost=claim == "lost")
    orphans = Orphans()  # the worker process becomes a subreaper on its first task
    mark = orphans.new_mark()
    with (
        tempfile.TemporaryFile(dir=worker.local_directory) as stdout,
        tempfile.TemporaryFile(dir=worker.local_directory) as stderr,
    ):
        try:
            process: subprocess.Popen[bytes] = when_descriptors_allow_blocking(
                subprocess.Popen,
                command.argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                cwd=_working_directory(command),
                env={**os.environ, **command.env, **({MARK_VARIABLE: mark} if mark else {})},
                start_new_session=True,  # own process group: pgid == pid
            )
        except OSError as exc:
            return RemoteOutcome(worker.address, start_error=exc)
        if command.nice is not None:  # right after the start (fanout_cli/nice.py says why)
            _renice(process.pid, command.nice)
        guardian = guardian_of_this_worker()
        guardian.tell(f"watch {process.pid} {encoded_termseq(command.termseq)}")
        signals = _Signals(client, command)
        with _running_lock:
            _running.add(process.pid)
        try:
            returncode, timed_out = _supervise(process, command, signals, orphans)
        except BaseException:
            orphans.hurry()  # the worker is closing: what the attempt left goes at once
            raise
        finally:
            guardian.tell(f"done {process.pid}")  # it sweeps what the group left running
            with _running_lock:
                _running.discard(process.pid)
            orphans.task_ended(mark, process.pid, command.termseq)
            _end_leftovers(orphans, signals)
        return RemoteOutcome(
            worker.address,
            returncode=returncode,
            timed_out=timed_out,
            stdout=_tail(stdout, command.output_cap),
            stderr=_tail(stderr, command.output_cap),
        )


def _renice(pid: int, nice: int) -> None:
    from fanout_cli.nice import renice  # only for --nice

    renice(pid, nice)  # refused: the task runs at the worker's niceness, as GNU parallel's


async def _claim(client: ClusterClient, signals: str, address: str) -> str | None:
    """Before the command starts: "lost" when an earlier run of this attempt started it
    (its worker died; Dask re-ran the task), "stopped" when the coordinator already
    stopped it; else mark it started here. One trip to the worker's event loop."""
    scheduler = client.scheduler
    if await scheduler.event_is_set(name=f"{signals}/started"):
        return "lost"
    await scheduler.event_set(name=f"{signals}/started")
    await scheduler.event_set(name=f"{signals}/ran-on/{address}")
    if await scheduler.event_is_set(name=f"{signals}/stop"):
        return "stopped"
    return None


class _Signals:
    """The coordinator's requests for one attempt, read from the scheduler."""

    def __init__(self, client: ClusterClient, command: RemoteCommand) -> None:
        self._client = client
        self._stop = f"{command.signals}/stop"
        self._kill = f"{command.signals}/kill"

    def stop(self) -> bool:
        return bool(self._client.sync(self._client.scheduler.event_is_set, name=self._stop))

    def kill(self) -> bool:
        return bool(self._client.sync(self._client.scheduler.event_is_set, name=self._kill))


def _working_directory(command: RemoteCommand) -> str | None:
    if command.cwd is not None:
        return command.cwd
    return command.default_cwd if os.path.isdir(command.default_cwd) else None


def _supervise(
    process: subprocess.Popen[bytes], command: RemoteCommand, signals: _Signals, orphans: Orphans
) -> tuple[int, bool]:
    """Wait for the command, its deadline or a stop from the coordinator; returns the
    returncode and whether it timed out. Never leaves the group running. Now and then,
    reaps what the command left re-parented to this worker that has exited."""
    deadline = None if command.timeout is None else time.monotonic() + command.timeout
    next_reap = time.monotonic() + REAP_EVERY_SECONDS
    try:
        while True:
            if time.monotonic() >= next_reap:
                next_reap += REAP_EVERY_SECONDS
                orphans.reap_exited((process.pid,))
            left = POLL_SECONDS if deadline is None else deadline - time.monotonic()
            try:
                return process.wait(max(0.0, min(POLL_SECONDS, left))), False
            except subprocess.TimeoutExpired:
                pass
            if deadline is not None and time.monotonic() >= deadline:
                return _end_group(process, command.termseq, signals), True
            if signals.stop():
                sequence = TermSeq.kill_now() if signals.kill() else command.termseq
                return _end_group(process, sequence, signals), False
    except BaseException:  # the scheduler is gone, the worker is closing: no orphans
        _end_group(process, TermSeq.kill_now(), None)
        raise


def _end_group(
    process: subprocess.Popen[bytes], sequence: TermSeq, signals: _Signals | None
) -> int:
    """Send `sequence` to the group (reaper.signals_of, as the local executor does),
    waiting after each signal for the group to empty; a kill request cuts it short."""
    for wait in signals_of(process.pid, sequence):
        if _kill_requested_within(wait, process, signals):
            signal_group(process.pid, signal.SIGKILL)
            break
    return process.wait()


def _kill_requested_within(
    wait: float, process: subprocess.Popen[bytes], signals: _Signals | None
) -> bool:
    """Wait up to `wait` for the group to empty; True when the coordinator asks for a
    kill meanwhile."""
    now = time.monotonic()
    end, next_poll = now + wait, now + POLL_SECONDS
    while time.monotonic() < end:
        if process.poll() is not None and not group_alive(process.pid):
            return False
        if signals is not None and time.monotonic() >= next_poll:
            next_poll += POLL_SECONDS
            if signals.kill():
                return True
        time.sleep(_GROUP_POLL_SECONDS)
    return False


_running_lock = threading.Lock()
_running: set[int] = set()  # process groups of the attempts running in this worker


def _end_leftovers(orphans: Orphans, signals: _Signals) -> None:
    """End what the attempt left outside its group (re-parented to this worker) with its
    --termseq; a kill request from the coordinator cuts it short."""
    next_poll = time.monotonic() + POLL_SECONDS
    while True:
        with _running_lock:
            running = frozenset(_running)
        if not orphans.sweep(running):
            return
        if time.monotonic() >= next_poll:
            next_poll += POLL_SECONDS
            if _kill_requested(signals):
                orphans.hurry()
        time.sleep(_GROUP_POLL_SECONDS)


def _kill_requested(signals: _Signals) -> bool:
    try:
        return signals.kill()
    except Exception:  # the scheduler is unreachable: nobody waits for the sequence
        return True


def _tail(handle: IO[bytes], cap: int) -> RemoteOutput:
    size = os.fstat(handle.fileno()).st_size
    handle.seek(max(0, size - cap))
    return RemoteOutput(handle.read(cap), size)
