"""How a set of task results becomes one verdict. Pure: no processes, no files.

`TABLE` lists the strategies by name, in the order help text lists them; each is a
class (a `Strategy`) in its own module, imported only when a run uses it. `Tracker`
feeds the chosen strategy each result as it ends, says when the verdict is decided
early (so the runner can end the rest), and gives the verdict.

To add a strategy: a module beside these with its class, and one line in `TABLE`
(fanout_cli/strategy_table.py)."""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from fanout_cli.models import STATUS_ORDER, TaskResult, TaskStatus, Verdict

# name -> "module:Class" in this package; `strategy_class` imports one when asked.
from fanout_cli.strategy_table import STRATEGY_NAMES as STRATEGY_NAMES
from fanout_cli.strategy_table import TABLE as TABLE


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

    @property
    def scorer_error(self) -> str | None: ...


@dataclass(frozen=True)
class StrategyOptions:
    name: str = "all-succeed"
    fail_fast: bool = False
    required_successes: int = 1
    min_successes: int | None = None
    min_success_ratio: float | None = None
    # What scores the tasks when the user asked for it ("--scorer", "--score REGEX");
    # None: the [AOP:SCORE] lines tasks may print.
    score_source: str | None = None


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
    scorer_failures: int = 0  # successful tasks --scorer gave no score
    first_scorer_failure: str | None = None  # why, for the first of them

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
        if result.scorer_error is not None:
            self.scorer_failures += 1
            self.first_scorer_failure = self.first_scorer_failure or result.scorer_error
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


def strategy_class(name: str) -> type[Strategy] | None:
    """The class of strategy `name` (its module imported now), or None if unknown."""
    entry = TABLE.get(name)
    if entry is None:
        return None
    module, _, class_name = entry.partition(":")
    loaded = importlib.import_module(f"fanout_cli.strategies.{module}")
    found: type[Strategy] = getattr(loaded, class_name)
    return found


class _Strategies(Mapping[str, type["Strategy"]]):
    """The table as a mapping from name to class; a class is imported when looked up."""

    def __getitem__(self, name: str) -> type[Strategy]:
        found = strategy_class(name)
        if found is None:
            raise KeyError(name)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(TABLE)

    def __len__(self) -> int:
        return len(TABLE)


STRATEGIES: Mapping[str, type[Strategy]] = _Strategies()


@functools.cache
def uses_votes(name: str) -> bool:
    """Whether strategy `name` needs a vote key for each successful task (asked as
    each task ends)."""
    strategy = strategy_class(name)
    return strategy is not None and strategy.votes


class Tracker:
    """Follows results as they arrive: decides early where the strategy allows, and
    keeps a tally (counts, the best score, the ballots) to give the verdict at the
    end without holding on to the results themselves."""

    def __init__(self, options: StrategyOptions, total: int | None) -> None:
        self.options = options
        chosen = strategy_class(options.name)
        self.strategy = None if chosen is None else chosen(options)
        self.tally = Tally(total)
        self.decision: Decision | None = None

    @property
    def total(self) -> int | None:
        return self.tally.total

    def set_total(self, total: int) -> Decision | None:
        self.tally.total = total
        if self.decision is None:
            self.decision = self._decide(None)
        return self.decision

    def observe(self, result: Outcome) -> Decision | None:
        """Record one ended task; return the decision the first time there is one."""
        self.tally.add(result)
        if self.decision is not None:
            return None
        self.decision = self._decide(result)
        return self.decision

    def _decide(self, latest: Outcome | None) -> Decision | None:
        return None if self.strategy is None else self.strategy.decide(self.tally, latest)

    def verdict(self) -> Verdict:
        if self.strategy is None:
            raise ValueError(f"unknown strategy {self.options.name!r}")
        return self.strategy.verdict(self.tally)


def verdict(options: StrategyOptions, results: Sequence[TaskResult]) -> Verdict:
    """The verdict over a complete list of results."""
    tracker = Tracker(options, len(results))
    for result in results:
        tracker.observe(result)
    return tracker.verdict()
