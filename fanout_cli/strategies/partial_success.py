"""partial-success: every task runs; pass when enough succeeded (a count or a ratio)."""

from __future__ import annotations

from fanout_cli.models import Verdict
from fanout_cli.strategies import Strategy, Tally, required_for_partial


class PartialSuccess(Strategy):
    name = "partial-success"
    threshold_options = ("min_successes", "min_success_ratio")

    def verdict(self, tally: Tally) -> Verdict:
        counts = dict(tally.counts)
        total, successes = counts["tasks"], counts["success"]
        needed = required_for_partial(self.options, total)
        reason = f"{successes} of {total} succeeded (needed {needed})"
        return Verdict(successes >= needed, self.name, reason, counts)
