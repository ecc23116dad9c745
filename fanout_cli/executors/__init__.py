"""Executors run one attempt of one task. The runner owns everything else."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from fanout_cli.models import Attempt, TaskSpec, TaskStatus


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
        stop everything it started (TERM, `plan.grace`, KILL) before re-raising."""
        ...
