"""What the runner does as an attempt or a task ends: check that the attempt's output
was kept, then read the task's result from its attempts, write its details file and,
with --scorer, score it; and the records of a task the run stopped (`Halt`): the
attempt it cut short, or the task it never started."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fanout_cli import interpret
from fanout_cli.aop.writer import RunStore
from fanout_cli.errors import IOFailure
from fanout_cli.executors import AttemptPlan
from fanout_cli.models import Attempt, TaskResult, TaskSpec, TaskStatus
from fanout_cli.options import RunConfig


@dataclass(frozen=True)
class Halt:
    """Why the run stopped early, and the status unfinished tasks end with."""

    reason: str
    status: TaskStatus
    signal: int | None = None  # set when a signal (Ctrl-C, SIGTERM) stopped the run


def cut_short(plan: AttemptPlan, started_at: float, now: float, halt: Halt,
              agent: Mapping[str, Any] | None) -> Attempt:  # fmt: skip
    """The attempt of `plan` that was running when the run stopped (`agent`: what an
    agent call had recorded), with the time limit it was under."""
    limit = plan.limit
    return Attempt(number=plan.number, started_at=started_at, finished_at=now,
                   status=halt.status, exit_code=None, signal=None, reason=halt.reason,
                   stdout_path=os.path.basename(plan.stdout_path),
                   stderr_path=os.path.basename(plan.stderr_path), agent=agent,
                   timeout=plan.timeout if limit is None else limit.seconds(),
                   timeout_rule=None if limit is None else limit.rule())  # fmt: skip


def not_started(spec: TaskSpec, halt: Halt) -> TaskResult:
    """The result of a task the run stopped before it began."""
    return TaskResult(spec=spec, status=halt.status, summary=f"not started ({halt.reason})",
                      reason=halt.reason)  # fmt: skip


def check_outputs_kept(store: RunStore, plan: AttemptPlan, attempt: Attempt) -> None:
    """IOFailure when the attempt may have lost output fanout could not store: the
    run folder's disk is full, or the task was killed for writing an output file
    past the file-size limit (SIGXFSZ, or a shell's exit 153 for it)."""
    xfsz = signal.SIGXFSZ
    if attempt.signal == xfsz or attempt.exit_code == 128 + xfsz:
        import resource  # only then: a plain run does not load it

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        for path in (plan.stdout_path, plan.stderr_path):
            if limit != resource.RLIM_INFINITY and _size(path) >= limit:
                raise IOFailure(f"{path}: cannot write: File too large (the file-size limit)")
    store.check_room()


async def finish(
    config: RunConfig,
    store: RunStore,
    spec: TaskSpec,
    attempts: list[Attempt],
    ending: interpret.Ending | None,
) -> TaskResult:
    """The task's result from its attempts (`ending`: the run stopped it), with its
    details file written (and, with --scorer, its score)."""
    result = await interpret.read_result(
        config.verdict, config.output.summary_chars, store, spec, attempts, ending
    )
    details_file = store.write_details(result, store.run_id)
    if config.verdict.scorer and result.status is TaskStatus.SUCCESS:
        from fanout_cli.scorer import run_scorer  # only runs with --scorer

        details_path = Path(store.folder.member(details_file))
        scored = await run_scorer(config.verdict.scorer, details_path)
        result = replace(result, score=scored.score, scorer=scored.record)
        store.write_details(result, store.run_id)
    return result


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1
