"""Executors run one attempt of one task. The runner owns everything else.

Which executor runs a run's tasks is chosen by the scheme of `--executor` from one
table, `EXECUTORS`. An entry names its opener as "module:function" and the module is
imported only when a run opens that executor: a local run never imports distributed.

To add an executor: write its module (a class following `Executor` below, and a
function `open_...(policy) -> Executor`), then add one line to `EXECUTORS`. Agent
tasks are not an executor of the table: the run command wraps the chosen executor in
`executors.agent.AgentExecutor`, which hands it every task that is not an HTTP call.
Why a process could not start, and a signal's name, are said here for every executor
that runs processes; every executor that enforces --timeout builds its cancel scope
here too (TimeLimit), so that a relative limit (--timeout P%) can move it."""

from __future__ import annotations

import importlib
import os
import re
import signal
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, cast

import anyio

from fanout_cli.models import Attempt, TaskSpec, TaskStatus
from fanout_cli.reaper import TermSeq


class MovingLimit(Protocol):
    """A time limit that moves while attempts run (--timeout P%: the runner's
    relative_limit.MedianLimit). A protocol, so that executors do not import it."""

    def seconds(self) -> float | None: ...  # the limit now; None: none yet

    def hold(self, scope: anyio.CancelScope, started: float) -> None: ...

    def release(self, scope: anyio.CancelScope) -> None: ...

    def describe(self) -> str: ...  # "300% of the median"

    def rule(self) -> dict[str, Any]: ...  # for the attempt's details


@dataclass(frozen=True)
class AttemptPlan:
    """What the runner decided for one attempt: where output goes and how long it may take."""

    number: int
    slot: int  # 1..jobs, the worker slot this attempt holds
    stdout_path: str
    stderr_path: str
    timeout: float | None  # a fixed limit in seconds
    grace: float
    ok_exit: frozenset[int]
    termseq: TermSeq | None = None  # how the attempt is ended; None: TERM, grace, KILL
    limit: MovingLimit | None = None  # a moving limit (then `timeout` is None)

    @property
    def stop_sequence(self) -> TermSeq:
        return self.termseq or TermSeq.default(self.grace)


class TimeLimit:
    """An attempt's time limit as a cancel scope, counted from `start()`: the plan's
    fixed `timeout`, or its moving `limit`, which moves the scope's deadline as it
    changes. Every executor that enforces --timeout builds its scope here.
    `fixed=False`: only a moving limit (a Dask worker enforces a fixed one itself)."""

    def __init__(self, plan: AttemptPlan, *, fixed: bool = True) -> None:
        self.plan = plan
        self.scope = anyio.CancelScope()
        self._fixed = fixed

    def __enter__(self) -> TimeLimit:
        self.scope.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> bool:  # fmt: skip
        if self.plan.limit is not None:
            self.plan.limit.release(self.scope)
        return bool(self.scope.__exit__(kind, error, traceback))

    def start(self) -> None:
        """The limit counts from now."""
        now = anyio.current_time()
        if self.plan.limit is not None:
            self.plan.limit.hold(self.scope, now)
        elif self._fixed and self.plan.timeout is not None:
            self.scope.deadline = now + self.plan.timeout

    @property
    def expired(self) -> bool:
        """The limit ended the attempt."""
        return self.scope.cancelled_caught


def ended_attempt(
    plan: AttemptPlan,
    started_at: float,
    status: TaskStatus,
    reason: str,
    *,
    exit_code: int | None = None,
    signal: int | None = None,
    retryable: bool = True,
    agent: Mapping[str, Any] | None = None,
) -> Attempt:
    """The Attempt of `plan` that ends now, with the limit in effect as it ends."""
    limit = plan.limit
    return Attempt(
        number=plan.number,
        started_at=started_at,
        finished_at=time.time(),
        status=status,
        exit_code=exit_code,
        signal=signal,
        reason=reason,
        stdout_path=os.path.basename(plan.stdout_path),
        stderr_path=os.path.basename(plan.stderr_path),
        retryable=retryable,
        agent=agent,
        timeout=plan.timeout if limit is None else limit.seconds(),
        timeout_rule=None if limit is None else limit.rule(),
    )


