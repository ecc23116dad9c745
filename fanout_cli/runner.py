"""The one scheduler: a sliding window of tasks in flight, retries, timeouts and early ends.

Concurrency lives here and nowhere else: one task group, one semaphore for the window,
one cancel scope per task. Stopping the run (a decided strategy, --fail-fast, the
deadline) cancels those scopes; executors stop their processes on the way out."""

from __future__ import annotations

import functools
import os
import random
import shlex
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from fanout_cli import summaries
from fanout_cli.aop.documents import iso_time, journal_row, manifest_header
from fanout_cli.aop.writer import RowIndex, RunStore
from fanout_cli.config import RunConfig, format_duration
from fanout_cli.errors import OutputClosedError
from fanout_cli.executors import AttemptPlan, Executor
from fanout_cli.models import Attempt, Prior, RunReport, TaskResult, TaskSpec, TaskStatus
from fanout_cli.pacing import RateLimiter
from fanout_cli.strategies import StrategyOptions, Tracker

if TYPE_CHECKING:
    from fanout_cli.resume import ResumeBook

_RETRYABLE = (TaskStatus.FAILURE, TaskStatus.TIMEOUT)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_MAX_BACKOFF_SECONDS = 60.0
_THREAD_ANALYSIS_BYTES = 4 << 20
_SCORER_TIMEOUT_SECONDS = 60.0


class Listener(Protocol):
    """Receives progress as it happens (the live part of the human and jsonl formats)."""

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None: ...

    def task_ended(self, result: TaskResult) -> None: ...


@dataclass(frozen=True)
class Halt:
    """Why the run stopped early, and the status unfinished tasks end with."""

    reason: str
    status: TaskStatus
    signal: int | None = None  # set when a signal (Ctrl-C, SIGTERM) stopped the run


def strategy_options(config: RunConfig) -> StrategyOptions:
    return StrategyOptions(
        name=config.strategy,
        fail_fast=config.fail_fast,
        required_successes=config.required_successes,
        min_successes=config.min_successes,
        min_success_ratio=config.min_success_ratio,
    )


def backoff_delay(config: RunConfig, failed_attempts: int) -> float:
    """Exponential back-off with jitter: base * 2^(n-1), scaled by a random 0.5-1.0."""
    base: float = config.retry_delay * 2 ** (failed_attempts - 1)
    return min(base, _MAX_BACKOFF_SECONDS) * random.uniform(0.5, 1.0)


