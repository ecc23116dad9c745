"""The one scheduler: a sliding window of tasks in flight, retries, timeouts and early ends.

Concurrency lives here and nowhere else: one task group, one semaphore for the window,
one cancel scope per task. Stopping the run (a decided strategy, --fail-fast, --halt,
the deadline, a signal: stopping.py) cancels those scopes; executors stop their
processes on the way out."""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from fanout_cli import interpret
from fanout_cli.aop.documents import journal_row
from fanout_cli.aop.writer import RowIndex, RunStore
from fanout_cli.errors import IO_ERRNOS, FanoutError, IOFailure, OutputClosedError
from fanout_cli.executors import AttemptPlan, Executor
from fanout_cli.models import Attempt, Prior, TaskResult, TaskSpec, TaskStatus
from fanout_cli.options import RunConfig, VerdictOptions
from fanout_cli.pacing import SYSTEM_CLOCK, Backoff, Clock, RateLimiter
from fanout_cli.reaper import TermSeq
from fanout_cli.stopping import Stops
from fanout_cli.strategies import StrategyOptions, Tracker
from fanout_cli.task_end import Halt, check_outputs_kept, cut_short, finish, not_started

if TYPE_CHECKING:
    from fanout_cli.gate import Machine, StartGate
    from fanout_cli.relative_limit import MedianLimit, RelativeTimeout
    from fanout_cli.tokens import TokenTotals

_RETRYABLE = (TaskStatus.FAILURE, TaskStatus.TIMEOUT)


class Listener(Protocol):
    """Receives progress as it happens (the live part of the human and jsonl formats)."""

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None: ...

    def task_ended(self, result: TaskResult) -> None: ...


def strategy_options(verdict: VerdictOptions) -> StrategyOptions:
    """What the strategy itself reads of the verdict options."""
    source = "--scorer" if verdict.scorer else "--score REGEX" if verdict.score else None
    return StrategyOptions(verdict.strategy, verdict.fail_fast, verdict.required_successes,
                           verdict.min_successes, verdict.min_success_ratio,
                           source)  # fmt: skip


