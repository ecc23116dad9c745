"""The scheduler alone: a fake executor, an injected clock and back-off; no processes,
no real waiting. Each test takes a few milliseconds."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from fanout_cli.aop.writer import RunStore
from fanout_cli.executors import AttemptPlan, ended_attempt
from fanout_cli.models import Attempt, Prior, TaskResult, TaskSpec, TaskStatus
from fanout_cli.options import RunConfig
from fanout_cli.pacing import Backoff, Clock
from fanout_cli.runner import Runner

S, F, T = TaskStatus.SUCCESS, TaskStatus.FAILURE, TaskStatus.TIMEOUT


class FakeExecutor:
    """Implements the Executor protocol in memory. `script[task_id]` lists the
    status of each attempt (the last one repeats); a task in `held` waits until the
    test releases it. Records what started, what was cancelled, and the most attempts
    ever in flight at once."""

    def __init__(self, script: dict[str, list[TaskStatus]], held: tuple[str, ...] = ()) -> None:
        self.script = script
        self.gates = {task_id: anyio.Event() for task_id in held}
        self.started: list[tuple[str, int]] = []
        self.cancelled: list[str] = []
        self.running: set[str] = set()
        self.most_in_flight = 0

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        yield

    def kill_all(self) -> None:
        pass

    def abandoned(self, spec: TaskSpec) -> None:
        return None

    def release(self, task_id: str) -> None:
        self.gates[task_id].set()

    async def run_attempt(self, spec: TaskSpec, plan: AttemptPlan) -> Attempt:
        self.started.append((spec.task_id, plan.number))
        self.running.add(spec.task_id)
        self.most_in_flight = max(self.most_in_flight, len(self.running))
        try:
            gate = self.gates.get(spec.task_id)
            if gate is None:
                await anyio.lowlevel.checkpoint()
            else:
                await gate.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(spec.task_id)
            raise
        finally:
            self.running.discard(spec.task_id)
        statuses = self.script.get(spec.task_id, [S])
        status = statuses[min(plan.number, len(statuses)) - 1]
        Path(plan.stdout_path).write_text(f"answer of {spec.task_id}\n")
        if status is S:
            return ended_attempt(plan, 0.0, status, "", exit_code=0)
        return ended_attempt(plan, 0.0, status, "exit 1", exit_code=1)


@dataclass
class Recorder:
    started: list[tuple[str, int, int]] = field(default_factory=list)
    ended: list[TaskResult] = field(default_factory=list)

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None:
        self.started.append((spec.task_id, attempt, slot))

    def task_ended(self, result: TaskResult) -> None:
        self.ended.append(result)

    def statuses(self) -> dict[str, TaskStatus]:
        return {result.task_id: result.status for result in self.ended}


@dataclass
class FakeClock:
    """Time stands still: `sleep` records how long it was asked to wait and returns at
    once, or (with `hold`) waits until the test says the time has come."""

    slept: list[float] = field(default_factory=list)
    hold: anyio.Event | None = None

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.hold is None:
            await anyio.lowlevel.checkpoint()
        else:
            await self.hold.wait()

    def clock(self) -> Clock:
        return Clock(now=lambda: 0.0, sleep=self.sleep, wall=lambda: 1000.0)


def specs(count: int) -> list[TaskSpec]:
    return [
        TaskSpec(seq=seq, task_id=f"t{seq}", command=("true",), origin=f"test:{seq}")
        for seq in range(1, count + 1)
    ]


async def items_of(tasks: list[TaskSpec]) -> AsyncIterator[TaskSpec | Prior]:
    for spec in tasks:
        yield spec


@dataclass
class Harness:
    runner: Runner
    executor: FakeExecutor
    listener: Recorder
    clock: FakeClock


def harness(
    tmp_path: Path,
    executor: FakeExecutor,
    total: int,
    hold_time: bool = False,
    backoff: Backoff | None = None,
    **options: object,
) -> Harness:
    config = RunConfig.of(output_dir=str(tmp_path), **options)
    store = RunStore(config.output.output_dir, "unit")
    listener = Recorder()
    clock = FakeClock(hold=anyio.Event() if hold_time else None)
    runner = Runner(
        config, executor, store, listener, total, clock=clock.clock(), backoff=backoff
    )
    return Harness(runner, executor, listener, clock)


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until `condition` holds (a bounded number of turns)."""
    for _ in range(1000):
        if condition():
            return
        await anyio.lowlevel.checkpoint()
    raise AssertionError("the condition never held")


