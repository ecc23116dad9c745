"""How a set of task results becomes one verdict: the one table of strategies.

Each strategy is a class in its own module (a `strategies.base.Strategy`), listed here
by name in the order help text lists them, and imported only when a run uses it, so
option parsing can list the names for nothing. `strategies.base.Tracker` feeds the
chosen strategy each result as it ends and gives the verdict; `strategies.base.STRATEGIES`
is the table as a mapping from name to class.

To add a strategy: a module beside these with its class, and one line in `TABLE`."""

from __future__ import annotations

from collections.abc import Mapping

# name -> "module:Class" in this package (strategies.base.strategy_class imports it).
TABLE: Mapping[str, str] = {
    "all-succeed": "all_succeed:AllSucceed",
    "first-n-succeed": "first_n_succeed:FirstNSucceed",
    "best-of-n": "best_of_n:BestOfN",
    "majority-vote": "majority_vote:MajorityVote",
    "partial-success": "partial_success:PartialSuccess",
}
STRATEGY_NAMES: tuple[str, ...] = tuple(TABLE)
