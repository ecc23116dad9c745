"""The plan record: what a shard run planned, kept in its run folder as plan.json so
that `fanout merge` can prove the shards covered every task exactly once.

    {"fanout_plan_version": 1, "fingerprint": "sha256:<hex>", "shards": N, "shard": I,
     "slots": J, "order": "longest-first",
     "timings": {"files": [...], "known": K, "units": U},
     "shard_estimates": [seconds per shard, in shard order],
     "units": [{"id", "key", "shard", "estimate"}, ...],   # the whole list, input order
     "tasks": [{"seq", "units": [KEY, ...]}, ...]}         # optional: else a task is a unit

The fingerprint is a sha256 over what decides the plan: N, J and every unit's key and
estimate (to the millisecond), in key order. Two shards planned alike exactly when
their fingerprints are equal. A merged run's record is for no one shard (`shard` is
null), and keeps each shard's fingerprint (`shard_fingerprints`) when they differed.
The manifest carries a small `plan` object (fingerprint, shard, units) for readers
that do not need the whole list."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout_cli.aop import PLAN, RunFolder

if TYPE_CHECKING:
    from fanout_cli.plan import RunPlan
    from fanout_cli.shards.split import Split
    from fanout_cli.values import Shard

PLAN_VERSION = 1


def fingerprint(shards: int, slots: int, units: Iterable[tuple[str, float]]) -> str:
    """`sha256:<hex>` of N, J and the (key, estimate) of every unit, in key order."""
    canonical = json.dumps(
        {"shards": shards, "slots": slots,
         "units": sorted((key, round(seconds * 1000)) for key, seconds in units)},
        separators=(",", ":"), ensure_ascii=True,
    )  # fmt: skip
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def plan_document(
    split: Split, shard: Shard, order: str, timing_files: Iterable[str]
) -> dict[str, Any]:
    """The plan record of shard `shard` of `split` (planned with --shard)."""
    plans = split.plans or []
    estimates = split.estimates or {}
    shard_of = {spec.seq: number for number, plan in enumerate(plans, start=1)
                for slot in plan.slots for spec in slot}  # fmt: skip
    specs = sorted((spec for plan in plans for slot in plan.slots for spec in slot),
                   key=lambda spec: spec.seq)  # fmt: skip
    values = split.per_value
    if values is not None:  # -X: the units are the values; "tasks" says which ran where
        estimates, shard_of, specs = values.estimates, values.shard_of(), list(values.units)
    units = [(spec, round(estimates.get(spec.task_id, 0.0), 3)) for spec in specs]
    document = {
        "fanout_plan_version": PLAN_VERSION,
        "fingerprint": fingerprint(shard.total, split.slots,
                                   ((spec.key, seconds) for spec, seconds in units)),
        "shards": shard.total,
        "shard": shard.index,
        "slots": split.slots,
        "order": order,
        "timings": {"files": list(timing_files), "known": split.known, "units": len(units)},
        "shard_estimates": [round(plan.estimate, 3) for plan in plans],
        "units": [
            {"id": spec.task_id, "key": spec.key, "shard": shard_of[spec.seq], "estimate": seconds}
            for spec, seconds in units
        ],
    }
    if values is not None:
        from fanout_cli.shards.batches import plan_tasks

        document["tasks"] = plan_tasks(values.commands(shard.index))
    return document


def plan_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's `plan` object: enough to compare runs without the whole list."""
    return {"fingerprint": document["fingerprint"], "shard": document["shard"],
            "units": len(document["units"])}  # fmt: skip


def write_plan(folder: RunFolder, document: Mapping[str, Any]) -> None:
    """plan.json, written whole and renamed into place (IOFailure when it cannot be)."""
    from fanout_cli.aop.documents import json_bytes
    from fanout_cli.aop.writer import write_member
    from fanout_cli.errors import IOFailure

    try:
        write_member(folder, PLAN, [json_bytes(document), b"\n"])
    except OSError as exc:
        raise IOFailure.of(folder.member(PLAN), exc) from None


def read_plan(run_dir: Path) -> dict[str, Any] | None:
    """A run's plan record, None when it has none (not a shard run, an older fanout).
    RunFolderError, one line naming the file, for a link planted there or a record
    that is not one."""
    from fanout_cli.aop.files import RunFolderError
    from fanout_cli.aop.reader import open_file

    where = str(RunFolder(run_dir).plan)
    try:
        with open_file(run_dir, PLAN) as handle:
            document = json.loads(handle.read())
    except FileNotFoundError:
        return None
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deep"
        raise RunFolderError(f"{where}: not a fanout plan: not valid JSON: {reason}") from None
    problem = plan_problem(document)
    if problem is not None:
        raise RunFolderError(f"{where}: not a fanout plan: {problem}")
    assert isinstance(document, dict)
    return document


_TOP: dict[str, tuple[type, ...]] = {
    "fingerprint": (str,), "shards": (int,), "shard": (int, type(None)), "slots": (int,),
    "units": (list,),
}  # fmt: skip
_UNIT: dict[str, tuple[type, ...]] = {
    "id": (str,), "key": (str,), "shard": (int,), "estimate": (int, float),
}  # fmt: skip


def plan_problem(document: object) -> str | None:
    """Why `document` is not a plan record merge can read, or None."""
    if not isinstance(document, dict):
        return "not a JSON object"
    if document.get("fanout_plan_version") != PLAN_VERSION:
        return f"fanout_plan_version {document.get('fanout_plan_version')!r} is not {PLAN_VERSION}"
    problem = _types(document, _TOP, "")
    for number, unit in enumerate(document["units"] if problem is None else (), start=1):
        if not isinstance(unit, dict):
            return f"units[{number}] is not an object"
        problem = problem or _types(unit, _UNIT, f"units[{number}].")
    tasks = document.get("tasks")
    if problem is None and tasks is not None:
        valid = isinstance(tasks, list) and all(
            isinstance(task, dict) and type(task.get("seq")) is int
            and isinstance(task.get("units"), list)
            and all(isinstance(key, str) for key in task["units"])
            for task in tasks
        )  # fmt: skip
        problem = None if valid else "tasks is not a list of {seq, units}"
    each = document.get("shard_fingerprints")  # a merged run's, when shards differed
    if problem is None and each is not None and not (
        isinstance(each, list) and all(isinstance(text, str | None) for text in each)
    ):
        problem = "shard_fingerprints is not a list of fingerprints"
    return problem


def _types(
    record: Mapping[str, Any], types: Mapping[str, tuple[type, ...]], where: str
) -> str | None:
    for name, allowed in types.items():
        value = record.get(name)
        if name not in record or isinstance(value, bool) or not isinstance(value, allowed):
            return f"{where}{name} is missing or not {'/'.join(t.__name__ for t in allowed)}"
    return None


def shard_plan_record(plan: RunPlan) -> dict[str, Any] | None:
    """The plan record of a run planned with --shard; None for any other run (and for
    a resumed one: its record stands)."""
    from fanout_cli.values import parse_shard

    split, sharding = plan.split, plan.config.sharding
    if split is None or split.plans is None or sharding.shard is None or plan.resume is not None:
        return None
    timing_files = sharding.timings or ()
    return plan_document(split, parse_shard(sharding.shard), sharding.run_order, timing_files)
