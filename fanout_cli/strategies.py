"""How a set of task results becomes one verdict. Pure: no processes, no files.

`Tracker.observe` is fed each result as it ends and says when the verdict is already
decided (so the runner can end the rest); `verdict` computes the final answer from all
results, including the ones the early decision cancelled."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from fanout_cli.models import STATUS_ORDER, TaskResult, TaskStatus, Verdict, Winner


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


class Tracker:
    """Follows results as they arrive and decides early where the strategy allows."""

    def __init__(self, options: StrategyOptions, total: int | None) -> None:
        self.options = options
        self.total = total  # None while a streaming source is still being read
        self.finished = 0
        self.successes = 0
        self.votes: Counter[str] = Counter()
        self.decision: Decision | None = None

    def set_total(self, total: int) -> Decision | None:
        self.total = total
        if self.decision is None:
            self.decision = self._decide(None)
        return self.decision

    def observe(self, result: TaskResult) -> Decision | None:
        """Record one ended task; return the decision the first time there is one."""
        self.finished += 1
        if result.status is TaskStatus.SUCCESS:
            self.successes += 1
            if result.vote_key is not None:
                self.votes[result.vote_key] += 1
        if self.decision is not None:
            return None
        self.decision = self._decide(result)
        return self.decision

    def _decide(self, latest: TaskResult | None) -> Decision | None:
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
            top = self.votes.most_common(1)
            top_votes = top[0][1] if top else 0
            if top_votes >= threshold:
                return Decision(True, f"majority reached: {top_votes} of {self.total}")
            if top_votes + remaining < threshold:
                return Decision(False, f"no answer can reach {threshold} of {self.total} votes")
        return None


def verdict(options: StrategyOptions, results: Sequence[TaskResult]) -> Verdict:
    counts = count_statuses(results)
    total = len(results)
    successes = [result for result in results if result.status is TaskStatus.SUCCESS]
    name = options.name
    if name == "all-succeed":
        passed = len(successes) == total
        reason = (
            f"{total} of {total} succeeded" if passed else f"{_not_succeeded(counts)} of {total}"
        )
        return Verdict(passed, name, reason, counts)
    if name == "first-n-succeed":
        needed = options.required_successes
        reason = f"{len(successes)} of {total} succeeded (needed {needed})"
        return Verdict(len(successes) >= needed, name, reason, counts)
    if name == "partial-success":
        needed = required_for_partial(options, total)
        reason = f"{len(successes)} of {total} succeeded (needed {needed})"
        return Verdict(len(successes) >= needed, name, reason, counts)
    if name == "best-of-n":
        return _best_of_n(successes, total, counts)
    if name == "majority-vote":
        return _majority(successes, total, counts)
    raise ValueError(f"unknown strategy {name!r}")


def _not_succeeded(counts: dict[str, int]) -> str:
    parts = [
        f"{counts[str(status)]} {status}" for status in STATUS_ORDER[1:] if counts[str(status)]
    ]
    return ", ".join(parts)


def _best_of_n(successes: list[TaskResult], total: int, counts: dict[str, int]) -> Verdict:
    if not successes:
        return Verdict(False, "best-of-n", f"none of {total} succeeded", counts)
    # Highest score wins; an unscored success ranks below any scored one; ties: lowest seq.
    best = min(
        successes,
        key=lambda r: (r.score is None, -(r.score if r.score is not None else 0.0), r.seq),
    )
    score_text = "no score" if best.score is None else f"score {best.score:g}"
    reason = f"{best.task_id} wins with {score_text} ({len(successes)} of {total} succeeded)"
    winner = Winner(task_id=best.task_id, score=best.score)
    return Verdict(True, "best-of-n", reason, counts, winner)


def _majority(successes: list[TaskResult], total: int, counts: dict[str, int]) -> Verdict:
    ballots: dict[str, list[TaskResult]] = {}
    for result in successes:
        if result.vote_key is not None:
            ballots.setdefault(result.vote_key, []).append(result)
    threshold = majority_threshold(total)
    if not ballots:
        return Verdict(False, "majority-vote", f"no votes among {total} tasks", counts)
    # Most votes wins; ties go to the key whose first voter came first.
    key, voters = min(ballots.items(), key=lambda item: (-len(item[1]), item[1][0].seq))
    winner = Winner(vote_key=key, votes=len(voters), task_ids=tuple(r.task_id for r in voters))
    shown = key if len(key) <= 60 else key[:59] + "…"
    if len(voters) >= threshold:
        reason = f"{shown!r} has {len(voters)} of {total} votes"
        return Verdict(True, "majority-vote", reason, counts, winner)
    reason = f"no majority: {shown!r} has {len(voters)} of {total} votes (needed {threshold})"
    return Verdict(False, "majority-vote", reason, counts)