class Runner:
    def __init__(
        self,
        config: RunConfig,
        executor: Executor,
        store: RunStore,
        listener: Listener,
        total: int | None,
    ) -> None:
        self.config = config
        self.executor = executor
        self.store = store
        self.listener = listener
        self.tracker = Tracker(strategy_options(config), total)
        self.rows = RowIndex()
        self.halt: Halt | None = None
        self._running: dict[int, anyio.CancelScope] = {}
        self._free_slots = list(range(config.jobs, 0, -1))
        self._streaming = total is None
        self.interrupted: int | None = None  # the first stopping signal received
        self._rate = None if config.rate is None else RateLimiter(config.rate)

    async def run(self, specs: AsyncIterator[TaskSpec | Prior]) -> None:
        self._window = anyio.Semaphore(self.config.jobs)
        # Reading a stream (stdin) stops when the run stops; the tasks of a list known
        # up front are all recorded, the unstarted ones as not started.
        self._intake = anyio.CancelScope()
        async with self.executor.session(), anyio.create_task_group() as timers:
            if self.config.deadline is not None:
                timers.start_soon(self._deadline, self.config.deadline)
            if threading.current_thread() is threading.main_thread():
                await timers.start(self._watch_signals)
            async with anyio.create_task_group() as tasks:
                count = 0
                with self._intake:
                    async for item in _closing(specs):
                        if self._letting_go():
                            break
                        count += 1
                        if isinstance(item, Prior):
                            self._keep(item)
                        else:
                            await self._start_when_free(tasks, item)
                if self.tracker.total is None and not self._intake.cancelled_caught:
                    self._on_decision(self.tracker.set_total(count))
            timers.cancel_scope.cancel()

    def _letting_go(self) -> bool:
        """After a stop, tasks not yet started are let go without a result when they
        come from a stream (the rest of stdin is not read) or when a signal stopped the
        run (so that --resume runs them). Otherwise they are recorded as not started."""
        return self.halt is not None and (self._streaming or self.halt.signal is not None)

    async def _start_when_free(self, tasks: anyio.abc.TaskGroup, spec: TaskSpec) -> None:
        if self.halt is None:
            await self._window.acquire()
            if self.halt is None:
                tasks.start_soon(self._run_task, spec, self._free_slots.pop())
                return
            self._window.release()
        if not self._letting_go():
            self._record(self._not_started(spec, self.halt))

    async def _watch_signals(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """First SIGINT/SIGTERM/SIGHUP: stop (TERM, grace, KILL). Second: KILL at once."""
        with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
            task_status.started()
            async for signum in signals:
                if self.interrupted is None:
                    self.interrupted = signum
                    name = signal.Signals(signum).name
                    self.stop(f"interrupted by {name}", TaskStatus.CANCELLED, signum)
                    if self.halt is not None and self.halt.signal is None:
                        # The run was already ending for its strategy: still let go of
                        # whatever has not started, as an interrupted run does.
                        self.halt = replace(self.halt, signal=signum)
                else:
                    self.executor.kill_all()

    async def _deadline(self, seconds: float) -> None:
        await anyio.sleep(seconds)
        self.stop(f"run deadline of {format_duration(seconds)} reached", TaskStatus.TIMEOUT)

    def stop(self, reason: str, status: TaskStatus, signum: int | None = None) -> None:
        """End the run early: no new tasks; running ones are stopped and end as `status`."""
        if self.halt is not None:
            return
        self.halt = Halt(reason, status, signum)
        for scope in self._running.values():
            scope.cancel()
        if self._letting_go():
            self._intake.cancel()

    def _on_decision(self, decision: Any) -> None:
        if decision is not None:
            self.stop(f"stopped: {decision.reason}", TaskStatus.CANCELLED)

    def _tell(self, event: Callable[..., None], *args: Any) -> None:
        """Pass an event to the listener. When stdout is closed (`fanout run | head`),
        the run stops as it does for a signal: SIGPIPE, exit 141, tasks stopped."""
        try:
            event(*args)
        except OutputClosedError:
            if self.interrupted is None:
                self.interrupted = signal.SIGPIPE
                self.stop("output closed (SIGPIPE)", TaskStatus.CANCELLED, signal.SIGPIPE)

    def _keep(self, prior: Prior) -> None:
        """An earlier result stands (resume): it counts, and it is not run again."""
        self.rows.add(prior.seq, prior.offset)
        self._on_decision(self.tracker.observe(prior))

    def _record(self, result: TaskResult) -> None:
        offset = self.store.journal("task_ended", **journal_row(result))
        self.rows.add(result.seq, offset)
        self._tell(self.listener.task_ended, result)
        self._on_decision(self.tracker.observe(result))

    async def _run_task(self, spec: TaskSpec, slot: int) -> None:
        try:
            attempts, halt = await self._attempts(spec, slot)
            if attempts or not self._letting_go():  # else: stopped before it began
                self._record(await self._finish(spec, attempts, halt))
        finally:
            self._free_slots.append(slot)
            self._window.release()

    async def _attempts(self, spec: TaskSpec, slot: int) -> tuple[list[Attempt], Halt | None]:
        config = self.config
        retries = config.retries if spec.retries is None else spec.retries
        attempts: list[Attempt] = []
        in_flight: float | None = None
        scope = anyio.CancelScope()
        self._running[spec.seq] = scope
        if self.halt is not None:
            scope.cancel()
        try:
            with scope:
                for number in range(1, retries + 2):
                    if number > 1:
                        kept = self.store.set_aside_attempt(spec, number - 1)
                        attempts[-1] = replace(
                            attempts[-1], stdout_path=kept[0], stderr_path=kept[1]
                        )
                        await anyio.sleep(backoff_delay(config, number - 1))
                    if self._rate is not None:
                        await self._rate.acquire()
                    stdout_path, stderr_path = self.store.output_paths(spec)
                    plan = AttemptPlan(
                        number=number,
                        slot=slot,
                        stdout_path=stdout_path,
                        stderr_path=stderr_path,
                        timeout=config.timeout if spec.timeout is None else spec.timeout,
                        grace=config.grace,
                        ok_exit=config.ok_exit if spec.ok_exit is None else spec.ok_exit,
                    )
                    self.store.journal(
                        "task_started", seq=spec.seq, task_id=spec.task_id, attempt=number
                    )
                    self._tell(self.listener.task_started, spec, number, slot)
                    in_flight = time.time()
                    attempt = await self.executor.run_attempt(spec, plan)
                    in_flight = None
                    attempts.append(attempt)
                    if attempt.status not in _RETRYABLE or not attempt.retryable:
                        break
        finally:
            del self._running[spec.seq]
        if not scope.cancelled_caught:
            return attempts, None
        halt = self.halt or Halt("cancelled", TaskStatus.CANCELLED)
        if in_flight is not None:
            stdout_path, stderr_path = self.store.output_paths(spec)
            attempts.append(
                Attempt(
                    number=len(attempts) + 1,
                    started_at=in_flight,
                    finished_at=time.time(),
                    status=halt.status,
                    exit_code=None,
                    signal=None,
                    reason=halt.reason,
                    stdout_path=os.path.basename(stdout_path),
                    stderr_path=os.path.basename(stderr_path),
                    agent=self.executor.abandoned(spec),
                )
            )
        return attempts, halt

    def _not_started(self, spec: TaskSpec, halt: Halt) -> TaskResult:
        return TaskResult(
            spec=spec,
            status=halt.status,
            summary=f"not started ({halt.reason})",
            reason=halt.reason,
        )

    async def _finish(
        self, spec: TaskSpec, attempts: list[Attempt], halt: Halt | None
    ) -> TaskResult:
        if not attempts:  # cancelled before its first attempt began
            assert halt is not None
            return self._not_started(spec, halt)
        last = attempts[-1]
        status, reason = (halt.status, halt.reason) if halt else (last.status, last.reason)
        stdout_path, stderr_path = self.store.output_paths(spec)
        stdout_tail, stdout_size = summaries.read_tail(stdout_path)
        stderr_tail, stderr_size = summaries.read_tail(stderr_path)
        stdout_text = summaries.decode(stdout_tail)
        stderr_text = summaries.decode(stderr_tail)
        # An agent's reply is what its summary, score and vote come from (for an agent
        # CLI, the answer parsed out of the tool's JSON, not the JSON itself).
        reply = last.agent.get("text") if last.agent else None
        if isinstance(reply, str):
            stdout_text = reply[-summaries.TAIL_BYTES :]
        markers = summaries.parse_markers(stdout_text)
        if status is TaskStatus.SUCCESS and markers.status in ("failure", "failed", "error"):
            status, reason = TaskStatus.FAILURE, f"reported {markers.status}"
        succeeded = status is TaskStatus.SUCCESS
        summary = summaries.build_summary(
            succeeded,
            stdout_text,
            stderr_text,
            reason,
            markers,
            self.config.summary_chars,
            first_lines=isinstance(reply, str),
        )
        if succeeded and summary == "(no output)" and reason:
            summary = f"(no output, {reason})"
        result = TaskResult(
            spec=spec,
            status=status,
            summary=summary,
            attempts=tuple(attempts),
            exit_code=last.exit_code,
            signal=last.signal,
            reason=reason,
            started_at=attempts[0].started_at,
            finished_at=last.finished_at,
            stdout=self.store.describe_output(stdout_path, stdout_tail, stdout_size),
            stderr=self.store.describe_output(stderr_path, stderr_tail, stderr_size),
            score=self._score(markers, stdout_text),
            vote_key=await self._vote_key(
                status, summary, last, stdout_path, stdout_text, reply
            ),
            metrics=markers.metrics,
            reported_status=markers.status,
            interrupted=halt is not None and halt.signal is not None,
        )
        details_file = self.store.write_details(result, self.store.run_id)
        result = replace(result, details_file=details_file)
        if self.config.scorer and succeeded:
            score = await self._run_scorer(self.store.run_dir / details_file)
            result = replace(result, score=score)
            self.store.write_details(result, self.store.run_id)
        return result

    def _score(self, markers: summaries.Markers, stdout_text: str) -> float | None:
        if self.config.score:
            return summaries.score_from_regex(self.config.score, stdout_text)
        return markers.score

    async def _vote_key(
        self,
        status: TaskStatus,
        summary: str,
        last: Attempt,
        stdout_path: str,
        stdout_text: str,
        reply: object,
    ) -> str | None:
        if self.config.strategy != "majority-vote" or status is not TaskStatus.SUCCESS:
            return None
        vote_on = self.config.vote_on
        if vote_on == "summary":
            return summary
        if vote_on == "exit-code":
            return str(last.exit_code)
        if vote_on == "stdout" and isinstance(reply, str):
            return summaries.normalised_text_key(reply)
        if vote_on == "stdout":
            if os.path.getsize(stdout_path) > _THREAD_ANALYSIS_BYTES:
                return await anyio.to_thread.run_sync(summaries.normalised_stdout_key, stdout_path)
            return summaries.normalised_stdout_key(stdout_path)
        return summaries.vote_from_regex(vote_on, stdout_text)

    async def _run_scorer(self, details_path: Any) -> float | None:
        command = f"{self.config.scorer} {shlex.quote(str(details_path))}"
        with anyio.move_on_after(_SCORER_TIMEOUT_SECONDS):
            completed = await anyio.run_process(command, check=False)
            if completed.returncode == 0:
                return summaries.parse_number(summaries.decode(completed.stdout))
        return None


async def _closing(
    specs: AsyncIterator[TaskSpec | Prior],
) -> AsyncIterator[TaskSpec | Prior]:
    """Iterate, and close the source's generator even when the run stops reading it."""
    try:
        async for spec in specs:
            yield spec
    finally:
        aclose = getattr(specs, "aclose", None)
        if aclose is not None:
            await aclose()


class Source(Protocol):
    name: str
    total: int | None  # None for a stream whose length is known only at its end

    def specs(self) -> Iterator[TaskSpec]: ...

    def commands(self, jobs: int) -> Iterator[tuple[tuple[str, ...] | str, str | None]]: ...

    def stream(self) -> AsyncIterator[TaskSpec]: ...


@dataclass(frozen=True)
class Resume:
    run_dir: Path
    book: ResumeBook
    from_saved_list: bool  # the tasks come from the run's own saved list


def _planned_items(
    store: RunStore, source: Source, resume: Resume | None
) -> AsyncIterator[TaskSpec | Prior]:
    """The tasks to run (and, on resume, the earlier results that stand), with the run's
    saved task list brought up to date first: a task is never started before it is on
    the list, so a resume after a crash knows it."""
    if resume is None:
        if source.total is None:
            return _saving(store, source.stream())
        store.save_specs(source.specs())
        return source.stream()
    if resume.from_saved_list:
        return resume.book.plan(source.stream(), None)
    # A source given again replaces the saved list: an edited task file is now the run's.
    if source.total is None:
        store.replace_task_list([])
        return resume.book.plan(source.stream(), lambda spec: store.save_specs([spec]))
    planned = [resume.book.classify(spec) for spec in source.specs()]
    store.replace_task_list(numbered for _, numbered in planned)
    return _from_list([item for item, _ in planned])


async def _from_list(items: list[TaskSpec | Prior]) -> AsyncIterator[TaskSpec | Prior]:
    for item in items:
        yield item


async def _saving(store: RunStore, specs: AsyncIterator[TaskSpec]) -> AsyncIterator[TaskSpec]:
    """Save each task of a stream to the run's task list as it is read."""
    async for spec in specs:
        store.save_specs([spec])
        yield spec


def run_tasks(
    config: RunConfig,
    source: Source,
    executor: Executor,
    listener: Listener,
    *,
    title: str,
    options: dict[str, Any],
    resume: Resume | None = None,
) -> RunReport:
    """Create the run folder (or reopen it, to resume), run the tasks, return the report.

    `title` is completed with the task count and strategy: "fanout run x.toml: 12
    tasks, all-succeed". On Ctrl-C the manifest is still written (status interrupted)
    before the KeyboardInterrupt goes on."""
    started_at = time.time()
    argv = list(sys.argv)
    if resume is None:
        store = RunStore(config.output_dir, config.run_id)
        header = manifest_header(
            run_id=store.run_id, argv=argv, options=options, started_at=started_at
        )
        store.journal("run_started", run_id=store.run_id, argv=argv, options=options)
    else:
        from fanout_cli.aop.reader import read_manifest_header  # only when resuming

        store = RunStore.reopen(resume.run_dir)
        header = {**read_manifest_header(store.run_dir), "options": options}
        header["resumed_at"] = iso_time(started_at)
        store.journal("run_resumed", run_id=store.run_id, argv=argv, options=options)
    store.write_manifest(header, None, "running")
    items = _planned_items(store, source, resume)
    runner = Runner(config, executor, store, listener, total=source.total)
    interrupted: str | None = "SIGINT"  # unless the run comes back normally
    try:
        anyio.run(runner.run, items)
        signum = runner.interrupted
        interrupted = None if signum is None else signal.Signals(signum).name
    finally:
        status = "finished" if interrupted is None else "interrupted"
        outcome = runner.tracker.verdict()
        count = outcome.counts["tasks"]
        if interrupted is not None:
            reason = f"interrupted by {interrupted} after {count} tasks ended"
            outcome = replace(outcome, passed=False, reason=reason)
        report = RunReport(
            run_id=store.run_id,
            run_dir=str(store.run_dir),
            manifest_path=str(store.manifest_path),
            verdict=outcome,
            rows=functools.partial(store.rows, runner.rows),
            started_at=started_at,
            finished_at=time.time(),
            title=f"{title}: {count} task{'s' * (count != 1)}, {config.strategy}",
            interrupted=interrupted,
            shard=config.shard,
        )
        kept = {} if resume is None else {"resume": resume.book.summary()}
        store.journal(
            "run_ended",
            **kept,
            status=status,
            passed=outcome.passed,
            reason=outcome.reason,
            counts=dict(outcome.counts),
        )
        store.write_manifest(header, report, status)
        store.close()
    return report