def drive(h: Harness, tasks: list[TaskSpec], script: Callable[[], Awaitable[None]]) -> None:
    """Run the runner and `script` side by side; fail after a second of real time."""

    async def main() -> None:
        with anyio.fail_after(1):
            async with anyio.create_task_group() as group:
                group.start_soon(h.runner.run, items_of(tasks))
                await script()

    try:
        anyio.run(main)
    finally:
        h.runner.store.close()


async def nothing() -> None:
    pass


# --- the sliding window ---------------------------------------------------------------


def test_never_more_than_jobs_in_flight_and_a_task_starts_as_one_ends(tmp_path: Path) -> None:
    executor = FakeExecutor({}, held=("t1", "t2", "t3", "t4", "t5"))
    h = harness(tmp_path, executor, 5, jobs=2)

    async def script() -> None:
        await until(lambda: len(executor.started) == 2)
        await anyio.lowlevel.checkpoint()
        assert [task for task, _ in executor.started] == ["t1", "t2"]
        executor.release("t2")  # the second ends first: the third takes its slot
        await until(lambda: len(executor.started) == 3)
        assert executor.running == {"t1", "t3"}
        for task_id in ("t1", "t3", "t4", "t5"):
            executor.release(task_id)

    drive(h, specs(5), script)
    assert executor.most_in_flight == 2
    assert [task for task, _ in executor.started] == ["t1", "t2", "t3", "t4", "t5"]
    assert set(h.listener.statuses().values()) == {S}
    # The slot t2 gave up is the one t3 runs in.
    slots = {task: slot for task, _, slot in h.listener.started}
    assert slots["t3"] == slots["t2"] != slots["t1"]


@pytest.mark.parametrize("jobs", [1, 3, 8])
def test_the_window_is_jobs_wide(tmp_path: Path, jobs: int) -> None:
    tasks = specs(12)
    executor = FakeExecutor({}, held=tuple(spec.task_id for spec in tasks))
    h = harness(tmp_path, executor, 12, jobs=jobs)

    def running(count: int) -> Callable[[], bool]:
        return lambda: len(executor.running) == count

    async def script() -> None:
        for ended in range(12):  # end the oldest running task, one at a time
            in_flight = min(jobs, 12 - ended)
            await until(running(in_flight))
            for _ in range(5):  # and nothing more starts meanwhile
                await anyio.lowlevel.checkpoint()
            assert len(executor.running) == in_flight
            oldest = next(task for task, _ in executor.started if task in executor.running)
            executor.release(oldest)

    drive(h, tasks, script)
    assert executor.most_in_flight == jobs
    assert len(h.listener.ended) == 12
    assert h.runner.tracker.verdict().passed


# --- retries --------------------------------------------------------------------------


def test_retries_back_off_with_the_injected_delay_and_no_real_sleep(tmp_path: Path) -> None:
    executor = FakeExecutor({"t1": [F, T, S]})
    backoff = Backoff(base=1.5, jitter=lambda: 1.0)
    h = harness(tmp_path, executor, 1, retries=3, backoff=backoff)
    drive(h, specs(1), nothing)
    assert executor.started == [("t1", 1), ("t1", 2), ("t1", 3)]
    assert h.clock.slept == [1.5, 3.0]  # base * 2^(n-1) after n failures
    [result] = h.listener.ended
    assert result.status is S
    assert [attempt.status for attempt in result.attempts] == [F, T, S]
    # Each failed attempt's output was set aside under its own name.
    assert [attempt.stdout_path for attempt in result.attempts] == [
        "0001-t1.a1.stdout",
        "0001-t1.a2.stdout",
        "0001-t1.stdout",
    ]


def test_retries_run_out_and_the_last_failure_stands(tmp_path: Path) -> None:
    executor = FakeExecutor({"t1": [F]})
    h = harness(tmp_path, executor, 1, retries=2, backoff=Backoff(jitter=lambda: 1.0))
    drive(h, specs(1), nothing)
    assert len(executor.started) == 3
    assert h.clock.slept == [1.0, 2.0]
    assert h.listener.statuses() == {"t1": F}


def test_the_back_off_is_capped_and_jittered() -> None:
    assert Backoff(base=10.0, cap=60.0, jitter=lambda: 1.0).delay(5) == 60.0
    assert Backoff(base=2.0, jitter=lambda: 0.5).delay(2) == 2.0


# --- early ends -----------------------------------------------------------------------


