"""--halt and the flavours of an early end, without processes: the rule's grammar, its
arithmetic (GNU parallel's), the verdict it leaves, and the scheduler obeying it (a
fake executor; the real processes and GNU parallel itself are in test_halt_oracle.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fanout_cli.halting import HaltSpec, HaltWatch, halted_verdict, parse_halt
from fanout_cli.models import TaskStatus
from fanout_cli.pacing import Backoff
from fanout_cli.runner import Runner
from fanout_cli.strategies import StrategyOptions, Tracker
from fanout_cli.values import parse_rate
from tests.test_runner_unit import FakeExecutor, drive, harness, nothing, specs, until

S, F, C = TaskStatus.SUCCESS, TaskStatus.FAILURE, TaskStatus.CANCELLED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now,fail=1", HaltSpec("now", "fail", count=1)),
        ("soon,fail=3", HaltSpec("soon", "fail", count=3)),
        ("now,success=2", HaltSpec("now", "success", count=2)),
        ("soon,done=10%", HaltSpec("soon", "done", percent=10.0)),
        ("now,fail=12.5%", HaltSpec("now", "fail", percent=12.5)),
        ("NOW,FAIL=1", HaltSpec("now", "fail", count=1)),
        ("soon", HaltSpec("soon")),
        ("now", HaltSpec("now")),
        # GNU parallel's older forms
        ("1", HaltSpec("soon", "fail", count=1)),
        ("2", HaltSpec("now", "fail", count=1)),
        ("-1", HaltSpec("soon", "success", count=1)),
        ("-2", HaltSpec("now", "success", count=1)),
        ("20%", HaltSpec("soon", "fail", percent=20.0)),
        (2, HaltSpec("now", "fail", count=1)),
    ],
)
def test_the_rules_gnu_parallel_takes_are_read(text: object, expected: HaltSpec) -> None:
    assert parse_halt(text) == expected
    assert parse_halt(str(expected)) == expected  # the manifest's text reads back


@pytest.mark.parametrize("text", ["never", "0", 0])
def test_never_is_no_rule(text: object) -> None:
    assert parse_halt(text) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("now,fail=0", "a count from 1"),
        ("now,fail=0%", "more than 0 and at most 100"),
        ("soon,success=101%", "more than 0 and at most 100"),
        ("now,fail=1.5", "a count from 1"),
        ("now,fail=", "a count or a percentage"),
        ("now,fail=x", "a count or a percentage"),
        ("now,crash=1", "fail=, success= or done="),
        ("later,fail=1", "expected now or soon"),
        ("now,fail=1,done=2", "expected now or soon"),
        ("", "expected now or soon"),
        (True, "a halt rule"),
        (3, "expected now or soon"),
        (1.5, "a halt rule"),
    ],
)
def test_a_bad_rule_says_what_is_expected(text: object, says: str) -> None:
    with pytest.raises(ValueError, match=says) as caught:
        parse_halt(text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("rule", "statuses", "total", "fires_at"),
    [
        ("now,fail=2", [S, F, S, F, F], 5, 4),
        ("now,success=2", [F, S, F, S], 4, 4),
        ("now,done=3", [F, S, F, S], 4, 3),
        # P% of all tasks, compared as GNU parallel does (total * P / 100, unrounded)
        ("now,fail=40%", [F, S, F, S, F], 5, 3),  # 2 of 5
        ("now,fail=50%", [F, S, F, S, F], 5, 5),  # 2.5 of 5: the third failure
        ("now,fail=10%", [S, F, S], 3, 2),  # 0.3 of 3: the first failure
        # a task the run itself cancelled did not end on its own: never counted
        ("now,done=1", [C, C, S], 3, 3),
        ("now,fail=1", [C, S, S], 3, None),
    ],
)
def test_the_rule_fires_at_the_task_gnu_parallel_halts_at(
    rule: str, statuses: list[TaskStatus], total: int, fires_at: int | None
) -> None:
    spec = parse_halt(rule)
    assert spec is not None
    watch = HaltWatch(spec)
    fired = [n for n, status in enumerate(statuses, 1) if watch.observe(status, total)]
    assert fired == ([] if fires_at is None else [fires_at])


def test_a_percentage_waits_for_the_total_of_a_stream() -> None:
    watch = HaltWatch(HaltSpec("now", "fail", percent=50.0))
    assert watch.observe(F, None) is None  # stdin is still being read
    assert watch.observe(F, None) is None
    assert watch.check(4) == "--halt now,fail=50%: 2 tasks failed"
    assert watch.check(4) is None  # once


class Result:
    """What a strategy reads of an ended task."""

    def __init__(self, seq: int, status: TaskStatus) -> None:
        self.seq, self.status, self.task_id = seq, status, f"t{seq}"
        self.score = self.vote_key = self.scorer_error = None


def _tracker(strategy: str, statuses: list[TaskStatus], **options: object) -> Tracker:
    tracker = Tracker(StrategyOptions(strategy, **options), len(statuses))  # type: ignore[arg-type]
    for seq, status in enumerate(statuses, 1):
        tracker.observe(Result(seq, status))
    return tracker


def test_a_fail_rule_fails_the_run_and_a_success_rule_passes_it() -> None:
    tracker = _tracker("partial-success", [S, S, F, C], min_successes=1)
    verdict = halted_verdict(tracker, HaltSpec("now", "fail", count=1), "why", 1)
    assert not verdict.passed
    assert verdict.reason == "halted by why"
    assert verdict.counts["tasks"] == 4
    # the mirrors case: two failed before one succeeded, and that one was the goal
    tracker = _tracker("all-succeed", [F, F, S, C])
    verdict = halted_verdict(tracker, HaltSpec("now", "success", count=1), "why", 1)
    assert verdict.passed
    assert verdict.reason == "halted by why"


def test_after_done_the_strategy_judges_the_tasks_that_ended() -> None:
    # all-succeed over the 2 that ended (both succeeded); the 3 the halt stopped: not held
    tracker = _tracker("all-succeed", [S, S, C, C, C])
    verdict = halted_verdict(tracker, HaltSpec("now", "done", count=2), "--halt x", 3)
    assert verdict.passed
    assert verdict.reason == (
        "2 of 2 succeeded (halted by --halt x; the 3 tasks it stopped are not counted)"
    )
    assert verdict.counts["tasks"] == 5 and verdict.counts["cancelled"] == 3
    # ... and a failure among those that ended still fails all-succeed
    tracker = _tracker("all-succeed", [F, S, S, C])
    assert not halted_verdict(tracker, HaltSpec("soon", "done", count=3), "x", 1).passed
    # partial-success's ratio is of the tasks that ended
    tracker = _tracker("partial-success", [S, F, C, C], min_success_ratio=0.5)
    assert halted_verdict(tracker, HaltSpec("now", "done", count=2), "x", 2).passed


@pytest.mark.parametrize(
    ("statuses", "total", "decided_at"),
    [
        ([F, F], 4, 2),  # 3 needed of 4: after two failures only 2 can succeed
        ([S, F, F, F], 5, 4),
        ([S, S, S], 4, None),
    ],
)
def test_partial_success_fails_fast_once_its_minimum_is_out_of_reach(
    statuses: list[TaskStatus], total: int, decided_at: int | None
) -> None:
    tracker = Tracker(StrategyOptions("partial-success", fail_fast=True, min_successes=3), total)
    decided = [n for n, status in enumerate(statuses, 1) if tracker.observe(Result(n, status))]
    assert decided == ([] if decided_at is None else [decided_at])
    plain = Tracker(StrategyOptions("partial-success", min_successes=3), total)
    assert not any(plain.observe(Result(n, s)) for n, s in enumerate(statuses, 1))


# --- the scheduler ---------------------------------------------------------------------


def test_now_ends_the_running_tasks_and_soon_lets_them_finish(tmp_path: Path) -> None:
    for when, t2 in (("now", C), ("soon", S)):
        executor = FakeExecutor({"t1": [F]}, held=("t1", "t2"))
        h = harness(tmp_path / when, executor, 4, jobs=2, halt=parse_halt(f"{when},fail=1"))

        async def script(executor: FakeExecutor = executor, runner: Runner = h.runner,
                         when: str = when) -> None:  # fmt: skip
            await until(lambda: len(executor.started) == 2)
            executor.release("t1")
            if when == "soon":
                await until(lambda: runner.halt is not None)
                executor.release("t2")

        drive(h, specs(4), script)
        statuses = h.listener.statuses()
        assert statuses == {"t1": F, "t2": t2, "t3": C, "t4": C}, when
        assert [task for task, _ in executor.started] == ["t1", "t2"]
        assert not h.runner.verdict().passed


def test_fail_fast_with_halt_soon_lets_running_tasks_finish(tmp_path: Path) -> None:
    executor = FakeExecutor({"t1": [F]}, held=("t1", "t2"))
    h = harness(tmp_path, executor, 3, jobs=2, fail_fast=True, halt=parse_halt("soon"))

    async def script() -> None:
        await until(lambda: len(executor.started) == 2)
        executor.release("t1")
        await until(lambda: h.runner.halt is not None)
        executor.release("t2")

    drive(h, specs(3), script)
    assert h.listener.statuses() == {"t1": F, "t2": S, "t3": C}
    assert executor.cancelled == []


def test_a_soon_halt_gives_way_to_the_deadline(tmp_path: Path) -> None:
    executor = FakeExecutor({"t1": [F]}, held=("t1", "t2"))
    h = harness(tmp_path, executor, 2, jobs=2, halt=parse_halt("soon,fail=1"))

    async def script() -> None:
        await until(lambda: len(executor.started) == 2)
        executor.release("t1")
        await until(lambda: h.runner.halt is not None)
        h.runner.stop("run deadline reached", TaskStatus.TIMEOUT)

    drive(h, specs(2), script)
    by_id = {result.task_id: result for result in h.listener.ended}
    assert by_id["t2"].status is TaskStatus.TIMEOUT
    assert by_id["t2"].reason == "run deadline reached"
    assert executor.cancelled == ["t2"]


def test_a_soon_halt_starts_no_retry(tmp_path: Path) -> None:
    # t1 fails and would be retried after its back-off; t2's failure halts the run first
    executor = FakeExecutor({"t1": [F, S], "t2": [F]}, held=("t2",))
    backoff = Backoff(base=5.0, jitter=lambda: 1.0)
    h = harness(tmp_path, executor, 2, jobs=2, retries=3, hold_time=True, backoff=backoff,
                halt=parse_halt("soon,fail=1"))  # fmt: skip

    async def script() -> None:
        await until(lambda: h.clock.slept == [5.0])  # t1 backs off
        executor.release("t2")

    t1, t2 = specs(2)
    drive(h, [t1, replace(t2, retries=0)], script)  # t2 has no retry: its failure halts
    assert executor.started == [("t1", 1), ("t2", 1)]
    statuses = h.listener.statuses()
    assert statuses == {"t1": F, "t2": F}


def test_a_strategy_decision_with_halt_soon_lets_running_tasks_finish(tmp_path: Path) -> None:
    executor = FakeExecutor({}, held=("t1", "t2"))
    h = harness(tmp_path, executor, 4, jobs=2, strategy="first-n-succeed",
                halt=parse_halt("soon"))  # fmt: skip

    async def script() -> None:
        await until(lambda: len(executor.started) == 2)
        executor.release("t2")
        await until(lambda: h.runner.halt is not None)  # t2 succeeded: decided
        executor.release("t1")

    drive(h, specs(4), script)
    assert h.listener.statuses() == {"t1": S, "t2": S, "t3": C, "t4": C}
    assert h.runner.verdict().passed


def test_without_a_rule_nothing_halts(tmp_path: Path) -> None:
    executor = FakeExecutor({"t1": [F], "t2": [F]})
    h = harness(tmp_path, executor, 3, jobs=1)
    drive(h, specs(3), nothing)
    assert h.listener.statuses() == {"t1": F, "t2": F, "t3": S}
    assert h.runner.halted_by is None


def test_a_soon_halt_ends_a_start_waiting_for_its_turn(tmp_path: Path) -> None:
    # --rate 1/h: t2 waits an hour for its turn when t1's failure halts the run (soon)
    executor = FakeExecutor({"t1": [F]})
    h = harness(tmp_path, executor, 2, jobs=2, hold_time=True, rate=parse_rate("1/h"),
                halt=parse_halt("soon,fail=1"))  # fmt: skip
    drive(h, specs(2), nothing)
    assert executor.started == [("t1", 1)]
    by_id = {result.task_id: result for result in h.listener.ended}
    assert by_id["t2"].status is C
    assert by_id["t2"].summary == "not started (halted by --halt soon,fail=1: 1 task failed)"
