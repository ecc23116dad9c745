"""The verdict strategies by name, in the order help text lists them: "module:Class" in
fanout_cli/strategies/. A leaf, so that `fanout --help` and the option table name the
strategies without loading them or the records they read (fanout_cli/strategies/)."""

from __future__ import annotations

from collections.abc import Mapping

TABLE: Mapping[str, str] = {
    "all-succeed": "all_succeed:AllSucceed",
    "first-n-succeed": "first_n_succeed:FirstNSucceed",
    "best-of-n": "best_of_n:BestOfN",
    "majority-vote": "majority_vote:MajorityVote",
    "partial-success": "partial_success:PartialSuccess",
}
STRATEGY_NAMES: tuple[str, ...] = tuple(TABLE)
