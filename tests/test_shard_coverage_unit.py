"""The plan record and merge's coverage check as pure functions: fingerprints, which
task ran where (by key, or by a plan's `tasks` list), and 10,000 tasks in time."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fanout_cli.models import TaskSpec
from fanout_cli.results import SourceRun
from fanout_cli.shards.coverage import check_coverage
from fanout_cli.shards.record import fingerprint, plan_document, plan_problem
from fanout_cli.shards.split import Split, plan_shards
from fanout_cli.sources.values import ListSource
from fanout_cli.values import Shard


def specs(count: int) -> list[TaskSpec]:
    return [TaskSpec(seq, f"t{seq}", ("echo", f"t{seq}"), f"test:{seq}")
            for seq in range(1, count + 1)]  # fmt: skip


def split_of(tasks: Sequence[TaskSpec], total: int, slots: int = 1) -> Split:
    estimates = {spec.task_id: 1.0 + spec.seq % 7 for spec in tasks}
    plans = plan_shards(tasks, estimates, total, slots)
    return Split(ListSource("test", list(tasks)), plans, len(tasks), slots, estimates)


def records(tasks: Sequence[TaskSpec], total: int, slots: int = 1) -> list[dict[str, Any]]:
    split = split_of(tasks, total, slots)
    return [plan_document(split, Shard(index, total), "longest-first", ["t.json"])
            for index in range(1, total + 1)]  # fmt: skip


def shard_run(record: dict[str, Any], tasks: Sequence[TaskSpec], started: float,
              only: Sequence[str] | None = None) -> SourceRun:  # fmt: skip
    """The run of the record's shard: a row for each of its tasks (or the ids in `only`)."""
    shard = Shard(record["shard"], record["shards"])
    mine = {unit["key"] for unit in record["units"] if unit["shard"] == shard.index}
    rows = [{"seq": spec.seq, "task_id": spec.task_id, "key": spec.key, "status": "success",
             "shard": str(shard)} for spec in tasks
            if (spec.key in mine if only is None else spec.task_id in only)]  # fmt: skip
    return SourceRun(Path(f"/runs/{shard.index}-{started}"), "finished", started, started + 1,
                     {}, shard, rows, plan=record)  # fmt: skip


def test_the_fingerprint_is_what_decides_the_plan() -> None:
    units = [("k1", 1.0), ("k2", 2.5)]
    same = fingerprint(4, 2, units)
    assert same == fingerprint(4, 2, list(reversed(units)))  # not the input order
    assert same == fingerprint(4, 2, [("k1", 1.0002), ("k2", 2.4999)])  # to the millisecond
    assert same != fingerprint(3, 2, units)
    assert same != fingerprint(4, 1, units)
    assert same != fingerprint(4, 2, [("k1", 1.0), ("k2", 2.6)])
    assert same != fingerprint(4, 2, [*units, ("k3", 1.0)])
    assert same.startswith("sha256:") and len(same) == 7 + 64


def test_every_shard_records_the_same_whole_plan() -> None:
    tasks = specs(10)
    shards = records(tasks, 3, 2)
    assert {record["fingerprint"] for record in shards} == {shards[0]["fingerprint"]}
    assert [record["shard"] for record in shards] == [1, 2, 3]
    assert all(record["units"] == shards[0]["units"] for record in shards)
    assert [unit["id"] for unit in shards[0]["units"]] == [spec.task_id for spec in tasks]
    assert all(plan_problem(record) is None for record in shards)
    assert shards[0]["timings"] == {"files": ["t.json"], "known": 10, "units": 10}


def test_a_plan_that_runs_tasks_in_batches_is_covered_through_its_tasks_list() -> None:
    """With a `tasks` list a row stands for the units its seq names (per-test batches)."""
    tasks = specs(6)
    shards = records(tasks, 2)
    runs = []
    for record in shards:
        mine = [unit["key"] for unit in record["units"] if unit["shard"] == record["shard"]]
        batch = {"seq": 1, "units": mine}
        record["tasks"] = [batch]
        assert plan_problem(record) is None
        row = {"seq": 1, "task_id": f"batch {record['shard']}", "key": "b", "status": "failure",
               "shard": f"{record['shard']}/2"}  # fmt: skip
        runs.append(SourceRun(Path(f"/r{record['shard']}"), "finished", record["shard"], 9.0,
                              {}, Shard(record["shard"], 2), [row], plan=record))  # fmt: skip
    assert check_coverage(runs).problems == ()
    runs[1].plan["tasks"][0]["units"].pop()  # type: ignore[index]  # a unit the batch left out
    coverage = check_coverage(runs)
    assert coverage.problems == ("1 task never ran",)
    assert coverage.plan is not None and coverage.plan["shard"] is None
    # The merged run's record: each batch with the shard it ran in.
    assert [(task["shard"], task["seq"]) for task in coverage.plan["tasks"]] == [(1, 1), (2, 1)]


def test_problems_name_tasks_capped() -> None:
    tasks = specs(20)
    shards = records(tasks, 2)
    first = shard_run(shards[0], tasks, 1.0, only=[f"t{n}" for n in range(1, 21)])
    second = shard_run(shards[1], tasks, 2.0, only=[])
    coverage = check_coverage([first, second])
    twice = [line for line in coverage.details if line.startswith("ran in two shards")]
    assert coverage.problems == ()  # shard 2 ran nothing but t1..t20 ran once, in shard 1
    assert twice == []
    third = shard_run(shards[1], tasks, 3.0)  # shard 2 again: the newest counts
    coverage = check_coverage([first, second, third])
    (line,) = [line for line in coverage.details if line.startswith("ran in two shards")]
    assert line.endswith(" +5 more")
    assert line.count("(1/2, 2/2)") == 5
    assert coverage.problems == ("10 tasks ran in two shards",)


def test_ten_thousand_tasks_are_checked_fast_and_their_plan_stays_small() -> None:
    tasks = specs(10_000)
    shards = records(tasks, 4, 2)
    size = len(json.dumps(shards[0], separators=(",", ":")))
    assert size / 10_000 < 100  # bytes per task: id, 20-character key, shard, estimate
    runs = [shard_run(record, tasks, float(record["shard"])) for record in shards]
    started = time.perf_counter()
    coverage = check_coverage(runs)
    elapsed = time.perf_counter() - started
    assert coverage.problems == () and coverage.plan is not None
    assert elapsed < 1.0, elapsed
    del runs[2].rows[:10]  # ten tasks of shard 3 have no row
    coverage = check_coverage(runs)
    assert coverage.problems == ("10 tasks never ran",)
