"""How a set of task results becomes one verdict. Pure: no processes, no files.

`Tracker.observe` is fed each result as it ends and says when the verdict is already
decided (so the runner can end the rest); `verdict` computes the final answer from all
results, including the ones the early decision cancelled."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from fanout_cli.models import STATUS_ORDER, TaskResult, TaskStatus, Verdict, Winner


class Outcome(Protocol):
    """What a strategy looks at in a result (a TaskResult, or an earlier one on resume)."""

    @property
    def status(self) -> TaskStatus: ...

    @property
    def seq(self) -> int: ...

    @property
    def task_id(self) -> str: ...

    @property
    def score(self) -> float | None: ...

    @property
    def vote_key(self) -> str | None: ...


@dataclass(frozen=True)
class StrategyOptions:
    name: str = "all-succeed"
    fail_fast: bool = False
    required_successes: int = 1
    min_successes: int | None = None
    min_success_ratio: float | None = None


@dataclass(frozen=True)
class Decision:
    """The verdict is known before every task has ended; the rest can be stopped."""

    passed: bool
    reason: str


def count_statuses(results: Sequence[TaskResult]) -> dict[str, int]:
    counts = {"tasks": len(results)} | {str(status): 0 for status in STATUS_ORDER}
    for result in results:
        counts[str(result.status)] += 1
    return counts


def required_for_partial(options: StrategyOptions, total: int) -> int:
    if options.min_successes is not None:
        return options.min_successes
    if options.min_success_ratio is not None:
        return max(1, math.ceil(options.min_success_ratio * total - 1e-9))
    return 1


def majority_threshold(total: int) -> int:
    """More than half of all tasks."""
    return total // 2 + 1


@dataclass
class _Ballot:
    votes: int
    first_seq: int
    task_ids: list[str]


class Tracker:
    """Follows results as they arrive: decides early where the strategy allows, and
    keeps just enough (counts, the best score, the ballots) to give the verdict at the
    end without holding on to the results themselves."""

    def __init__(self, options: StrategyOptions, total: int | None) -> None:
        self.options = options
        self.total = total  # None while a streaming source is still being read
        self.counts = count_statuses(())
        self.best: Outcome | None = None
        self.ballots: dict[str, _Ballot] = {}
        self.top_votes = 0
        self.decision: Decision | None = None

    @property
    def finished(self) -> int:
        return self.counts["tasks"]

    @property
    def successes(self) -> int:
        return self.counts["success"]

    def set_total(self, total: int) -> Decision | None:
        self.total = total
        if self.decision is None:
            self.decision = self._decide(None)
        return self.decision

    def observe(self, result: Outcome) -> Decision | None:
        """Record one ended task; return the decision the first time there is one."""
        self.counts["tasks"] += 1
        self.counts[str(result.status)] += 1
        if result.status is TaskStatus.SUCCESS:
            self._count_success(result)
        if self.decision is not None:
            return None
        self.decision = self._decide(result)
        return self.decision

    def _count_success(self, result: Outcome) -> None:
        if self.best is None or _rank(result) < _rank(self.best):
            self.best = result
        if result.vote_key is not None:
            ballot = self.ballots.get(result.vote_key)
            if ballot is None:
                ballot = self.ballots[result.vote_key] = _Ballot(0, result.seq, [])
            ballot.votes += 1
            ballot.first_seq = min(ballot.first_seq, result.seq)
            ballot.task_ids.append(result.task_id)
            self.top_votes = max(self.top_votes, ballot.votes)

    def _decide(self, latest: Outcome | None) -> Decision | None:
        options = self.options
        remaining = None if self.total is None else self.total - self.finished
        if options.name == "all-succeed":
            if options.fail_fast and latest is not None and latest.status != "success":
                return Decision(False, f"{latest.task_id} ended {latest.status} (--fail-fast)")
        elif options.name == "first-n-succeed":
            needed = options.required_successes
            if self.successes >= needed:
                return Decision(True, f"{self.successes} succeeded (needed {needed})")
            if remaining is not None and self.successes + remaining < needed:
                return Decision(
                    False, f"only {self.successes + remaining} can succeed (needed {needed})"
                )
        elif options.name == "majority-vote" and self.total is not None and remaining is not None:
            threshold = majority_threshold(self.total)
            if self.top_votes >= threshold:
                return Decision(True, f"majority reached: {self.top_votes} of {self.total}")
            if self.top_votes + remaining < threshold:
                return Decision(False, f"no answer can reach {threshold} of {self.total} votes")
        return None

    def verdict(self) -> Verdict:
        counts = dict(self.counts)
        total = counts["tasks"]
        successes = counts["success"]
        name = self.options.name
        if name == "all-succeed":
            passed = successes == total
            shortfall = _not_succeeded(counts)
            reason = f"{total} of {total} succeeded" if passed else f"{shortfall} of {total}"
            return Verdict(passed, name, reason, counts)
        if name in ("first-n-succeed", "partial-success"):
            needed = (
                self.options.required_successes
                if name == "first-n-succeed"
                else required_for_partial(self.options, total)
            )
            reason = f"{successes} of {total} succeeded (needed {needed})"
            return Verdict(successes >= needed, name, reason, counts)
        if name == "best-of-n":
            return self._best_of_n(counts)
        if name == "majority-vote":
            return self._majority(counts)
        raise ValueError(f"unknown strategy {name!r}")

    def _best_of_n(self, counts: dict[str, int]) -> Verdict:
        total, best = counts["tasks"], self.best
        if best is None:
            return Verdict(False, "best-of-n", f"none of {total} succeeded", counts)
        score_text = "no score" if best.score is None else f"score {best.score:g}"
        succeeded = f"{counts['success']} of {total} succeeded"
        reason = f"{best.task_id} wins with {score_text} ({succeeded})"
        winner = Winner(task_id=best.task_id, score=best.score)
        return Verdict(True, "best-of-n", reason, counts, winner)

    def _majority(self, counts: dict[str, int]) -> Verdict:
        total = counts["tasks"]
        if not self.ballots:
            return Verdict(False, "majority-vote", f"no votes among {total} tasks", counts)
        # Most votes wins; ties go to the key whose first voter came first.
        key, ballot = min(
            self.ballots.items(), key=lambda item: (-item[1].votes, item[1].first_seq)
        )
        threshold = majority_threshold(total)
        shown = key if len(key) <= 60 else key[:59] + "…"
        if ballot.votes < threshold:
            reason = (
                f"no majority: {shown!r} has {ballot.votes} of {total} votes "
                f"(needed {threshold})"
            )
            return Verdict(False, "majority-vote", reason, counts)
        winner = Winner(vote_key=key, votes=ballot.votes, task_ids=tuple(ballot.task_ids))
        reason = f"{shown!r} has {ballot.votes} of {total} votes"
        return Verdict(True, "majority-vote", reason, counts, winner)


def _rank(result: Outcome) -> tuple[bool, float, int]:
    """best-of-n order: scored before unscored, higher score first, then lower seq."""
    score = result.score
    return (score is None, -(score if score is not None else 0.0), result.seq)


def verdict(options: StrategyOptions, results: Sequence[TaskResult]) -> Verdict:
    """The verdict over a complete list of results."""
    tracker = Tracker(options, len(results))
    for result in results:
        tracker.observe(result)
    return tracker.verdict()


def _not_succeeded(counts: dict[str, int]) -> str:
    parts = [
        f"{counts[str(status)]} {status}" for status in STATUS_ORDER[1:] if counts[str(status)]
    ]
    return ", ".join(parts)
