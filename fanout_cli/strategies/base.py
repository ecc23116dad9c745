"""What every strategy shares: the results it looks at, the running tally it decides
from, and the base class a strategy module subclasses. Pure: no processes, no files."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from fanout_cli.models import STATUS_ORDER, TaskResult, TaskStatus, Verdict


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
class Ballot:
    votes: int
    first_seq: int
    task_ids: list[str]


@dataclass
class Tally:
    """Just enough of the results seen so far to decide and to give the verdict:
    counts, the best score, the ballots. The results themselves are not kept."""

    total: int | None  # None while a streaming source is still being read
    counts: dict[str, int] = field(default_factory=lambda: count_statuses(()))
    best: Outcome | None = None
    ballots: dict[str, Ballot] = field(default_factory=dict)
    top_votes: int = 0

    @property
    def finished(self) -> int:
        return self.counts["tasks"]

    @property
    def successes(self) -> int:
        return self.counts["success"]

    @property
    def remaining(self) -> int | None:
        return None if self.total is None else self.total - self.finished

    def add(self, result: Outcome) -> None:
        self.counts["tasks"] += 1
        self.counts[str(result.status)] += 1
        if result.status is TaskStatus.SUCCESS:
            self._count_success(result)

    def _count_success(self, result: Outcome) -> None:
        if self.best is None or _rank(result) < _rank(self.best):
            self.best = result
        if result.vote_key is not None:
            ballot = self.ballots.get(result.vote_key)
            if ballot is None:
                ballot = self.ballots[result.vote_key] = Ballot(0, result.seq, [])
            ballot.votes += 1
            ballot.first_seq = min(ballot.first_seq, result.seq)
            ballot.task_ids.append(result.task_id)
            self.top_votes = max(self.top_votes, ballot.votes)


def _rank(result: Outcome) -> tuple[bool, float, int]:
    """best-of-n order: scored before unscored, higher score first, then lower seq."""
    score = result.score
    return (score is None, -(score if score is not None else 0.0), result.seq)


class Strategy:
    """One way of turning results into a verdict. A subclass lives in its own module
    and is listed once in `fanout_cli.strategies.STRATEGIES`."""

    name: ClassVar[str]
    # The run options this strategy reads besides its name (merge carries them over).
    threshold_options: ClassVar[tuple[str, ...]] = ()
    # Whether each successful task needs a vote key (the runner computes one).
    votes: ClassVar[bool] = False

    def __init__(self, options: StrategyOptions) -> None:
        self.options = options

    def decide(self, tally: Tally, latest: Outcome | None) -> Decision | None:
        """The verdict, when it is already known before every task has ended."""
        return None

    def verdict(self, tally: Tally) -> Verdict:
        raise NotImplementedError
