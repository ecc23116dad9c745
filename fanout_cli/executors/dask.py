"""Run process tasks on a Dask cluster: `--executor dask://HOST:PORT`.

What runs where. fanout (the coordinator) keeps everything but the processes: the
runner's window (`--jobs` tasks in flight on the cluster), retries, strategies, the AOP
folder, agent HTTP calls (those never reach this executor). Each attempt of a process
or agent-cli task is one Dask task, `run_command_on_worker`, which runs the command on
a worker in its own process group, with its own `--timeout` (counted from the moment
the process starts, as locally) and `--termseq` (TERM, --grace, KILL); it returns the
exit status and the outputs, and the coordinator writes them into the run folder, so
the folder reads like a local run's. Workers import this module: they need fanout-cli installed,
the same version as the coordinator (checked when connecting, and by every task).

On the worker, a command runs in the coordinator's working directory if that path
exists there (a shared filesystem or the same checkout path), else in the worker's
own; a task's relative `cwd` is resolved against the coordinator's directory and must
exist on the worker. Its environment is the worker process's plus the task's `env`.

Decisions:
- Outputs: the worker captures stdout and stderr in unlinked temporary files and
  returns the last OUTPUT_CAP_BYTES (1 MiB) of each with its total size. The files in
  the run folder then hold that tail; when bytes were dropped, the attempt's reason
  says how many ("stdout capped: first 451424 of 1500000 bytes dropped"). The files
  are written when the attempt ends, not streamed while it runs.
- Stopping: `future.cancel()` cannot stop a running task, so each attempt has Dask
  Events (`<key>/stop`, `<key>/kill`) that the task polls every POLL_SECONDS. A
  cancelled scope (early verdict, deadline, Ctrl-C) sets `stop` and waits, shielded,
  for the task to end its group (--termseq) and report; kill_all (the second
  Ctrl-C) sets `kill` too, and the group is killed at once.
- A worker that dies after it started an attempt's command: the attempt is `error`,
  "worker died: tcp://...". Dask would re-run the task on another worker (up to
  `distributed.scheduler.allowed-failures`), but a command is only ever run again as
  a new fanout attempt that the run records; so the task claims an attempt with an
  Event `<key>/started` before it starts the command, and a re-run that finds it set
  reports the loss instead of running. The coordinator learns of the death from the
  scheduler's `remove-worker` event at once (the task also set `<key>/ran-on/<worker>`,
  so it knows the attempt had started there). Attempts the dead worker held but had
  not started are left to Dask, which runs them elsewhere. A run clears its Events.
  A guardian process per worker (see `dask_guardian.guard_process_groups`) ends the process groups
  of a worker that died, so nothing it started keeps running.
- Resources (`--resources GPU=1`): a task waits on the scheduler until a worker with
  the resource is free, as Dask does (workers may join later). `--timeout` starts with
  the process, so it does not bound that wait; `--deadline` and Ctrl-C do.
- A relative `--timeout P%` moves while the task runs (relative_limit.py), so the
  worker cannot hold it: the coordinator does, counted from when it submitted the
  attempt (as the attempt's recorded duration, and so the median, is counted), and
  stops the task when it passes as it stops a cancelled one.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.abc

import fanout_cli
from fanout_cli.aop import write_output
from fanout_cli.errors import UsageError
from fanout_cli.executors import AttemptPlan, TimeLimit, ended_attempt, start_failure
from fanout_cli.executors.dask_cluster import (
    CLUSTER_CALL_SECONDS,
    check_workers,
    close,
    connect,
    quiet_distributed_logs,
)
from fanout_cli.executors.dask_worker import (
    ClusterClient,
    RemoteCommand,
    RemoteOutcome,
    run_command_on_worker,
)
from fanout_cli.executors.process import classify_exit, timeout_reason
from fanout_cli.models import Attempt, TaskSpec, TaskStatus
from fanout_cli.options import PolicyOptions

if TYPE_CHECKING:
    import distributed

OUTPUT_CAP_BYTES = 1 << 20  # of each of stdout and stderr, the tail kept
STOP_MARGIN_SECONDS = 5.0  # beyond --termseq's waits, to hear back from a task told to stop


# --- the coordinator ------------------------------------------------------------------


def connect_executor(policy: PolicyOptions) -> DaskExecutor:
    """The executor for `policy.executor` (dask://HOST:PORT), once the scheduler has
    answered and its workers run this fanout; a UsageError (exit 2) otherwise."""
    try:
        import distributed  # noqa: F401  # the optional extra
    except ImportError:
        raise UsageError(
            f"--executor {policy.executor}: needs the dask extra: "
            "pip install 'fanout-cli[dask]'"
        ) from None
    if not os.environ.get("FANOUT_DEBUG"):
        quiet_distributed_logs()
    executor = DaskExecutor(policy.executor, parse_resources(policy.resources))
    executor.nice = policy.nice
    anyio.run(executor.check_cluster)
    return executor


def parse_resources(items: Iterable[str]) -> dict[str, float]:
    """("GPU=1", "licence=0.5") -> {"GPU": 1.0, "licence": 0.5} (validated by config)."""
    return {name: float(amount) for name, _, amount in (item.partition("=") for item in items)}


@dataclass
class _Live:
    """An attempt in flight on the cluster."""

    key: str
    waiting: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    lost_on: str | None = None  # the worker that died while running it
    kill: bool = False  # kill_all: KILL at once


class DaskExecutor:
    def __init__(self, executor: str, resources: dict[str, float]) -> None:
        self.executor = executor  # as the user wrote it, for messages
        self.address = "tcp://" + executor.removeprefix("dask://")
        self.resources = resources
        self.nice: int | None = None  # --nice: the workers renice each task's process
        # Keys and Event names are unique to this fanout process: runs never mix.
        self._tag = uuid.uuid4().hex[:12]
        self._directory = os.getcwd()
        self._client: ClusterClient | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._live: dict[str, _Live] = {}
        self._clear_at_end: set[str] = set()  # Events a late task start may still read

    async def check_cluster(self) -> None:
        """Connect once before the run folder is made (dask_cluster.check_workers)."""
        await check_workers(self.address, self.executor)

    def kill_all(self) -> None:
        for live in self._live.values():
            live.kill = True
            if self._group is not None:
                self._group.start_soon(self._set_events, [f"{live.key}/kill", f"{live.key}/stop"])

    def abandoned(self, spec: TaskSpec) -> None:
        return None  # the outputs are in the run folder already

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        client = await connect(self.address, self.executor)
        self._client = client
        try:
            client.subscribe_topic("all", self._on_cluster_event)
            async with anyio.create_task_group() as group:
                self._group = group
                try:
                    yield
                finally:
                    self._group = None
                    with anyio.CancelScope(shield=True):
                        await self._clear_events(sorted(self._clear_at_end))
        finally:
            self._client = None
            # Else the scheduler tries to tell this closing client that it left, and
            # logs a CRITICAL "Closed comm" for every run.
            with contextlib.suppress(Exception):
                client.unsubscribe_topic("all")
            with anyio.CancelScope(shield=True):
                await close(client)

    async def run_attempt(self, spec: TaskSpec, plan: AttemptPlan) -> Attempt:
        client = self._client
        assert client is not None, "run_attempt outside session()"
        started_at = time.time()
        command = spec.command_for_slot(plan.slot)
        argv = ("/bin/sh", "-c", command) if isinstance(command, str) else tuple(command)
        key = f"fanout-{self._tag}-{spec.seq}-{plan.number}"
        remote = RemoteCommand(
            argv=argv,
            cwd=None if spec.cwd is None else os.path.join(self._directory, spec.cwd),
            default_cwd=self._directory,
            env=dict(spec.env),
            timeout=plan.timeout,
            termseq=plan.stop_sequence,
            signals=key,
            output_cap=OUTPUT_CAP_BYTES,
            fanout_version=fanout_cli.__version__,
            nice=self.nice,
        )
        live = _Live(key)
        self._live[key] = live
        future = client.submit(
            run_command_on_worker,
            remote,
            key=key,
            pure=False,
            resources=self.resources or None,
            retries=0,
        )
        result: RemoteOutcome | Exception | None = None
        timer = TimeLimit(plan, fixed=False)  # a fixed --timeout is the worker's own
        try:
            with timer:
                timer.start()
                result = await self._result(live, future)
            if timer.expired:  # a moving limit (--timeout P%) passed: stop it as a cancel does
                with anyio.CancelScope(shield=True):
                    result = await self._stop(live, future, plan.stop_sequence.total_wait)
        except BaseException:  # the runner stopped it: end the remote group first
            with anyio.CancelScope(shield=True):
                result = await self._stop(live, future, plan.stop_sequence.total_wait)
                _write_outputs(plan, result)
            raise
        finally:
            del self._live[key]
            self._forget(live, future, result)
        _write_outputs(plan, result)
        return _describe(spec, plan, started_at, remote, live, result, timer.expired)

    async def _result(
        self, live: _Live, future: distributed.Future[RemoteOutcome]
    ) -> RemoteOutcome | Exception | None:
        """The task's outcome; its exception (the cluster failed it); or None when the
        worker that started it died (the cluster-event handler cancels `waiting`)."""
        with live.waiting:
            try:
                return cast(RemoteOutcome, await future)
            except Exception as exc:  # KilledWorker, cancelled by the scheduler, ...
                return exc
        return None

    async def _stop(
        self, live: _Live, future: distributed.Future[Any], waits: float
    ) -> RemoteOutcome | None:
        """Tell the task to stop and, if it has begun, wait for it to end its process
        group and report; a task that has not begun is cancelled and never starts."""
        assert self._client is not None
        scheduler = self._client.scheduler
        self._clear_at_end.update(f"{live.key}/{name}" for name in ("started", "stop", "kill"))
        outcome = None
        with anyio.move_on_after(waits + STOP_MARGIN_SECONDS):
            with contextlib.suppress(Exception):
                if live.kill:
                    await scheduler.event_set(name=f"{live.key}/kill")
                await scheduler.event_set(name=f"{live.key}/stop")
                # Set `stop` first: a task claims `started` before it reads `stop`.
                if await scheduler.event_is_set(name=f"{live.key}/started"):
                    result = await future
                    outcome = result if isinstance(result, RemoteOutcome) else None
        with anyio.move_on_after(CLUSTER_CALL_SECONDS), contextlib.suppress(Exception):
            await self._client.cancel([future], reason="stopped by fanout")
        return outcome

    def _forget(self, live: _Live, future: distributed.Future[Any], result: object) -> None:
        """Let the cluster drop the result, and the attempt's Events once nothing can
        read them any more (a stopped or lost attempt's wait for the session's end)."""
        future.release()  # type: ignore[no-untyped-call]  # distributed leaves it unannotated
        if isinstance(result, RemoteOutcome) and not result.lost and live.lost_on is None:
            names = [f"{live.key}/started", f"{live.key}/ran-on/{result.worker}"]
            if self._group is not None:
                self._group.start_soon(self._clear_events, names)
        else:
            self._clear_at_end.update(f"{live.key}/{name}" for name in ("started", "stop", "kill"))

    def _on_cluster_event(self, event: tuple[float, Any]) -> None:
        """The scheduler's "all" topic: a worker that leaves fails the attempts it had
        started (checked through their `ran-on` Event; the rest Dask runs elsewhere)."""
        _, message = event
        if not isinstance(message, dict) or message.get("action") != "remove-worker":
            return
        worker = str(message.get("worker"))
        for key in message.get("processing-tasks") or ():
            live = self._live.get(key) if isinstance(key, str) else None
            if live is not None and self._group is not None:
                self._group.start_soon(self._check_lost, live, worker)

    async def _check_lost(self, live: _Live, worker: str) -> None:
        assert self._client is not None
        name = f"{live.key}/ran-on/{worker}"
        self._clear_at_end.add(name)
        with anyio.move_on_after(CLUSTER_CALL_SECONDS), contextlib.suppress(Exception):
            if await self._client.scheduler.event_is_set(name=name):
                live.lost_on = worker
                live.waiting.cancel()

    async def _set_events(self, names: list[str]) -> None:
        if self._client is None:
            return
        with anyio.move_on_after(CLUSTER_CALL_SECONDS), contextlib.suppress(Exception):
            for name in names:
                await self._client.scheduler.event_set(name=name)

    async def _clear_events(self, names: list[str]) -> None:
        """Events live on the scheduler until cleared: clear this run's."""
        if self._client is None or self._client.status != "running" or not names:
            return  # a scheduler that went away took its Events with it
        scheduler = self._client.scheduler
        with anyio.move_on_after(CLUSTER_CALL_SECONDS), contextlib.suppress(Exception):
            async with anyio.create_task_group() as group:
                for name in names:
                    group.start_soon(functools.partial(scheduler.event_clear, name=name))


def _write_outputs(plan: AttemptPlan, outcome: RemoteOutcome | Exception | None) -> None:
    """The run folder's stdout and stderr files: what the worker sent back, or empty."""
    remote = outcome if isinstance(outcome, RemoteOutcome) else None
    for path, output in (
        (plan.stdout_path, remote.stdout if remote else None),
        (plan.stderr_path, remote.stderr if remote else None),
    ):
        write_output(path, b"" if output is None else output.data)


def _describe(
    spec: TaskSpec,
    plan: AttemptPlan,
    started_at: float,
    remote: RemoteCommand,
    live: _Live,
    result: RemoteOutcome | Exception | None,
    timed_out: bool,
) -> Attempt:
    """Classify the task's outcome exactly as a local run's (process.classify_exit).
    `timed_out`: the coordinator stopped it at its moving limit."""
    if timed_out and isinstance(result, RemoteOutcome) and result.returncode is not None:
        result = replace(result, timed_out=True)
    elif timed_out and live.lost_on is None:  # stopped before it began, or no answer came
        return ended_attempt(plan, started_at, TaskStatus.TIMEOUT, timeout_reason(plan))
    if result is None or (isinstance(result, RemoteOutcome) and result.lost):
        reason = f"worker died: {live.lost_on or 'the worker that started it was lost'}"
        return ended_attempt(plan, started_at, TaskStatus.ERROR, reason)
    if isinstance(result, Exception):
        return ended_attempt(plan, started_at, TaskStatus.ERROR, cluster_failure(result))
    if result.problem is not None:
        return ended_attempt(plan, started_at, TaskStatus.ERROR, result.problem)
    if result.start_error is not None:
        reason = start_failure(result.start_error, remote.argv[0], remote.cwd)
        return ended_attempt(plan, started_at, TaskStatus.ERROR, reason)
    if result.returncode is None:  # stopped before it started: only seen when cancelled
        return ended_attempt(plan, started_at, TaskStatus.CANCELLED, "stopped before it started")
    attempt = classify_exit(spec, plan, started_at, result.returncode, result.timed_out)
    notes = [
        f"{name} capped: first {output.dropped} of {output.size} bytes dropped"
        for name, output in (("stdout", result.stdout), ("stderr", result.stderr))
        if output.dropped
    ]
    if notes:
        attempt = replace(attempt, reason="; ".join(filter(None, [attempt.reason, *notes])))
    return attempt


def cluster_failure(error: Exception) -> str:
    """Why the cluster could not give an attempt's result, in one line."""
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    if isinstance(error, KilledWorker):
        return f"worker died: {error.last_worker.address}"
    if isinstance(error, FutureCancelledError) and error.reason == "scheduler-connection-lost":
        return "lost the connection to the Dask scheduler"
    if isinstance(error, FutureCancelledError):
        return f"cancelled on the cluster: {error.reason}"
    if isinstance(error, ImportError):  # the worker could not load fanout's task function
        return (
            f"the worker cannot run fanout ({error}); install "
            f"fanout-cli=={fanout_cli.__version__} on every worker"
        )
    text = str(error).strip().splitlines()
    return f"cluster error: {type(error).__name__}" + (f": {text[0]}" if text else "")
