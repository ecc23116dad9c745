"""Executors run one attempt of one task. The runner owns everything else.

Which executor runs a run's tasks is chosen by the scheme of `--executor` from one
table, `EXECUTORS`. An entry names its opener as "module:function" and the module is
imported only when a run opens that executor: a local run never imports distributed.

To add an executor: write its module (a class following `Executor` below, and a
function `open_...(policy) -> Executor`), then add one line to `EXECUTORS`. Agent
tasks are not an executor of the table: the run command wraps the chosen executor in
`executors.agent.AgentExecutor`, which hands it every task that is not an HTTP call.
Why a process could not start, and a signal's name, are said here for every executor
that runs processes."""

from __future__ import annotations

import importlib
import os
import re
import signal
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, cast

from fanout_cli.models import Attempt, TaskSpec, TaskStatus
from fanout_cli.reaper import TermSeq


@dataclass(frozen=True)
class AttemptPlan:
    """What the runner decided for one attempt: where output goes and how long it may take."""

    number: int
    slot: int  # 1..jobs, the worker slot this attempt holds
    stdout_path: str
    stderr_path: str
    timeout: float | None
    grace: float
    ok_exit: frozenset[int]
    termseq: TermSeq | None = None  # how the attempt is ended; None: TERM, grace, KILL

    @property
    def stop_sequence(self) -> TermSeq:
        return self.termseq or TermSeq.default(self.grace)


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
    """The Attempt of `plan` that ends now."""
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
