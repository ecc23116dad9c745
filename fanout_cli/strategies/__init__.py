"""How a set of task results becomes one verdict. Pure: no processes, no files.

`STRATEGIES` is the one table of strategies, by name, in the order help text lists
them; each class lives in its own module. `Tracker.observe` is fed each result as it
ends and says when the verdict is already decided (so the runner can end the rest);
`verdict` computes the final answer from all results, including the ones the early
decision cancelled.

Importing this package is cheap (the models module and the strategy modules only),
so option parsing can list the names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fanout_cli.models import TaskResult, Verdict
from fanout_cli.strategies.all_succeed import AllSucceed
from fanout_cli.strategies.base import (
    Ballot,
    Decision,
    Outcome,
    Strategy,
    StrategyOptions,
    Tally,
    count_statuses,
    majority_threshold,
    required_for_partial,
)
from fanout_cli.strategies.best_of_n import BestOfN
from fanout_cli.strategies.first_n_succeed import FirstNSucceed
from fanout_cli.strategies.majority_vote import MajorityVote
from fanout_cli.strategies.partial_success import PartialSuccess

STRATEGIES: Mapping[str, type[Strategy]] = {
    strategy.name: strategy
    for strategy in (AllSucceed, FirstNSucceed, BestOfN, MajorityVote, PartialSuccess)
}
STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGIES)

__all__ = [
    "STRATEGIES",
    "STRATEGY_NAMES",
    "Ballot",
    "Decision",
    "Outcome",
    "Strategy",
    "StrategyOptions",
    "Tally",
    "Tracker",
    "count_statuses",
    "majority_threshold",
    "required_for_partial",
    "uses_votes",
    "verdict",
]


def uses_votes(name: str) -> bool:
    """Whether strategy `name` needs a vote key for each successful task."""
    strategy = STRATEGIES.get(name)
    return strategy is not None and strategy.votes


class Tracker:
    """Follows results as they arrive: decides early where the strategy allows, and
    keeps a tally (counts, the best score, the ballots) to give the verdict at the
    end without holding on to the results themselves."""

    def __init__(self, options: StrategyOptions, total: int | None) -> None:
        self.options = options
        chosen = STRATEGIES.get(options.name)
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
