"""The one scheduler: a sliding window of tasks in flight, retries, timeouts and early ends.

Concurrency lives here and nowhere else: one task group, one semaphore for the window,
one cancel scope per task. Stopping the run (a decided strategy, --fail-fast, the
deadline) cancels those scopes; executors stop their processes on the way out."""

from __future__ import annotations

import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from fanout_cli import interpret
from fanout_cli.aop.documents import journal_row
from fanout_cli.aop.writer import RowIndex, RunStore
from fanout_cli.errors import IO_ERRNOS, FanoutError, IOFailure, OutputClosedError
from fanout_cli.executors import AttemptPlan, Executor
from fanout_cli.models import Attempt, Prior, TaskResult, TaskSpec, TaskStatus, Verdict
from fanout_cli.options import RunConfig, VerdictOptions
from fanout_cli.pacing import SYSTEM_CLOCK, Backoff, Clock, RateLimiter
from fanout_cli.strategies import StrategyOptions, Tracker
from fanout_cli.task_end import Halt, check_outputs_kept, cut_short, finish, not_started
from fanout_cli.values import format_duration

if TYPE_CHECKING:
    from fanout_cli.halting import HaltWatch
    from fanout_cli.relative_limit import MedianLimit, RelativeTimeout
    from fanout_cli.tokens import TokenTotals

_RETRYABLE = (TaskStatus.FAILURE, TaskStatus.TIMEOUT)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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


class Runner:
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
        self.halt: Halt | None = None  # the first stop: nothing starts after it
        self.ending: Halt | None = None  # the stop that ended the running tasks (not a soon one)
        halt = config.policy.halt
        self._soon = halt is not None and halt.soon  # --halt soon: early ends let tasks finish
        self._halt_watch: HaltWatch | None = None
        if halt is not None and halt.condition is not None:
            from fanout_cli.halting import HaltWatch  # only runs with a --halt condition

            self._halt_watch = HaltWatch(halt)
        self.halted_by: str | None = None  # why a --halt condition stopped the run
        self._stopped_by_halt = 0  # tasks it cancelled or never started
        self._waits: dict[int, anyio.CancelScope] = {}  # tasks backing off before a retry
        self._running: dict[int, anyio.CancelScope] = {}
        self._free_slots = list(range(config.policy.jobs, 0, -1))
        self._streaming = total is None
        self.interrupted: int | None = None  # the first stopping signal received
        self.failure: FanoutError | None = None  # fanout's own I/O failed: the run stops
        self._rate = None if config.policy.rate is None else RateLimiter(config.policy.rate, clock)
        self._timeout, self._median = _run_limit(config.policy.timeout)

    async def run(self, specs: AsyncIterator[TaskSpec | Prior]) -> None:
        self._window = anyio.Semaphore(self.config.policy.jobs)
        # Reading a stream (stdin) stops when the run stops; the tasks of a list known
        # up front are all recorded, the unstarted ones as not started.
        self._intake = anyio.CancelScope()
        async with self.executor.session(), anyio.create_task_group() as timers:
            if self.config.policy.deadline is not None:
                timers.start_soon(self._deadline, self.config.policy.deadline)
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

    def _letting_go(self) -> bool:
        """After a stop, tasks not yet started are let go without a result when they
        come from a stream (the rest of stdin is not read) or when a signal stopped the
        run or fanout's own I/O failed (so that --resume runs them). Otherwise they are
        recorded as not started."""
        if self.halt is None:
            return False
        return self._streaming or self.halt.signal is not None or self.failure is not None

    async def _start_when_free(self, tasks: anyio.abc.TaskGroup, spec: TaskSpec) -> None:
        if self.halt is None:
            await self._window.acquire()
            if self.halt is None:
                tasks.start_soon(self._run_task, spec, self._free_slots.pop())
                return
            self._window.release()
        if not self._letting_go():
            self._record(not_started(spec, self.halt))

    async def _watch_signals(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """First SIGINT/SIGTERM/SIGHUP: stop (--termseq). Second: KILL at once."""
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
                        self._intake.cancel()
                else:
                    self.executor.kill_all()

    async def _deadline(self, seconds: float) -> None:
        await self.clock.sleep(seconds)
        self.stop(f"run deadline of {format_duration(seconds)} reached", TaskStatus.TIMEOUT)

    def stop(
        self, reason: str, status: TaskStatus, signum: int | None = None, *, soon: bool = False
    ) -> None:
        """End the run early: no new tasks or retries; running ones are stopped and end
        as `status`. `soon`: they run to their end, unless a later stop cannot wait."""
        if self.halt is None:
            self.halt = Halt(reason, status, signum)
            if soon:  # (a stop that ends tasks cancels their back-off with them)
                for scope in self._waits.values():
                    scope.cancel()
        elif self.ending is not None or soon:
            return
        if not soon:
            self.ending = Halt(reason, status, signum)
            for scope in self._running.values():
                scope.cancel()
        if self._letting_go():
            self._intake.cancel()

    def fail(self, error: FanoutError) -> None:
        """fanout's own I/O failed (a full disk, a closed stdout): stop at once, write
        nothing more of the tasks (--resume runs every task without a result) and
        report `error` when the run has closed."""
        if self.failure is not None:
            return
        self.failure = error
        self.stop(error.message, TaskStatus.CANCELLED)
        for scope in self._running.values():  # when the run was already stopping
            scope.cancel()
        self._intake.cancel()

    def _on_decision(self, decision: Any) -> None:
        if decision is not None:
            self.stop(f"stopped: {decision.reason}", TaskStatus.CANCELLED, soon=self._soon)

    def _watch_halt(self, status: TaskStatus | None) -> None:
        """Count an ended task (None: the total became known) for the --halt condition,
        and stop the run the first time it is met."""
        watch = self._halt_watch
        if watch is None:
            return
        total = self.tracker.total
        why = watch.check(total) if status is None else watch.observe(status, total)
        if why is not None and self.halt is None:
            self.halted_by = why
            self.stop(f"halted by {why}", TaskStatus.CANCELLED, soon=watch.spec.soon)

    def verdict(self) -> Verdict:
        """The run's verdict: the strategy's, or the one a --halt condition leaves."""
        if self.halted_by is None or self.config.policy.halt is None:
            return self.tracker.verdict()
        from fanout_cli.halting import halted_verdict

        return halted_verdict(self.tracker, self.config.policy.halt, self.halted_by,
                              self._stopped_by_halt)  # fmt: skip

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
        if self.halt is not None:
            scope.cancel()
        try:
            with scope:
                for number in range(1, retries + 2):
                    if number > 1 and not await self._before_retry(spec, attempts):
                        break  # the run stopped: a soon stop retries nothing
                    if self._rate is not None:
                        await self._rate.acquire()
                    plan = self._plan(spec, number, slot)
                    self.store.journal(
                        "task_started", seq=spec.seq, task_id=spec.task_id, attempt=number
                    )
                    self._tell(self.listener.task_started, spec, number, slot)
                    in_flight = self.clock.wall()
                    attempt = await self.executor.run_attempt(spec, plan)
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
                           ok_exit=ok_exit, termseq=config.policy.termseq,
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

