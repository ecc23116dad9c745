"""Shard plans: which tasks each of N machines runs, and in which order it starts them.

A plan is longest-processing-time-first list scheduling over N x J slots, J being the
shard's -j: the task with the longest estimate goes to the least-loaded slot of all the
shards (ties: the slot with fewer tasks, then the lowest), and shard I is made of slots
I, I+N, I+2N, ... (so that ties spread over the shards before they fill one). Ranking
the tasks by (estimate, id, key) first makes the plan independent of the input order:
every machine that has the same tasks and the same timings computes the same shards.

A shard's estimate is what its sliding window will do: the list schedule of its tasks,
in the order the shard starts them, on its J slots; not the sum of its tasks. Under
--shard the tasks start longest first unless --order says otherwise, which makes that
schedule the classic LPT one."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fanout_cli.models import TaskSpec

if TYPE_CHECKING:
    from fanout_cli.options import RunConfig
    from fanout_cli.shards.batches import ValuePlan
    from fanout_cli.sources import Resume, Source
    from fanout_cli.sources.inputs import ArgumentSource
    from fanout_cli.timings import Timings

Order = Callable[[Sequence[TaskSpec]], list[TaskSpec]]


@dataclass(frozen=True)
class ShardPlan:
    """One shard of a plan."""

    slots: tuple[tuple[TaskSpec, ...], ...]  # the tasks planned on each slot, input order
    estimate: float  # seconds: the list schedule of its tasks on its slots
    work: float  # seconds: the sum of its tasks' estimates

    @property
    def tasks(self) -> tuple[TaskSpec, ...]:
        """Every task of the shard, in input order."""
        return tuple(sorted((spec for slot in self.slots for spec in slot),
                            key=lambda spec: spec.seq))  # fmt: skip


def list_schedule(durations: Sequence[float], slots: int) -> float:
    """When the last of these tasks ends, started in this order on `slots` slots, each
    as soon as a slot is free (a sliding window)."""
    free = [0.0] * max(1, min(slots, len(durations)))
    end = 0.0
    for seconds in durations:
        start = heapq.heappop(free)
        end = max(end, start + seconds)
        heapq.heappush(free, start + seconds)
    return end


def plan_shards(
    specs: Sequence[TaskSpec],
    estimates: Mapping[str, float],
    total: int,
    slots: int = 1,
    order: Order | None = None,
) -> list[ShardPlan]:
    """The `total` shards of these tasks, each run on `slots` slots; `order` is the order
    a shard starts its tasks in (default: longest first), for its estimate."""
    ranked = sorted(specs, key=lambda spec: (-estimates[spec.task_id], spec.task_id, spec.key))
    bins = total * slots
    loads = [(0.0, 0, index) for index in range(bins)]  # (seconds, tasks, slot)
    members: list[list[TaskSpec]] = [[] for _ in range(bins)]
    for spec in ranked:
        load, count, index = heapq.heappop(loads)
        members[index].append(spec)
        heapq.heappush(loads, (load + estimates[spec.task_id], count + 1, index))
    starts = order or (lambda tasks: longest_first(tasks, estimates))
    plans = []
    for shard in range(total):
        planned = tuple(tuple(sorted(members[shard + slot * total], key=lambda spec: spec.seq))
                        for slot in range(slots))  # fmt: skip
        tasks = [spec for slot in planned for spec in slot]
        durations = [estimates[spec.task_id] for spec in starts(tasks)]
        plans.append(ShardPlan(planned, list_schedule(durations, slots), sum(durations)))
    return plans


def longest_first(specs: Sequence[TaskSpec], estimates: Mapping[str, float]) -> list[TaskSpec]:
    """By estimate, longest first; ties in input order."""
    return sorted(specs, key=lambda spec: (-estimates[spec.task_id], spec.seq))


def ordered(
    specs: Sequence[TaskSpec], order: str, estimates: Mapping[str, float], timings: Timings
) -> list[TaskSpec]:
    """`input` keeps the order; `longest-first` sorts by estimate (ties in input order);
    `failed-first` puts the tasks whose latest recorded run failed first, each group
    longest first."""
    if order == "input":
        return sorted(specs, key=lambda spec: spec.seq)
    if order == "longest-first":
        return longest_first(specs, estimates)
    return sorted(specs, key=lambda spec: (not timings.failed(spec.task_id),
                                           -estimates[spec.task_id], spec.seq))  # fmt: skip


@dataclass(frozen=True)
class Split:
    """What --shard and --order make of a source."""

    source: Source  # this shard's tasks, in the order they start
    plans: list[ShardPlan] | None  # --shard: every shard's plan (for --dry-run)
    known: int  # how many tasks had recorded durations
    slots: int = 1  # the slots each shard was planned on
    estimates: Mapping[str, float] | None = None  # seconds by task id: what it planned from
    per_value: ValuePlan | None = None  # -m/-X under --shard: planned value by value


def recorded_timings(config: RunConfig, resume: Resume | None) -> Timings:
    """The durations a plan is made from: the --timings files, else the output folder's
    earlier runs. A missing --timings file is a warning: a first CI pipeline has none."""
    from fanout_cli import timings as recorded
    from fanout_cli.timings_files import read_timings

    if not config.sharding.timings:
        runs = Path(config.output.output_dir) if resume is None else resume.run_dir.parent
        return recorded.timings_from_runs(runs)
    return read_timings(config.sharding.timings, "tasks it does not cover are estimated alike")


def split(source: Source, config: RunConfig, resume: Resume | None, slots: int = 1) -> Split:
    """This shard's tasks (all of them without --shard), in the order they start; each
    shard planned on `slots` slots."""
    from fanout_cli.shards.batches import per_value
    from fanout_cli.sources.values import ListSource
    from fanout_cli.values import parse_shard

    saved = resume is not None and resume.from_saved_list
    shuf = config.sharding.shuf
    if shuf is not None and (config.sharding.shard is None or saved):
        from fanout_cli.shards.shuffled import shuffled_source  # --shuf alone: no durations

        return Split(shuffled_source(source, shuf), None, 0, slots)
    if config.sharding.shard is not None and not saved and per_value(source):
        return split_values(source, config, resume, slots)
    specs = list(source.specs())  # a shard needs the whole list: stdin is read to its end
    timings = recorded_timings(config, resume)
    estimates = timings.estimates(specs)
    known = sum(1 for spec in specs if timings.known(spec.task_id) is not None)
    order = config.sharding.run_order

    def starts(tasks: Sequence[TaskSpec]) -> list[TaskSpec]:
        if shuf is not None:  # a shard planned as without --shuf, its tasks shuffled
            from fanout_cli.shards.shuffled import shuffled

            return shuffled(tasks, shuf)
        return ordered(tasks, order, estimates, timings)

    plans = None
    if config.sharding.shard is not None and not saved:
        shard = parse_shard(config.sharding.shard)
        plans = plan_shards(specs, estimates, shard.total, slots, starts)
        specs = list(plans[shard.index - 1].tasks)
    return Split(ListSource(source.name, starts(specs)), plans, known, slots, estimates)


def split_values(source: ArgumentSource, config: RunConfig, resume: Resume | None,
                 slots: int) -> Split:  # fmt: skip
    """-m/-X under --shard: the shards planned value by value (shards/batches.py), this
    shard's share run as a command a slot."""
    from fanout_cli.shards.batches import ordered_commands, plan_values
    from fanout_cli.sources.values import ListSource
    from fanout_cli.values import parse_shard

    assert config.sharding.shard is not None
    shard = parse_shard(config.sharding.shard)
    plan = plan_values(source, recorded_timings(config, resume), shard.total, slots, plan_shards)
    order, plans = config.sharding.run_order, []
    for planned in plan.shards:
        commands = ordered_commands([command for slot in planned for command in slot], order)
        durations = [command.estimate for command in commands]
        plans.append(ShardPlan(tuple(tuple(command.spec for command in slot) for slot in planned),
                               list_schedule(durations, plan.width), sum(durations)))  # fmt: skip
    mine = ordered_commands([command for slot in plan.shards[shard.index - 1] for command in slot],
                            order)  # fmt: skip
    specs = [command.spec for command in mine]
    if config.sharding.shuf is not None:
        from fanout_cli.shards.shuffled import shuffled

        specs = shuffled(specs, config.sharding.shuf)
    return Split(ListSource(source.name, specs), plans, plan.known, plan.width, None, plan)
