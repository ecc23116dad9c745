"""majority-vote: pass when more than half of all tasks gave the same answer."""

from __future__ import annotations

from fanout_cli.models import Verdict, Winner
from fanout_cli.strategies import Decision, Outcome, Strategy, Tally, majority_threshold


class MajorityVote(Strategy):
    name = "majority-vote"
    votes = True

    def decide(self, tally: Tally, latest: Outcome | None) -> Decision | None:
        if tally.total is None or tally.remaining is None:
            return None
        threshold = majority_threshold(tally.total)
        if tally.top_votes >= threshold:
            return Decision(True, f"majority reached: {tally.top_votes} of {tally.total}")
        if tally.top_votes + tally.remaining < threshold:
            return Decision(False, f"no answer can reach {threshold} of {tally.total} votes")
        return None

    def verdict(self, tally: Tally) -> Verdict:
        counts = dict(tally.counts)
        total = counts["tasks"]
        if not tally.ballots:
            return Verdict(False, self.name, f"no votes among {total} tasks", counts)
        # Most votes wins; ties go to the key whose first voter came first.
        key, ballot = min(
            tally.ballots.items(), key=lambda item: (-item[1].votes, item[1].first_seq)
        )
        threshold = majority_threshold(total)
        shown = key if len(key) <= 60 else key[:59] + "…"
        if ballot.votes < threshold:
            reason = (
                f"no majority: {shown!r} has {ballot.votes} of {total} votes (needed {threshold})"
            )
            return Verdict(False, self.name, reason, counts)
        winner = Winner(vote_key=key, votes=ballot.votes, task_ids=tuple(ballot.task_ids))
        reason = f"{shown!r} has {ballot.votes} of {total} votes"
        return Verdict(True, self.name, reason, counts, winner)
