"""best-of-n: every task runs; the successful one with the highest score wins."""

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
        score_text = "no score" if best.score is None else f"score {best.score:g}"
        succeeded = f"{counts['success']} of {total} succeeded"
        reason = f"{best.task_id} wins with {score_text} ({succeeded})"
        winner = Winner(task_id=best.task_id, score=best.score)
        return Verdict(True, self.name, reason, counts, winner)