class Runner(Stops):
    """Runs the tasks of one run. `clock` and `backoff` are how it waits (tests pass
    their own); by default the event loop's clock and --retry-delay's back-off."""

    def __init__(
        self,
        config: RunConfig,
        executor: Executor,
        store: RunStore,
        listener: Listener,
        total: int | None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        backoff: Backoff | None = None,
        machine: Machine | None = None,  # what --memfree and --load read (tests: their own)
    ) -> None:
        self.config = config
        self.clock = clock
        self.backoff = Backoff(config.policy.retry_delay) if backoff is None else backoff
        self.executor = executor
        self.store = store
        self.listener = listener
        self.tracker = Tracker(strategy_options(config.verdict), total)
        self.rows = RowIndex()
        self._tokens: TokenTotals | None = None  # agent tasks' usage, totalled as they end
        self._free_slots = list(range(config.policy.jobs, 0, -1))
        self._init_stops(config, total)
        self._rate = None if config.policy.rate is None else RateLimiter(config.policy.rate, clock)
        self._timeout, self._median = _run_limit(config.policy.timeout)
        # How attempts are ended (--termseq; TERM, --grace, KILL), made once for them all.
        self._termseq = config.policy.termseq or TermSeq.default(config.policy.grace)
        self._gate: StartGate | None = None  # --memfree, --load, --delay
        if config.policy.memfree or config.policy.load or config.policy.delay:
            from fanout_cli.gate import StartGate

            self._gate = StartGate.of(config.policy, clock, machine, self._rate)

    async def run(self, specs: AsyncIterator[TaskSpec | Prior]) -> None:
        self._window = anyio.Semaphore(self.config.policy.jobs)
        # Reading a stream (stdin) stops when the run stops; the tasks of a list known
        # up front are all recorded, the unstarted ones as not started.
        self._intake = anyio.CancelScope()
        async with self.executor.session(), anyio.create_task_group() as timers:
            if self.config.policy.deadline is not None:
                timers.start_soon(self._deadline, self.config.policy.deadline)
            if self._gate is not None and self._gate.watching:
                timers.start_soon(self._gate.watch)
            if threading.current_thread() is threading.main_thread():
                await timers.start(self._watch_signals)
            async with anyio.create_task_group() as tasks:
                count = 0
                with self._intake:
                    try:
                        async for item in _closing(specs):
                            if self._letting_go():
                                break
                            count += 1
                            if isinstance(item, Prior):
                                self._keep(item)
                            else:
                                await self._start_when_free(tasks, item)
                    except FanoutError as exc:  # saving the task list failed, or the
                        self.fail(exc)  # input was found bad on the way (-s)
                if self.tracker.total is None and not self._intake.cancelled_caught:
                    self._on_decision(self.tracker.set_total(count))
                    self._watch_halt(None)
            timers.cancel_scope.cancel()

    async def _start_when_free(self, tasks: anyio.abc.TaskGroup, spec: TaskSpec) -> None:
        if self.halt is None:
            await self._window.acquire()
            if self.halt is None:
                tasks.start_soon(self._run_task, spec, self._free_slots.pop())
                return
            self._window.release()
        if not self._letting_go():
            self._record(not_started(spec, self.halt))

    def _tell(self, event: Callable[..., None], *args: Any) -> None:
        """Pass an event to the listener. When stdout is closed (`fanout run | head`),
        the run stops as it does for a signal: SIGPIPE, exit 141, tasks stopped."""
        try:
            event(*args)
        except IOFailure as exc:  # stdout is full or failing
            self.fail(exc)
        except OutputClosedError:
            if self.interrupted is None:
                self.interrupted = signal.SIGPIPE
                self.stop("output closed (SIGPIPE)", TaskStatus.CANCELLED, signal.SIGPIPE)

    def _keep(self, prior: Prior) -> None:
        """An earlier result stands (resume): it counts, and it is not run again."""
        self.rows.add(prior.seq, prior.offset)
        self._count_tokens(prior.row.get("tokens"))
        if self._median is not None and prior.status is TaskStatus.SUCCESS:
            from fanout_cli.resume import kept_duration  # only with --timeout P%

            self._median.add_kept(kept_duration(prior.row, self.store.run_dir))
        self._on_decision(self.tracker.observe(prior))
        self._watch_halt(prior.status)

    def _count_tokens(self, tokens: object) -> None:
        """Add an agent task's usage (None: a process task) to the run's totals."""
        if tokens is None:
            return
        if self._tokens is None:
            from fanout_cli.tokens import TokenTotals  # only runs with agent tasks

            self._tokens = TokenTotals()
        self._tokens.add(tokens)

    def token_totals(self) -> dict[str, int] | None:
        """The run's token usage (fanout_cli.tokens); None when no task called an agent."""
        return None if self._tokens is None else self._tokens.document()

    def _record(self, result: TaskResult) -> None:
        if self.failure is not None:
            return  # nothing is written after an I/O failure: --resume runs the task
        row = journal_row(result)
        offset = self.store.journal("task_ended", **row)
        self.rows.add(result.seq, offset)
        self._count_tokens(row.get("tokens"))
        if self._median is not None and result.status is TaskStatus.SUCCESS and result.attempts:
            self._median.add(result.attempts[-1].duration)
        self._tell(self.listener.task_ended, result)
        if self.halted_by is not None and result.status is TaskStatus.CANCELLED:
            self._stopped_by_halt += 1
        self._on_decision(self.tracker.observe(result))
        self._watch_halt(result.status)

    async def _run_task(self, spec: TaskSpec, slot: int) -> None:
        try:
            attempts, halt = await self._attempts(spec, slot)
            if self.failure is None and (attempts or not self._letting_go()):
                self._record(await self._finish(spec, attempts, halt))  # else: not begun
        except FanoutError as exc:  # a record of the run could not be written
            self.fail(exc)
        except OSError as exc:  # the executor could not create the task's output files
            if exc.errno not in IO_ERRNOS:
                raise
            self.fail(IOFailure.of(exc.filename or self.store.run_dir, exc))
        finally:
            self._free_slots.append(slot)
            self._window.release()

    async def _attempts(self, spec: TaskSpec, slot: int) -> tuple[list[Attempt], Halt | None]:
        """Run attempts until one ends for good or retries run out; with the halt that
        cancelled the task, if one did."""
        retries = self.config.policy.retries if spec.retries is None else spec.retries
        attempts: list[Attempt] = []
        in_flight: float | None = None  # when the attempt now running began
        scope = anyio.CancelScope()
        self._running[spec.seq] = scope
        try:
            with scope:
                for number in range(1, retries + 2):
                    if number > 1 and not await self._before_retry(spec, attempts):
                        break  # the run stopped: a soon stop retries nothing
                    if not await self._paced(spec.seq):  # a soon stop came meanwhile:
                        return attempts, None if attempts else self.halt  # no new start
                    plan = self._plan(spec, number, slot)
                    self.store.journal("task_started", seq=spec.seq, task_id=spec.task_id,
                                       attempt=number, slot=slot)  # fmt: skip
                    self._tell(self.listener.task_started, spec, number, slot)
                    in_flight = self.clock.wall()
                    attempt = await self._run_attempt(spec, plan)
                    in_flight = None
                    if spec.junit is not None or self.config.output.task_junit is not None:
                        from fanout_cli.aop.runner_junit import collect_in_thread

                        attempt = await collect_in_thread(self.store.folder, spec, attempt,
                                                          self.config.output.task_junit, slot)
                    check_outputs_kept(self.store, plan, attempt)
                    attempts.append(attempt)
                    if attempt.status not in _RETRYABLE or not attempt.retryable:
                        break
        finally:
            del self._running[spec.seq]
        if not scope.cancelled_caught:
            return attempts, None
        halt = self.ending or self.halt or Halt("cancelled", TaskStatus.CANCELLED)
        if in_flight is not None:
            attempts.append(cut_short(plan, in_flight, self.clock.wall(), halt,
                                      self.executor.abandoned(spec)))
        return attempts, halt

    async def _paced(self, seq: int) -> bool:
        """Wait for this start's turn: the gate's (--memfree, --load, --delay), which
        also keeps --rate, so that its checks are the last wait before a start. False
        when the run stopped meanwhile (a soon stop ends the wait): nothing starts."""
        if self._gate is not None:
            turn: Callable[[], Awaitable[object]] = self._gate.ready
        elif self._rate is not None:
            turn = self._rate.acquire
        else:
            return self.halt is None
        with anyio.CancelScope() as waiting:
            self._waits[seq] = waiting
            try:
                await turn()
            finally:
                del self._waits[seq]
        return self.halt is None

    async def _run_attempt(self, spec: TaskSpec, plan: AttemptPlan) -> Attempt:
        """The attempt; with --memfree, run again from its start, under the same number
        (no attempt charged), each time the gate ends it for memory."""
        run = functools.partial(self.executor.run_attempt, spec, plan)
        if self._gate is None or not self._gate.watching:
            return await run()
        while (attempt := await self._gate.attempt(run)) is None:
            self.store.journal("task_requeued", seq=spec.seq, task_id=spec.task_id,
                               attempt=plan.number, reason=self._gate.requeue_reason)  # fmt: skip
            self.store.discard_outputs(spec)
            await self._paced(spec.seq)  # it was running: it runs again, also after a soon stop
            self.store.journal("task_started", seq=spec.seq, task_id=spec.task_id,
                               attempt=plan.number, slot=plan.slot)  # fmt: skip
            self._tell(self.listener.task_started, spec, plan.number, plan.slot)
        return attempt

    async def _before_retry(self, spec: TaskSpec, attempts: list[Attempt]) -> bool:
        """Keep the failed attempt's output under its own name, then back off. False
        when the run stopped (before or during the back-off): no retry starts then."""
        if self.halt is not None and self.ending is None:
            return False
        failed = len(attempts)
        kept = self.store.set_aside_attempt(spec, failed)
        attempts[-1] = replace(attempts[-1], stdout_path=kept[0], stderr_path=kept[1])
        with anyio.CancelScope() as waiting:
            self._waits[spec.seq] = waiting
            try:
                await self.clock.sleep(self.backoff.delay(failed))
            finally:
                del self._waits[spec.seq]
        return self.halt is None

    def _plan(self, spec: TaskSpec, number: int, slot: int) -> AttemptPlan:
        config = self.config
        stdout_path, stderr_path = self.store.output_paths(spec)
        if spec.timeout is None:  # the run's --timeout: seconds, or P% of the median
            timeout, limit = self._timeout, self._median
        else:  # the task's own (0: no limit)
            timeout, limit = spec.timeout or None, None
        ok_exit = config.policy.ok_exit if spec.ok_exit is None else spec.ok_exit
        return AttemptPlan(number=number, slot=slot, stdout_path=stdout_path,
                           stderr_path=stderr_path, timeout=timeout, grace=config.policy.grace,
                           ok_exit=ok_exit, termseq=self._termseq,
                           limit=limit)  # fmt: skip

    async def _finish(
        self, spec: TaskSpec, attempts: list[Attempt], halt: Halt | None
    ) -> TaskResult:
        if not attempts:  # cancelled before its first attempt began
            assert halt is not None
            return not_started(spec, halt)
        ending = None
        if halt is not None:
            ending = interpret.Ending(halt.status, halt.reason, halt.signal is not None)
        return await finish(self.config, self.store, spec, attempts, ending)


def _run_limit(timeout: float | RelativeTimeout | None) -> tuple[float | None, MedianLimit | None]:
    """The run's --timeout as a fixed limit in seconds, or a moving one (P% of the
    median: fanout_cli/relative_limit.py, loaded only then)."""
    if isinstance(timeout, int | float | None):
        return timeout, None
    from fanout_cli.relative_limit import MedianLimit

    return None, MedianLimit(timeout)


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

