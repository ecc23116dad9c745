"""Strategies are pure functions of results: table-driven, no processes."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fanout_cli.models import TaskResult, TaskSpec, TaskStatus
from fanout_cli.strategies import (
    STRATEGIES,
    Decision,
    StrategyOptions,
    Tally,
    Tracker,
    count_statuses,
    majority_threshold,
    required_for_partial,
    uses_votes,
    verdict,
)

STRATEGY_NAMES = ("all-succeed", "first-n-succeed", "best-of-n", "majority-vote", "partial-success")


def result(
    seq: int,
    status: str = "success",
    *,
    score: float | None = None,
    vote: str | None = None,
    task_id: str | None = None,
) -> TaskResult:
    """A finished task with just the fields strategies look at."""
    spec = TaskSpec(seq=seq, task_id=task_id or f"t{seq}", command=("true",), origin=f"test:{seq}")
    return TaskResult(spec=spec, status=TaskStatus(status), summary="", score=score, vote_key=vote)


def results_from(statuses: str) -> list[TaskResult]:
    """`"S F T"` -> success, failure, timeout (C: cancelled, E: error), seq 1, 2, 3."""
    names = {"S": "success", "F": "failure", "T": "timeout", "C": "cancelled", "E": "error"}
    return [result(seq, names[code]) for seq, code in enumerate(statuses.split(), start=1)]


def first_decision(
    options: StrategyOptions, total: int | None, results: Sequence[TaskResult]
) -> tuple[int, Decision] | None:
    """Feed results in order; the 1-based position at which the verdict got decided."""
    tracker = Tracker(options, total)
    found: tuple[int, Decision] | None = None
    for position, finished in enumerate(results, start=1):
        decision = tracker.observe(finished)
        if decision is not None:
            assert found is None, "a decision must be reported only once"
            found = (position, decision)
    return found


# --- verdict -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "statuses", "passed"),
    [
        pytest.param(StrategyOptions("all-succeed"), "S S S", True, id="all-succeed-all-pass"),
        pytest.param(StrategyOptions("all-succeed"), "S F S", False, id="all-succeed-one-failure"),
        pytest.param(StrategyOptions("all-succeed"), "S S T", False, id="all-succeed-one-timeout"),
        pytest.param(StrategyOptions("all-succeed"), "S C", False, id="all-succeed-cancelled"),
        pytest.param(StrategyOptions("all-succeed"), "E S", False, id="all-succeed-error"),
        pytest.param(
            StrategyOptions("first-n-succeed", required_successes=2),
            "F S F S",
            True,
            id="first-n-exactly-n",
        ),
        pytest.param(
            StrategyOptions("first-n-succeed", required_successes=2),
            "S C C C",
            False,
            id="first-n-short-of-n",
        ),
        pytest.param(
            StrategyOptions("first-n-succeed", required_successes=5),
            "S S S",
            False,
            id="first-n-larger-than-task-count",
        ),
        pytest.param(StrategyOptions("first-n-succeed"), "F F S", True, id="first-n-default-one"),
        pytest.param(
            StrategyOptions("partial-success", min_successes=2),
            "S F S",
            True,
            id="partial-count-met",
        ),
        pytest.param(
            StrategyOptions("partial-success", min_successes=2),
            "S F T",
            False,
            id="partial-count-missed",
        ),
        pytest.param(StrategyOptions("partial-success"), "F F S", True, id="partial-default-one"),
        pytest.param(StrategyOptions("partial-success"), "F T E", False, id="partial-default-none"),
        pytest.param(
            StrategyOptions("partial-success", min_success_ratio=0.5),
            "S S F F",
            True,
            id="partial-ratio-half-of-four",
        ),
        pytest.param(
            StrategyOptions("partial-success", min_success_ratio=0.5),
            "S F F",
            False,
            id="partial-ratio-half-of-three-rounds-up",
        ),
        pytest.param(
            StrategyOptions("partial-success", min_success_ratio=1.0),
            "S S F",
            False,
            id="partial-ratio-one-needs-all",
        ),
    ],
)
def test_verdict_passes_by_count(options: StrategyOptions, statuses: str, passed: bool) -> None:
    outcome = verdict(options, results_from(statuses))
    assert outcome.passed is passed
    assert outcome.strategy == options.name


@pytest.mark.parametrize(
    ("options", "passed"),
    [
        pytest.param(StrategyOptions("all-succeed"), True, id="all-succeed-passes"),
        pytest.param(StrategyOptions("first-n-succeed"), False, id="first-n-succeed-fails"),
        pytest.param(StrategyOptions("partial-success"), False, id="partial-success-fails"),
        pytest.param(
            StrategyOptions("partial-success", min_success_ratio=0.5),
            False,
            id="partial-success-ratio-fails",
        ),
        pytest.param(StrategyOptions("best-of-n"), False, id="best-of-n-fails"),
        pytest.param(StrategyOptions("majority-vote"), False, id="majority-vote-fails"),
    ],
)
def test_zero_tasks(options: StrategyOptions, passed: bool) -> None:
    outcome = verdict(options, [])
    assert outcome.passed is passed
    assert outcome.counts["tasks"] == 0
    assert outcome.winner is None


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_all_failing_fails_every_strategy(name: str) -> None:
    failing = [
        result(1, "failure", score=9.0, vote="a"),
        result(2, "timeout", vote="a"),
        result(3, "error", vote="a"),
    ]
    outcome = verdict(StrategyOptions(name), failing)
    assert outcome.passed is False
    assert outcome.winner is None
    assert outcome.counts["success"] == 0


def test_counts_dict_has_every_status() -> None:
    outcome = verdict(StrategyOptions("all-succeed"), results_from("S S F T C E S"))
    assert dict(outcome.counts) == {
        "tasks": 7,
        "success": 3,
        "failure": 1,
        "timeout": 1,
        "cancelled": 1,
        "error": 1,
    }


def test_counts_dict_of_nothing_is_all_zero() -> None:
    assert count_statuses([]) == {
        "tasks": 0,
        "success": 0,
        "failure": 0,
        "timeout": 0,
        "cancelled": 0,
        "error": 0,
    }


def test_unknown_strategy_is_rejected() -> None:
    with pytest.raises(ValueError, match="best-of-three"):
        verdict(StrategyOptions("best-of-three"), results_from("S"))


# --- best-of-n -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("results", "winner_id", "winner_score"),
    [
        pytest.param(
            [result(1, score=0.2), result(2, score=0.9), result(3, score=0.5)],
            "t2",
            0.9,
            id="highest-score-wins",
        ),
        pytest.param(
            [result(1, score=0.5), result(2, score=0.9), result(3, score=0.9)],
            "t2",
            0.9,
            id="tie-goes-to-lowest-seq",
        ),
        pytest.param(
            [result(3, score=0.9), result(2, score=0.9), result(1, score=0.1)],
            "t2",
            0.9,
            id="tie-lowest-seq-even-when-it-ended-later",
        ),
        pytest.param(
            [result(1), result(2, score=-5.0), result(3)],
            "t2",
            -5.0,
            id="unscored-ranks-below-negative-score",
        ),
        pytest.param(
            [result(1), result(2)],
            "t1",
            None,
            id="all-unscored-lowest-seq",
        ),
        pytest.param(
            [result(1, "failure", score=99.0), result(2, score=1.0)],
            "t2",
            1.0,
            id="failed-task-score-ignored",
        ),
        pytest.param(
            [result(1, "timeout", score=99.0), result(2, "cancelled", score=50.0), result(3)],
            "t3",
            None,
            id="only-success-unscored-still-wins",
        ),
    ],
)
def test_best_of_n_winner(
    results: list[TaskResult], winner_id: str, winner_score: float | None
) -> None:
    outcome = verdict(StrategyOptions("best-of-n"), results)
    assert outcome.passed is True
    assert outcome.winner is not None
    assert outcome.winner.task_id == winner_id
    assert outcome.winner.score == winner_score
    assert winner_id in outcome.reason


def test_best_of_n_no_success_fails() -> None:
    outcome = verdict(
        StrategyOptions("best-of-n"), [result(1, "failure", score=1.0), result(2, "timeout")]
    )
    assert outcome.passed is False
    assert outcome.winner is None


# --- majority-vote -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("results", "passed", "winning_key", "voters"),
    [
        pytest.param(
            [result(1, vote="a"), result(2, vote="a"), result(3, vote="b")],
            True,
            "a",
            ("t1", "t2"),
            id="two-of-three",
        ),
        pytest.param(
            [
                result(1, vote="a"),
                result(2, vote="a"),
                result(3, "failure"),
                result(4, "failure"),
                result(5, "timeout"),
            ],
            False,
            None,
            (),
            id="most-votes-but-not-half-of-all-tasks",
        ),
        pytest.param(
            [
                result(1, vote="a"),
                result(2, vote="a"),
                result(3, vote="a"),
                result(4, "failure"),
                result(5, "failure"),
            ],
            True,
            "a",
            ("t1", "t2", "t3"),
            id="three-of-five-with-failures",
        ),
        pytest.param(
            [
                result(1, vote="a"),
                result(2, "failure", vote="b"),
                result(3, "failure", vote="b"),
                result(4, vote="b"),
            ],
            False,
            None,
            (),
            id="failed-tasks-do-not-vote",
        ),
        pytest.param(
            [
                result(1, vote="a"),
                result(2, "failure", vote="a"),
                result(3, vote="a"),
            ],
            True,
            "a",
            ("t1", "t3"),
            id="failed-voter-not-listed",
        ),
        pytest.param(
            [result(1, vote="a"), result(2, vote="b"), result(3, vote="a"), result(4, vote="b")],
            False,
            None,
            (),
            id="tie-two-two",
        ),
        pytest.param(
            [result(1, vote="a"), result(2, vote="b")],
            False,
            None,
            (),
            id="tie-one-one",
        ),
        pytest.param(
            [result(1, vote="x"), result(2, vote="x"), result(3, vote="x"), result(4, vote="y")],
            True,
            "x",
            ("t1", "t2", "t3"),
            id="three-of-four",
        ),
        pytest.param(
            [result(1), result(2), result(3)],
            False,
            None,
            (),
            id="successes-without-vote-keys",
        ),
    ],
)
def test_majority_vote(
    results: list[TaskResult], passed: bool, winning_key: str | None, voters: tuple[str, ...]
) -> None:
    outcome = verdict(StrategyOptions("majority-vote"), results)
    assert outcome.passed is passed
    if winning_key is None:
        assert outcome.winner is None
    else:
        assert outcome.winner is not None
        assert outcome.winner.vote_key == winning_key
        assert outcome.winner.votes == len(voters)
        assert outcome.winner.task_ids == voters


@pytest.mark.parametrize(
    ("total", "threshold"),
    [
        pytest.param(total, threshold, id=f"{total}-tasks-need-{threshold}")
        for total, threshold in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (10, 6)]
    ],
)
def test_majority_is_more_than_half(total: int, threshold: int) -> None:
    assert majority_threshold(total) == threshold


# --- partial-success thresholds ------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "total", "needed"),
    [
        pytest.param(StrategyOptions("partial-success"), 10, 1, id="default-one"),
        pytest.param(StrategyOptions("partial-success", min_successes=3), 10, 3, id="count"),
        pytest.param(StrategyOptions("partial-success", min_successes=0), 10, 0, id="count-zero"),
        pytest.param(
            StrategyOptions("partial-success", min_success_ratio=0.5), 3, 2, id="ratio-rounds-up"
        ),
        pytest.param(
            StrategyOptions("partial-success", min_success_ratio=0.7),
            10,
            7,
            id="ratio-float-error-not-rounded-up",
        ),
        pytest.param(
            StrategyOptions("partial-success", min_success_ratio=0.3),
            10,
            3,
            id="ratio-exact-product",
        ),
        pytest.param(
            StrategyOptions("partial-success", min_success_ratio=0.01),
            3,
            1,
            id="ratio-never-below-one",
        ),
        pytest.param(
            StrategyOptions("partial-success", min_success_ratio=1.0), 7, 7, id="ratio-one-is-all"
        ),
    ],
)
def test_required_for_partial(options: StrategyOptions, total: int, needed: int) -> None:
    assert required_for_partial(options, total) == needed


def test_partial_ratio_rounding_in_verdict() -> None:
    # 0.7 * 10 is 7.000000000000001 in floating point: 7 successes must be enough.
    options = StrategyOptions("partial-success", min_success_ratio=0.7)
    assert verdict(options, results_from("S S S S S S S F F F")).passed is True
    assert verdict(options, results_from("S S S S S S F F F F")).passed is False


# --- Tracker: early decisions --------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "total", "results", "expected"),
    [
        pytest.param(
            StrategyOptions("all-succeed", fail_fast=True),
            4,
            results_from("S F S S"),
            (2, False),
            id="all-succeed-fail-fast-first-failure",
        ),
        pytest.param(
            StrategyOptions("all-succeed", fail_fast=True),
            3,
            results_from("S T S"),
            (2, False),
            id="all-succeed-fail-fast-timeout",
        ),
        pytest.param(
            StrategyOptions("all-succeed", fail_fast=True),
            3,
            results_from("E S S"),
            (1, False),
            id="all-succeed-fail-fast-error",
        ),
        pytest.param(
            StrategyOptions("all-succeed", fail_fast=True),
            3,
            results_from("S S S"),
            None,
            id="all-succeed-fail-fast-no-failure",
        ),
        pytest.param(
            StrategyOptions("all-succeed"),
            3,
            results_from("F F F"),
            None,
            id="all-succeed-without-fail-fast-never",
        ),
        pytest.param(
            StrategyOptions("first-n-succeed", required_successes=2),
            5,
            results_from("F S S F F"),
            (3, True),
            id="first-n-reached-early",
        ),
        pytest.param(
            StrategyOptions("first-n-succeed"),
            5,
            results_from("S F F"),
            (1, True),
            id="first-n-default-one-first-success",
        ),
        pytest.param(
            StrategyOptions("first-n-succeed", required_successes=3),
            4,
            results_from("S F F S"),
            (3, False),
            id="first-n-became-impossible",
        ),
        pytest.param(
            StrategyOptions("first-n-succeed", required_successes=5),
            3,
            results_from("S S S"),
            (1, False),
            id="first-n-larger-than-task-count",
        ),
        pytest.param(
            StrategyOptions("first-n-succeed", required_successes=2),
            None,
            results_from("F F F F"),
            None,
            id="first-n-streaming-total-unknown",
        ),
        pytest.param(
            StrategyOptions("best-of-n"),
            3,
            [result(1, score=9.0), result(2, "failure"), result(3, score=1.0)],
            None,
            id="best-of-n-never",
        ),
        pytest.param(
            StrategyOptions("partial-success", min_successes=1),
            3,
            results_from("S S S"),
            None,
            id="partial-success-never-even-when-met",
        ),
        pytest.param(
            StrategyOptions("partial-success", min_successes=3),
            3,
            results_from("F F F"),
            None,
            id="partial-success-never-even-when-impossible",
        ),
        pytest.param(
            StrategyOptions("majority-vote"),
            5,
            [result(1, vote="a"), result(2, vote="b"), result(3, vote="a"), result(4, vote="a")],
            (4, True),
            id="majority-early-pass",
        ),
        pytest.param(
            StrategyOptions("majority-vote"),
            3,
            [result(1, "failure", vote="a"), result(2, vote="a"), result(3, vote="a")],
            (3, True),
            id="majority-failed-vote-not-counted",
        ),
        pytest.param(
            StrategyOptions("majority-vote"),
            5,
            [result(1, vote="a"), result(2, vote="b"), result(3, "failure"), result(4, vote="c")],
            (4, False),
            id="majority-early-fail-no-key-can-reach",
        ),
        pytest.param(
            StrategyOptions("majority-vote"),
            4,
            [result(1, vote="a"), result(2, vote="b"), result(3, vote="a"), result(4, vote="b")],
            (4, False),
            id="majority-tie-decided-fail-at-end",
        ),
        pytest.param(
            StrategyOptions("majority-vote"),
            4,
            [result(1, "failure"), result(2, "failure"), result(3, vote="a")],
            (2, False),
            id="majority-fail-when-half-failed-of-even",
        ),
        pytest.param(
            StrategyOptions("majority-vote"),
            None,
            [result(1, vote="a"), result(2, vote="a"), result(3, vote="a")],
            None,
            id="majority-streaming-total-unknown",
        ),
    ],
)
def test_tracker_early_decision(
    options: StrategyOptions,
    total: int | None,
    results: list[TaskResult],
    expected: tuple[int, bool] | None,
) -> None:
    found = first_decision(options, total, results)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        position, decision = found
        assert (position, decision.passed) == expected
        assert decision.reason


def test_tracker_early_decision_matches_final_verdict() -> None:
    options = StrategyOptions("first-n-succeed", required_successes=2)
    finished = [result(1, "failure"), result(2), result(3)]
    found = first_decision(options, 5, finished)
    assert found is not None
    # The runner cancels the rest; the verdict over everything must agree.
    everything = [*finished, result(4, "cancelled"), result(5, "cancelled")]
    assert verdict(options, everything).passed is found[1].passed is True


def test_tracker_reports_a_decision_only_once() -> None:
    tracker = Tracker(StrategyOptions("all-succeed", fail_fast=True), 3)
    assert tracker.observe(result(1, "failure")) is not None
    assert tracker.observe(result(2, "failure")) is None
    assert tracker.decision is not None
    assert tracker.decision.passed is False


@pytest.mark.parametrize(
    ("options", "results", "total", "expected"),
    [
        pytest.param(
            StrategyOptions("first-n-succeed", required_successes=3),
            results_from("S F"),
            2,
            False,
            id="first-n-impossible-once-total-known",
        ),
        pytest.param(
            StrategyOptions("first-n-succeed"),
            [],
            0,
            False,
            id="first-n-zero-tasks",
        ),
        pytest.param(
            StrategyOptions("majority-vote"),
            [result(1, vote="a"), result(2, vote="a"), result(3, vote="a")],
            5,
            True,
            id="majority-reached-once-total-known",
        ),
        pytest.param(
            StrategyOptions("majority-vote"),
            [result(1, vote="a"), result(2, vote="b")],
            2,
            False,
            id="majority-tie-once-total-known",
        ),
        pytest.param(StrategyOptions("all-succeed"), [], 0, None, id="all-succeed-zero-tasks"),
        pytest.param(
            StrategyOptions("partial-success"), results_from("F"), 1, None, id="partial-never"
        ),
    ],
)
def test_tracker_set_total_decides(
    options: StrategyOptions, results: list[TaskResult], total: int, expected: bool | None
) -> None:
    tracker = Tracker(options, None)
    for finished in results:
        assert tracker.observe(finished) is None
    decision = tracker.set_total(total)
    if expected is None:
        assert decision is None
    else:
        assert decision is not None
        assert decision.passed is expected


# --- the registry ----------------------------------------------------------------------


def test_the_registry_lists_every_strategy_in_help_order() -> None:
    assert tuple(STRATEGIES) == STRATEGY_NAMES
    assert all(STRATEGIES[name].name == name for name in STRATEGIES)


@pytest.mark.parametrize(
    ("name", "threshold_options", "votes"),
    [
        ("all-succeed", (), False),
        ("first-n-succeed", ("required_successes",), False),
        ("best-of-n", (), False),
        ("majority-vote", (), True),
        ("partial-success", ("min_successes", "min_success_ratio"), False),
    ],
)
def test_what_each_strategy_reads(
    name: str, threshold_options: tuple[str, ...], votes: bool
) -> None:
    strategy = STRATEGIES[name]
    assert strategy.threshold_options == threshold_options
    assert strategy.votes is votes
    assert uses_votes(name) is votes


@pytest.mark.parametrize(
    ("name", "statuses", "passed", "decided_at"),
    [
        ("all-succeed", "S S S", True, None),
        ("first-n-succeed", "F S S", True, 2),
        ("best-of-n", "F S F", True, None),
        ("majority-vote", "F F F", False, 2),
        ("partial-success", "F F S", True, None),
    ],
)
def test_each_registered_strategy_decides_and_judges(
    name: str, statuses: str, passed: bool, decided_at: int | None
) -> None:
    """Through the registry's class alone, as the Tracker uses it."""
    strategy = STRATEGIES[name](StrategyOptions(name))
    tally = Tally(total=3)
    decided = None
    for position, finished in enumerate(results_from(statuses), start=1):
        tally.add(finished)
        if decided is None and strategy.decide(tally, finished) is not None:
            decided = position
    assert decided == decided_at
    assert strategy.verdict(tally).passed is passed
    assert strategy.verdict(tally).strategy == name


def test_an_unknown_strategy_decides_nothing_and_has_no_verdict() -> None:
    tracker = Tracker(StrategyOptions("coin-flip"), 1)
    assert tracker.observe(result(1)) is None
    assert not uses_votes("coin-flip")
    with pytest.raises(ValueError, match="unknown strategy 'coin-flip'"):
        tracker.verdict()
