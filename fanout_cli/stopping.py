"""How a run stops early, the scheduler's other half (runner.py's Runner is a `Stops`).

The first stop wins: a decided strategy or --fail-fast, a --halt rule, the deadline,
a signal (Ctrl-C), fanout's own I/O failing. After it nothing starts, not even a
retry. A `now` stop cancels the running tasks' scopes (their executors end them with
--termseq); a `soon` one (--halt soon) lets them finish, unless a later stop that
cannot wait (the deadline, a signal) comes. A second signal kills everything at once.
Tasks not yet started are recorded as not started, or let go without a result when
they come from a stream, or a signal or an I/O failure stopped the run (--resume runs
them)."""

from __future__ import annotations

import signal
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from fanout_cli.errors import STOP_SIGNALS, FanoutError
from fanout_cli.models import TaskStatus, Verdict
from fanout_cli.task_end import Halt
from fanout_cli.values import format_duration

if TYPE_CHECKING:
    from fanout_cli.executors import Executor
    from fanout_cli.halting import HaltWatch
    from fanout_cli.options import RunConfig
    from fanout_cli.pacing import Clock
    from fanout_cli.strategies import Tracker



class Stops:
    """The stop state of a run and the ways it stops; the Runner sets the rest."""

    config: RunConfig
    tracker: Tracker
    executor: Executor
    clock: Clock
    _intake: anyio.CancelScope  # reading the task source (set when the run starts)

    def _init_stops(self, config: RunConfig, total: int | None) -> None:
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
        self._running: dict[int, anyio.CancelScope] = {}  # the tasks in flight, by seq
        self._waits: dict[int, anyio.CancelScope] = {}  # tasks backing off before a retry
        self._streaming = total is None
        self.interrupted: int | None = None  # the first stopping signal received
        self.failure: FanoutError | None = None  # fanout's own I/O failed: the run stops

    def _letting_go(self) -> bool:
        """After a stop, tasks not yet started are let go without a result when they
        come from a stream (the rest of stdin is not read) or when a signal stopped the
        run or fanout's own I/O failed (so that --resume runs them). Otherwise they are
        recorded as not started."""
        if self.halt is None:
            return False
        return self._streaming or self.halt.signal is not None or self.failure is not None

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

