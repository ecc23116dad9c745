"""all-succeed: every task must succeed (with --fail-fast, the first failure ends the run)."""

from __future__ import annotations

from fanout_cli.models import STATUS_ORDER, Verdict
from fanout_cli.strategies import Decision, Outcome, Strategy, Tally


class AllSucceed(Strategy):
    name = "all-succeed"

    def decide(self, tally: Tally, latest: Outcome | None) -> Decision | None:
        if self.options.fail_fast and latest is not None and latest.status != "success":
            return Decision(False, f"{latest.task_id} ended {latest.status} (--fail-fast)")
        return None

    def verdict(self, tally: Tally) -> Verdict:
        counts = dict(tally.counts)
        total, successes = counts["tasks"], counts["success"]
        passed = successes == total
        shortfall = _not_succeeded(counts)
        reason = f"{total} of {total} succeeded" if passed else f"{shortfall} of {total}"
        return Verdict(passed, self.name, reason, counts)


def _not_succeeded(counts: dict[str, int]) -> str:
    parts = [
        f"{counts[str(status)]} {status}" for status in STATUS_ORDER[1:] if counts[str(status)]
    ]
    return ", ".join(parts)
