"""first-n-succeed: pass once N tasks succeeded; the rest are stopped."""

from __future__ import annotations

from fanout_cli.models import Verdict
from fanout_cli.strategies import Decision, Outcome, Strategy, Tally


class FirstNSucceed(Strategy):
    name = "first-n-succeed"
    threshold_options = ("required_successes",)

    def decide(self, tally: Tally, latest: Outcome | None) -> Decision | None:
        needed, successes, remaining = (
            self.options.required_successes,
            tally.successes,
            tally.remaining,
        )
        if successes >= needed:
            return Decision(True, f"{successes} succeeded (needed {needed})")
        if remaining is not None and successes + remaining < needed:
            return Decision(False, f"only {successes + remaining} can succeed (needed {needed})")
        return None

    def verdict(self, tally: Tally) -> Verdict:
        counts = dict(tally.counts)
        needed = self.options.required_successes
        reason = f"{counts['success']} of {counts['tasks']} succeeded (needed {needed})"
        return Verdict(counts["success"] >= needed, self.name, reason, counts)