class Executor(Protocol):
    def session(self) -> AbstractAsyncContextManager[None]:
        """Held open for the whole run: shared resources (child watcher, HTTP client)."""
        ...

    def kill_all(self) -> None:
        """Kill everything still running at once (a second Ctrl-C): no more grace."""
        ...

    def abandoned(self, spec: TaskSpec) -> Mapping[str, Any] | None:
        """What an attempt of `spec` that was cancelled mid-way had recorded (an agent
        call's request and exchanges), for its details file; None when nothing."""
        ...

    async def run_attempt(self, spec: TaskSpec, plan: AttemptPlan) -> Attempt:
        """Run one attempt to its end and describe it.

        A task that fails, times out or cannot start is an Attempt with that status,
        never an exception. When the caller's scope is cancelled, the attempt must
        stop everything it started (`plan.stop_sequence`) before re-raising."""
        ...


_ADDRESS = re.compile(r"([a-z][a-z0-9+.-]*)://([^:/\s]+):(\d{1,5})/?")


class Chosen(Protocol):
    """What opening an executor reads: the run's policy options (options.PolicyOptions;
    its opener reads the rest, such as --resources). A protocol, so that this module
    does not import the options."""

    @property
    def executor(self) -> str: ...


@dataclass(frozen=True)
class ExecutorKind:
    scheme: str  # the scheme a run records ("dask" for tcp:// too)
    opener: str  # "module:function", the function taking the RunConfig
    address: bool  # the URL is SCHEME://HOST:PORT (else the bare scheme: "local")


EXECUTORS: Mapping[str, ExecutorKind] = {
    "local": ExecutorKind("local", "fanout_cli.executors.process:open_local", address=False),
    "dask": ExecutorKind("dask", "fanout_cli.executors.dask:connect_executor", address=True),
    "tcp": ExecutorKind("dask", "fanout_cli.executors.dask:connect_executor", address=True),
}


def _forms() -> str:
    """How the accepted values are shown: "local or dask://HOST:PORT"."""
    shown: list[str] = []
    for name, kind in EXECUTORS.items():
        form = f"{name}://HOST:PORT" if kind.address else name
        if kind.scheme == name and form not in shown:
            shown.append(form)
    return " or ".join(shown)


def parse_executor_url(text: str) -> str:
    """An --executor value in its recorded form ("local", "dask://HOST:PORT");
    ValueError when it names no executor of the table."""
    kind = EXECUTORS.get(text)
    if kind is not None and not kind.address:
        return kind.scheme
    match = _ADDRESS.fullmatch(text)
    if match is not None:
        kind = EXECUTORS.get(match.group(1))
        port = int(match.group(3))
        if kind is not None and kind.address and 0 < port < 65536:
            return f"{kind.scheme}://{match.group(2)}:{port}"
    raise ValueError(f"expected {_forms()}, got {text!r}")


def executor_kind(url: str) -> ExecutorKind:
    """The table's entry for a recorded --executor value."""
    scheme = url.partition("://")[0] if "://" in url else url
    return EXECUTORS[scheme]


def open_executor(policy: Chosen) -> Executor:
    """The executor `policy.executor` names, ready to run (a remote one has answered;
    a UsageError, exit 2, when it cannot be reached or its extra is not installed)."""
    module_name, _, function = executor_kind(policy.executor).opener.partition(":")
    opener: Any = getattr(importlib.import_module(module_name), function)
    return cast(Executor, opener(policy))


def describe_signal(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def start_failure(error: OSError, program: str, cwd: str | None) -> str:
    """Why a command could not start, in words a user acts on."""
    if cwd is not None and error.filename == cwd:
        if isinstance(error, FileNotFoundError):
            return f"working directory not found: {cwd}"
        return f"cannot use working directory {cwd}: {error.strerror}"
    if isinstance(error, FileNotFoundError):
        return f"command not found: {program}"
    if isinstance(error, PermissionError):
        return f"permission denied: {program}"
    return f"cannot start {program}: {error.strerror}"
