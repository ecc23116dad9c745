"""best-of-n: every task runs; the successful one with the highest score wins.

When the user asked for scores (--scorer, --score REGEX) and no successful task got
one, the verdict fails: the best of N cannot be told, and a CI that asked for it should
not go green. Without either, the tasks' own [AOP:SCORE] lines are optional: the
earliest success wins, and the reason says it had no score."""

from __future__ import annotations

from fanout_cli.models import Verdict, Winner
from fanout_cli.strategies import Strategy, Tally


class BestOfN(Strategy):
    name = "best-of-n"

    def verdict(self, tally: Tally) -> Verdict:
        counts = dict(tally.counts)
        total, best = counts["tasks"], tally.best
        if best is None:
            return Verdict(False, self.name, f"none of {total} succeeded", counts)
        succeeded = f"{counts['success']} of {total} succeeded"
        if best.score is None and self.options.score_source is not None:
            reason = f"no task has a score ({succeeded}; {self._why_unscored(tally)})"
            return Verdict(False, self.name, reason, counts)
        score_text = "no score" if best.score is None else f"score {best.score:g}"
        if tally.scorer_failures:
            succeeded += f"; the scorer failed for {_tasks(tally.scorer_failures)}"
        reason = f"{best.task_id} wins with {score_text} ({succeeded})"
        winner = Winner(task_id=best.task_id, score=best.score)
        return Verdict(True, self.name, reason, counts, winner)

    def _why_unscored(self, tally: Tally) -> str:
        if tally.scorer_failures:
            return (f"the scorer failed for {_tasks(tally.scorer_failures)}: "
                    f"{tally.first_scorer_failure}")  # fmt: skip
        if self.options.score_source == "--scorer":
            return "the scorer printed no score"
        return f"{self.options.score_source} matched no successful task's output"


def _tasks(count: int) -> str:
    return f"{count} task{'s' * (count != 1)}"
