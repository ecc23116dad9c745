"""Merge's proof of coverage: the shard runs planned alike, and together ran every task
of the plan exactly once.

Each shard is judged from the newest run that holds it (a CI job run again replaces
the earlier one). A task ran in a shard when that run has a row for it, of any status
(the strategy judges statuses): by the row's key, or, when the plan has a `tasks`
list, by the units the row's seq stands for. Runs without a plan record (an older
fanout) cannot be proven: a warning says so, and merge's other checks stand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fanout_cli.results import SourceRun

SHOWN = 5  # task ids named on a line before "+N more"


@dataclass(frozen=True)
class Coverage:
    """What merge found: short problems for the verdict's reason, a line per problem
    naming tasks, a warning when it could not tell, and the merged run's plan record."""

    problems: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    warning: str | None = None
    plan: Mapping[str, Any] | None = None

    @property
    def reason(self) -> str | None:
        return f"coverage not proven: {', '.join(self.problems)}" if self.problems else None


def check_coverage(runs: Sequence[SourceRun]) -> Coverage:
    """The coverage of the shard runs (`runs` oldest first); nothing to say when none
    is a shard run."""
    chosen = newest_by_shard(runs)
    if not chosen:
        return Coverage()
    total = next(iter(chosen.values()))[1]
    unplanned = [f"{index}/{total}" for index, (run, _) in sorted(chosen.items())
                 if run.plan is None]  # fmt: skip
    if unplanned:
        return Coverage(warning=f"coverage could not be proven: shard{'s' * (len(unplanned) > 1)} "
                                f"{', '.join(unplanned)} kept no plan record (plan.json: an "
                                f"older fanout ran {'them' if len(unplanned) > 1 else 'it'})")
    plans = {index: run.plan for index, (run, _) in chosen.items() if run.plan is not None}
    problems, details = [], []
    groups: dict[str, list[int]] = {}
    for index in sorted(plans):
        groups.setdefault(fingerprint_of(plans[index], index), []).append(index)
    if len(groups) > 1:
        problems.append("shards planned differently")
        details.append(_disagreement(groups, plans, total))
    units = _all_units(plans)
    ran = _ran_in(chosen, plans, units)
    # A task planned only for shards not merged is told by "shard I/N missing".
    planned_here = {unit["key"] for plan in plans.values() for unit in plan["units"]
                    if unit["shard"] in chosen}  # fmt: skip
    never = [key for key in units if not ran.get(key) and key in planned_here]
    twice = [key for key in units if len(ran.get(key, ())) > 1]
    if never:
        problems.append(f"{_tasks(len(never))} never ran")
        details.append("never ran: " + _capped([units[key] for key in never]))
    if twice:
        problems.append(f"{_tasks(len(twice))} ran in two shards")
        named = [f"{units[key]} ({', '.join(f'{s}/{total}' for s in sorted(ran[key]))})"
                 for key in twice]  # fmt: skip
        details.append("ran in two shards: " + _capped(named))
    return Coverage(tuple(problems), tuple(details), None, _merged_plan(plans, groups, total))


def fingerprint_of(plan: Mapping[str, Any], shard: int) -> str:
    """The fingerprint shard `shard` planned from: a merged run's record of shards that
    planned differently keeps each one's."""
    each = plan.get("shard_fingerprints")
    mine = each[shard - 1] if isinstance(each, list) and 0 < shard <= len(each) else None
    return mine if isinstance(mine, str) else str(plan["fingerprint"])


def newest_by_shard(runs: Sequence[SourceRun]) -> dict[int, tuple[SourceRun, int]]:
    """Shard index -> (the newest run holding that shard, the number of shards)."""
    chosen: dict[int, tuple[SourceRun, int]] = {}
    for run in runs:
        shards: set[tuple[int, int] | None] = set()
        if run.shard is not None:
            shards = {(run.shard.index, run.shard.total)}
        elif run.plan is not None:  # a merged run: its rows say
            shards = {_shard_of(row) for row in run.rows}
        for shard in shards:
            if shard is not None:
                chosen[shard[0]] = (run, shard[1])
    return chosen


def _shard_of(row: Mapping[str, Any]) -> tuple[int, int] | None:
    text = row.get("shard")
    if not isinstance(text, str) or "/" not in text:
        return None
    index, _, total = text.partition("/")
    return (int(index), int(total)) if index.isdecimal() and total.isdecimal() else None


def _all_units(plans: Mapping[int, Mapping[str, Any]]) -> dict[str, str]:
    """Key -> id of every unit any shard planned, in input order (the first plan's,
    then what others add)."""
    units: dict[str, str] = {}
    for index in sorted(plans):
        for unit in plans[index]["units"]:
            units.setdefault(unit["key"], unit["id"])
    return units


