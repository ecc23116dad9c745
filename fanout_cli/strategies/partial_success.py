"""partial-success: every task runs; pass when enough succeeded (a count or a ratio).
With --fail-fast the run stops once enough can no longer succeed."""

from __future__ import annotations

from fanout_cli.models import Verdict
from fanout_cli.strategies import Decision, Outcome, Strategy, Tally, required_for_partial


class PartialSuccess(Strategy):
    name = "partial-success"
    threshold_options = ("min_successes", "min_success_ratio")

    def decide(self, tally: Tally, latest: Outcome | None) -> Decision | None:
        if not self.options.fail_fast or tally.total is None or tally.remaining is None:
            return None
        needed = required_for_partial(self.options, tally.total)
        possible = tally.successes + tally.remaining
        if possible < needed:
            return Decision(False, f"only {possible} can succeed (needed {needed}; --fail-fast)")
        return None

    def verdict(self, tally: Tally) -> Verdict:
        counts = dict(tally.counts)
        total, successes = counts["tasks"], counts["success"]
        needed = required_for_partial(self.options, total)
        reason = f"{successes} of {total} succeeded (needed {needed})"
        return Verdict(successes >= needed, self.name, reason, counts)