def test_first_n_succeed_cancels_the_rest_once_decided(tmp_path: Path) -> None:
    executor = FakeExecutor({}, held=("t1", "t2", "t3"))
    h = harness(tmp_path, executor, 5, jobs=3, strategy="first-n-succeed", required_successes=1)

    async def script() -> None:
        await until(lambda: len(executor.started) == 3)
        executor.release("t2")  # t2 succeeds: the verdict is known

    drive(h, specs(5), script)
    statuses = h.listener.statuses()
    assert statuses["t2"] is S
    assert sorted(executor.cancelled) == ["t1", "t3"]
    assert {statuses[task] for task in ("t1", "t3", "t4", "t5")} == {TaskStatus.CANCELLED}
    not_started = {r.task_id: r.summary for r in h.listener.ended if not r.attempts}
    assert not_started == {
        "t4": "not started (stopped: 1 succeeded (needed 1))",
        "t5": "not started (stopped: 1 succeeded (needed 1))",
    }
    assert [task for task, _ in executor.started] == ["t1", "t2", "t3"]
    assert h.runner.tracker.verdict().passed


def test_fail_fast_stops_at_the_first_failure(tmp_path: Path) -> None:
    executor = FakeExecutor({"t1": [F]}, held=("t1", "t2"))
    h = harness(tmp_path, executor, 4, jobs=2, fail_fast=True)

    async def script() -> None:
        await until(lambda: len(executor.started) == 2)
        executor.release("t1")

    drive(h, specs(4), script)
    statuses = h.listener.statuses()
    assert statuses == {
        "t1": F,
        "t2": TaskStatus.CANCELLED,
        "t3": TaskStatus.CANCELLED,
        "t4": TaskStatus.CANCELLED,
    }
    assert executor.cancelled == ["t2"]
    assert not h.runner.tracker.verdict().passed


def test_a_task_not_yet_begun_when_the_run_stops_does_not_start(tmp_path: Path) -> None:
    # t1 succeeds at once, before t2's turn to begin comes: the verdict is known, so t2,
    # already handed its slot, ends not started instead of starting to be cancelled
    executor = FakeExecutor({})
    h = harness(tmp_path, executor, 2, jobs=2, strategy="first-n-succeed")
    drive(h, specs(2), nothing)
    assert executor.started == [("t1", 1)]
    assert h.listener.statuses() == {"t1": S, "t2": TaskStatus.CANCELLED}


# --- cancellation ---------------------------------------------------------------------


def test_the_deadline_stops_running_tasks_as_timeouts(tmp_path: Path) -> None:
    executor = FakeExecutor({}, held=("t1", "t2", "t3"))
    h = harness(tmp_path, executor, 3, hold_time=True, jobs=2, deadline=90.0)

    async def script() -> None:
        await until(lambda: len(executor.started) == 2)
        assert h.clock.slept == [90.0]  # the deadline waits on the injected clock
        assert h.clock.hold is not None
        h.clock.hold.set()  # ... and now the time has come

    drive(h, specs(3), script)
    reason = "run deadline of 1m30s reached"
    assert sorted(executor.cancelled) == ["t1", "t2"]
    by_id = {result.task_id: result for result in h.listener.ended}
    assert {result.status for result in by_id.values()} == {T}
    assert by_id["t1"].reason == reason
    assert by_id["t1"].attempts[0].finished_at == 1000.0  # the injected wall clock
    assert by_id["t3"].summary == f"not started ({reason})"


def test_stop_cancels_what_runs_and_starts_nothing_more(tmp_path: Path) -> None:
    executor = FakeExecutor({}, held=("t1", "t2", "t3", "t4"))
    h = harness(tmp_path, executor, 4, jobs=2)

    async def script() -> None:
        await until(lambda: len(executor.started) == 2)
        h.runner.stop("told to", TaskStatus.CANCELLED)

    drive(h, specs(4), script)
    assert len(executor.started) == 2
    assert sorted(executor.cancelled) == ["t1", "t2"]
    assert len(h.listener.ended) == 4
    assert {result.status for result in h.listener.ended} == {TaskStatus.CANCELLED}


# --- results read from outputs ---------------------------------------------------------


def test_majority_vote_reads_a_vote_key_from_each_output(tmp_path: Path) -> None:
    executor = FakeExecutor({})
    h = harness(tmp_path, executor, 3, strategy="majority-vote", vote_on="summary")
    drive(h, specs(3), nothing)
    assert [result.vote_key for result in h.listener.ended] == [
        "answer of t1",
        "answer of t2",
        "answer of t3",
    ]
    assert not h.runner.tracker.verdict().passed


def test_other_strategies_read_no_vote_key(tmp_path: Path) -> None:
    executor = FakeExecutor({})
    h = harness(tmp_path, executor, 2, vote_on="summary")
    drive(h, specs(2), nothing)
    assert [result.vote_key for result in h.listener.ended] == [None, None]
    assert [result.summary for result in h.listener.ended] == ["answer of t1", "answer of t2"]