def _ran_in(
    chosen: Mapping[int, tuple[SourceRun, int]],
    plans: Mapping[int, Mapping[str, Any]],
    units: Mapping[str, str],
) -> dict[str, set[int]]:
    """Unit key -> the shards that have a row for it."""
    keys_of_id = {unit_id: key for key, unit_id in units.items()}
    ran: dict[str, set[int]] = {}
    for index, (run, total) in chosen.items():
        plan, label = plans[index], f"{index}/{total}"
        batches = {(task.get("shard", plan["shard"]), task["seq"]): task["units"]
                   for task in plan.get("tasks") or ()}  # fmt: skip
        for row in run.rows:
            if row.get("shard") != label:
                continue
            if batches:
                keys = batches.get((index, row["seq"])) or ()
            else:
                key = row.get("key")
                keys = (key if isinstance(key, str) else keys_of_id.get(row["task_id"]),)
            for key in keys:
                if key is not None:
                    ran.setdefault(key, set()).add(index)
    return ran


def _merged_plan(
    plans: Mapping[int, Mapping[str, Any]], groups: Mapping[str, list[int]], total: int
) -> dict[str, Any]:
    """The record of a merged run, for no one shard: the plan most shards made; when
    some planned differently, `shard_fingerprints` keeps each shard's (a merge of this
    merged run then finds them again). A `tasks` list says which shard each seq ran in."""
    most = min(groups.values(), key=lambda indexes: (-len(indexes), indexes))
    merged = {**plans[most[0]], "shard": None}
    merged.pop("shard_fingerprints", None)
    if len(groups) > 1:
        merged["shard_fingerprints"] = [
            fingerprint_of(plans[index], index) if index in plans else None
            for index in range(1, total + 1)
        ]
    if any("tasks" in plan for plan in plans.values()):
        merged["tasks"] = [
            {**task, "shard": index}
            for index, plan in sorted(plans.items())
            for task in plan.get("tasks") or ()
            if task.get("shard", plan["shard"]) == index
        ]
    return merged


def _disagreement(
    groups: Mapping[str, list[int]], plans: Mapping[int, Mapping[str, Any]], total: int
) -> str:
    """`plans differ: shard 1/4 planned from sha256:..., shards 2/4, 3/4 from ...: why`."""
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[1]))
    parts = []
    for fingerprint, indexes in sorted(groups.items(), key=lambda item: item[1]):
        shards = ", ".join(f"{index}/{total}" for index in indexes)
        parts.append(f"shard{'s' * (len(indexes) > 1)} {shards} from {fingerprint[:19]}")
    line = "plans differ: " + ", ".join(parts).replace(" from ", " planned from ", 1)
    main = ordered[0][1][0]
    reasons = []
    for _, indexes in ordered[1:]:
        one, other = sorted((indexes[0], main))
        why = _differences(plans[one], plans[other], one, other, total)
        prefix = f"{one}/{total} vs {other}/{total}: " if len(ordered) > 2 else ""
        reasons.append(prefix + (why or "as a merged run's record says"))
    return f"{line}: {'; '.join(reasons)}"


def _differences(
    one: Mapping[str, Any], other: Mapping[str, Any], first: int, second: int, total: int
) -> str:
    """Why two plans differ, as far as their records tell."""
    found = []
    if one["shards"] != other["shards"]:
        found.append(f"a different N ({one['shards']} vs {other['shards']})")
    if one["slots"] != other["slots"]:
        found.append(f"a different -j ({one['slots']} vs {other['slots']})")
    mine = {unit["key"]: unit for unit in one["units"]}
    theirs = {unit["key"]: unit for unit in other["units"]}
    if mine.keys() != theirs.keys():
        only = []
        for index, units, others in ((first, mine, theirs), (second, theirs, mine)):
            extra = [unit["id"] for key, unit in units.items() if key not in others]
            if extra:
                only.append(f"only in {index}/{total}'s: {_capped(extra, 3)}")
        found.append(f"a different task list ({len(mine)} vs {len(theirs)} tasks; "
                     f"{'; '.join(only)})")  # fmt: skip
    changed = [(unit, theirs[key]) for key, unit in mine.items()
               if key in theirs and _ms(unit) != _ms(theirs[key])]  # fmt: skip
    if changed:
        unit, their = changed[0]
        example = f"{unit['id']} {unit['estimate']:.3f}s vs {their['estimate']:.3f}s"
        found.append(f"different estimates ({len(changed)} of {len(mine)} tasks, e.g. {example})")
    known = [_known(plan) for plan in (one, other)]
    if known[0] != known[1] and None not in known and mine.keys() == theirs.keys():
        found.append(f"{first}/{total} knew the durations of {known[0]} of {len(mine)} tasks, "
                     f"{second}/{total} of {known[1]}")  # fmt: skip
    return ", ".join(found)


def _ms(unit: Mapping[str, Any]) -> int:
    return round(float(unit["estimate"]) * 1000)


def _known(plan: Mapping[str, Any]) -> int | None:
    timings = plan.get("timings")
    known = timings.get("known") if isinstance(timings, dict) else None
    return known if isinstance(known, int) else None


def _capped(names: Sequence[str], shown: int = SHOWN) -> str:
    rest = len(names) - shown
    return ", ".join(names[:shown]) + (f" +{rest} more" if rest > 0 else "")


def _tasks(count: int) -> str:
    return f"{count} task{'s' * (count != 1)}"
