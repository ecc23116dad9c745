"""--shuf's order: the tasks in input order (by seq), shuffled by
`random.Random(seed).shuffle`. The same seed and the same tasks give the same order on
every machine: CPython's Mersenne Twister seeded with an int, and `shuffle`'s
Fisher-Yates over `_randbelow`, are unchanged since Python 3.2 (tests/test_shuf.py pins
an order). A task keeps its number ({#}, its id, the joblog's Seq): GNU parallel numbers
the shuffled tasks as they start instead.

A source that streams (stdin, ::: lists) is read to its end first, as GNU parallel does;
its tasks are kept as their values and origins (1,000,000 lines of stdin: about 250 MB)
and each task is made as it starts. With -m/-X the commands are shuffled, not the
values inside them (GNU parallel shuffles the values, then packs them)."""

from __future__ import annotations

import random
from array import array
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from fanout_cli.models import TaskSpec
from fanout_cli.replacements import Args

if TYPE_CHECKING:
    from fanout_cli.sources import Source
    from fanout_cli.sources.inputs import ArgumentSource


def shuffled(specs: Sequence[TaskSpec], seed: int) -> list[TaskSpec]:
    """The tasks in input order, shuffled with `seed`: the same order for the same tasks,
    whatever order they come in."""
    tasks = sorted(specs, key=lambda spec: spec.seq)
    random.Random(seed).shuffle(tasks)
    return tasks


def shuffled_source(source: Source, seed: int) -> Source:
    """`source`'s tasks in the shuffled order. A source of values is read whole and
    keeps its values; another is read as tasks."""
    from fanout_cli.sources.inputs import ArgumentSource
    from fanout_cli.sources.values import ListSource

    if isinstance(source, ArgumentSource):
        return ShuffledValues(source, seed)
    return ListSource(source.name, shuffled(list(source.specs()), seed))


class ShuffledValues:
    """The tasks of a source of values in a shuffled order. Kept small: each task's
    values and origin (its number is its place in the input), and the order as an
    array of places; a task is made from them as it starts."""

    def __init__(self, source: ArgumentSource, seed: int) -> None:
        self.name = source.name
        self._records: list[tuple[tuple[str, ...], ...]] = []
        self._flat = bytearray()  # -N: the batch's values are numbered as one
        self._origins: list[str] = []
        for _, args, origin in source.items():  # numbered 1, 2, ... in input order
            self._records.append(args.records)
            self._flat.append(args.flat)
            self._origins.append(origin)
        # Shuffling the places shuffles as the tasks themselves would be (the swaps
        # depend only on the count): the order of `shuffled` for the same seed.
        self._order = array("L", range(len(self._records)))
        random.Random(seed).shuffle(self._order)
        self._tasks = replace(source.tasks, total=len(self._records))  # {##}

    @property
    def total(self) -> int | None:
        return len(self._records)

    def _items(self) -> Iterator[tuple[int, Args, str]]:
        for place in self._order:
            args = Args(self._records[place], bool(self._flat[place]))
            yield place + 1, args, self._origins[place]

    def specs(self) -> Iterator[TaskSpec]:
        for seq, args, origin in self._items():
            yield self._tasks.spec(seq, args, origin)

    def commands(self, jobs: int) -> Iterator[tuple[str, str | None]]:
        """For --dry-run: `{%}` is the slot of the task's place in the run order."""
        for position, (seq, args, _) in enumerate(self._items()):
            yield self._tasks.display(seq, args, position % jobs + 1), None

    async def stream(self) -> AsyncIterator[TaskSpec]:
        for spec in self.specs():
            yield spec
