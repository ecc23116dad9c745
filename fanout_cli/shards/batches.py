"""Per-value shards of a batched source: `--shard I/N -X` plans test by test, then runs
each slot's share as one command.

With -m or -X, a shard does not split the commands GNU parallel's rules would make (a
few long batches, whatever their values cost). It plans over the records, each as the
task it would make without -X (its id is the value, so a JUnit test name or a recorded
duration matches it; never seen: the median), on N x W slots with the shard planner,
and then makes each slot's records into one command: more only when the system's
argument limit, -s or -N (with -X, a cap on the values of a command) cuts it. -N alone
makes fixed groups a command takes as a whole: those stay tasks, planned as they are
(split.py). Without --shard, -m and -X batch exactly as GNU parallel does.

W, the commands a shard runs at once, is one a -j slot, as the user asked: a CI
machine's cores are paid for by the minute, whether they idle or not. A command pays
its program's start-up once (timings.py learns it per program; 0 when unknown), so a
command's estimate is that start-up plus its values'; W stops short of -j only where
one more command would shorten the slowest shard by less than 5 % (a shard of a few
values, or one long test that no split shortens), since it would then cost a start-up
of CPU for nothing. Every machine with the same list and timings computes the same W
and the same plan."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

from fanout_cli.models import TaskSpec

GAIN = 0.05  # the least share of the slowest shard one more command must save

if TYPE_CHECKING:
    from fanout_cli.replacements import Args
    from fanout_cli.sources.inputs import ArgumentSource
    from fanout_cli.sources.values import ValueTasks
    from fanout_cli.timings import Timings


class Planned(Protocol):  # split.ShardPlan, which this module cannot import
    @property
    def slots(self) -> tuple[tuple[TaskSpec, ...], ...]: ...


Planner = Callable[[Sequence[TaskSpec], Mapping[str, float], int, int], Sequence[Planned]]


@dataclass(frozen=True)
class Command:
    """One command of a per-value plan: the task it runs and the values it holds."""

    spec: TaskSpec
    units: tuple[TaskSpec, ...]  # its values, each as the task it would make alone
    estimate: float  # seconds: its program's start-up and its values' estimates
    failed: bool  # one of its values failed in its latest recorded run


@dataclass(frozen=True)
class ValuePlan:
    """Every shard's commands, by slot; and what they were planned from."""

    shards: tuple[tuple[tuple[Command, ...], ...], ...]  # shard -> slot -> commands
    estimates: Mapping[str, float]  # each value's estimate, by its task id
    units: tuple[TaskSpec, ...]  # every value, as the task it would make alone
    known: int  # values with recorded durations
    width: int  # W: the slots each shard's commands were planned on
    startup: float  # seconds a command was planned to pay before its first value

    def values(self, shard: int) -> int:
        """How many values shard `shard` (1-based) runs."""
        return sum(len(command.units) for command in self.commands(shard))

    def commands(self, shard: int) -> list[Command]:
        """Shard `shard`'s (1-based) commands, slot by slot."""
        return [command for slot in self.shards[shard - 1] for command in slot]

    def shard_of(self) -> dict[int, int]:
        """Each value's shard (1-based), by its seq."""
        return {unit.seq: number for number in range(1, len(self.shards) + 1)
                for command in self.commands(number) for unit in command.units}  # fmt: skip


def per_value(source: object) -> TypeGuard[ArgumentSource]:
    """Whether a shard of this source is planned value by value (-m or -X)."""
    from fanout_cli.sources.inputs import ArgumentSource

    return isinstance(source, ArgumentSource) and source.batching.mode is not None


def plan_values(
    source: ArgumentSource, timings: Timings, total: int, slots: int, planner: Planner
) -> ValuePlan:
    """The `total` shards of the source's values, each run as at most `slots` commands at
    once (reads the whole input)."""
    from fanout_cli.timings import program_of

    pairs = source.unbatched()
    units = [spec for spec, _ in pairs]
    estimates = timings.estimates(units, startup=False)
    known = sum(1 for spec in units if timings.known(spec.task_id) is not None)
    program = program_of(units[0].command) if units else ""
    startup = timings.startup_estimate(program) or 0.0
    width = commands_per_shard(units, estimates, total, slots, startup, planner)
    planned = planner(units, estimates, total, width)
    records = [record for _, record in pairs]
    batches = [[source.batched([records[spec.seq - 1] for spec in slot]) for slot in plan.slots]
               for plan in planned]  # fmt: skip
    count = sum(len(made) for shard in batches for made in shard)
    tasks = replace(source.tasks, total=count)  # {##}: every shard's commands, {#} one of them
    shards, seq, costs = [], 0, (estimates, startup, timings)
    for plan, made in zip(planned, batches, strict=True):
        shard = []
        for slot, commands in zip(plan.slots, made, strict=True):
            shard.append(tuple(_commands(tasks, commands, list(slot), seq, costs)))
            seq += len(commands)
        shards.append(tuple(shard))
    return ValuePlan(tuple(shards), estimates, tuple(units), known, width, startup)


def commands_per_shard(
    units: Sequence[TaskSpec], estimates: Mapping[str, float], total: int, slots: int,
    startup: float, planner: Planner,
) -> int:  # fmt: skip
    """W: one command a shard, and one more while it shortens the slowest shard by at
    least GAIN; at most `slots`."""
    width = 1
    slowest = _slowest(planner(units, estimates, total, 1), estimates, startup)
    for more in range(2, slots + 1):
        span = _slowest(planner(units, estimates, total, more), estimates, startup)
        if span > slowest * (1 - GAIN):
            break
        width, slowest = more, span
    return width


def _slowest(plans: Sequence[Planned], estimates: Mapping[str, float], startup: float) -> float:
    """The longest slot of any shard: its start-up and its values (an empty slot runs
    nothing)."""
    return max((startup + sum(estimates[spec.task_id] for spec in slot)
                for plan in plans for slot in plan.slots if slot), default=0.0)  # fmt: skip


def _commands(
    tasks: ValueTasks, batches: list[tuple[Args, str]], chosen: list[TaskSpec], seq: int,
    costs: tuple[Mapping[str, float], float, Timings],
) -> list[Command]:  # fmt: skip
    """One slot's batches of values as commands, numbered on from `seq`."""
    estimates, startup, timings = costs
    made, start = [], 0
    for args, origin in batches:
        members = tuple(chosen[start : start + len(args.records)])
        start += len(args.records)
        seq += 1
        estimate = startup + sum(estimates[spec.task_id] for spec in members)
        failed = any(timings.failed(spec.task_id) for spec in members)
        made.append(Command(tasks.spec(seq, args, origin), members, estimate, failed))
    return made


def ordered_commands(commands: Sequence[Command], order: str) -> list[Command]:
    """A shard's commands in the order it starts them: `input` by number, `failed-first`
    those holding a value that failed first, else (and within each) longest first."""
    if order == "input":
        return sorted(commands, key=lambda command: command.spec.seq)
    return sorted(commands, key=lambda command: (order == "failed-first" and not command.failed,
                                                 -command.estimate, command.spec.seq))  # fmt: skip


def plan_tasks(commands: Sequence[Command]) -> list[dict[str, Any]]:
    """The plan record's "tasks": each command's number and its values' keys (the key of
    the task each value would make alone, as the record's "units" name them)."""
    return [{"seq": command.spec.seq, "units": [unit.key for unit in command.units]}
            for command in sorted(commands, key=lambda command: command.spec.seq)]  # fmt: skip
