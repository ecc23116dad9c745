"""The tasks that input sources make (`:::`, `::::`, `-a`, stdin): one a record, or,
with -m, -X or -N, one a batch of records.

Made lazily: a 1000 x 1000 combination costs no more memory than a 10 x 10 one, and a
streamed first source (stdin, a FIFO) is read a chunk at a time, only when the runner
asks for the next task."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

from fanout_cli.models import TaskSpec
from fanout_cli.replacements import Args
from fanout_cli.sources.batch import NO_BATCHING, Batch, Batcher, Batching, Record, system_limit
from fanout_cli.sources.inputs import Inputs
from fanout_cli.sources.values import ValueTasks

Item = tuple[int, Args, str]  # seq, the task's values, where they came from


class ArgumentSource:
    """Tasks from input sources, through a command template or agent call."""

    def __init__(self, tasks: ValueTasks, inputs: Inputs, batching: Batching = NO_BATCHING,
                 jobs: int = 1) -> None:  # fmt: skip
        self.inputs = inputs
        self.batching = batching
        self.jobs = jobs
        labels = {source.label for source in inputs.plan.sources}
        self.name = labels.pop() if len(labels) == 1 else "inputs"
        self._items: list[Item] | None = None
        self._needs_total = (tasks.template is not None and tasks.template.uses_total) or (
            tasks.agent is not None and "{##}" in tasks.agent.prompt
        )
        if inputs.total is not None and not batching.active:
            tasks = replace(tasks, total=inputs.total)
        self.tasks = tasks

    @property
    def total(self) -> int | None:
        """How many tasks (None for a stream, or batches not yet made)."""
        if self._needs_total:  # {##}: read and count every task first
            return len(self._materialized())
        return self.tasks.total

    def _materialized(self) -> list[Item]:
        if self._items is None:
            self._items = list(self._numbered(self.inputs.records(), self._batcher(self.tasks)))
            self.tasks = replace(self.tasks, total=len(self._items))
        return self._items

    def with_jobs(self, jobs: int) -> ArgumentSource:
        """The source, its last batches spread over `jobs` slots (set before reading)."""
        assert self._items is None
        self.jobs = jobs
        return self

    def _batcher(self, tasks: ValueTasks) -> Batcher | None:
        if not self.batching.active:
            return None
        template = tasks.template
        if template is None:
            return Batcher(self.batching, self.jobs, _line_size, _line_increment,
                           system_limit(True))  # fmt: skip
        return Batcher(self.batching, self.jobs, template.size, template.increment,
                       system_limit(template.shell))  # fmt: skip

    def _numbered(self, records: Iterator[Record], batcher: Batcher | None) -> Iterator[Item]:
        seq = 0
        for record in records:
            for args, origin in _ready([record], batcher, self.batching):
                seq += 1
                yield seq, args, origin
        if batcher is not None:
            for batch in batcher.finish():
                seq += 1
                yield seq, *_as_args(batch, self.batching)

    def items(self) -> Iterator[Item]:
        if self._needs_total:
            return iter(self._materialized())
        return self._numbered(self.inputs.records(), self._batcher(self.tasks))

    def specs(self) -> Iterator[TaskSpec]:
        for seq, args, origin in self.items():
            yield self.tasks.spec(seq, args, origin)

    def commands(self, jobs: int) -> Iterator[tuple[str, str | None]]:
        """For --dry-run: the commands alone, without building whole tasks (a million
        lines must print in seconds). `{%}` gets the slots 1..jobs in turn."""
        for seq, args, _ in self.items():
            yield self.tasks.display(seq, args, (seq - 1) % jobs + 1), None

    async def stream(self) -> AsyncIterator[TaskSpec]:
        reader = self.inputs.streamed
        if reader is None or self._needs_total:
            for spec in self.specs():
                yield spec
            return
        batcher, seq = self._batcher(self.tasks), 0
        async for values in reader.chunks():
            for line, value in values:
                for args, origin in _ready(self.inputs.with_rest(line, value), batcher,
                                           self.batching):  # fmt: skip
                    seq += 1
                    yield self.tasks.spec(seq, args, origin)
        if batcher is not None:
            for batch in batcher.finish():
                seq += 1
                yield self.tasks.spec(seq, *_as_args(batch, self.batching))


def _ready(
    records: Iterator[Record] | list[Record], batcher: Batcher | None, batching: Batching
) -> Iterator[tuple[Args, str]]:
    """The tasks some records make ready: each record, or the batches they fill."""
    for record in records:
        if batcher is None:
            yield Args((record[0],)), record[1]
        else:
            for batch in batcher.feed(record):
                yield _as_args(batch, batching)


def _as_args(batch: Batch, batching: Batching) -> tuple[Args, str]:
    records = tuple(values for values, _ in batch)
    return Args(records, flat=batching.max_args is not None and batching.mode is None), batch[0][1]


def _line_size(args: Args) -> tuple[int, int]:
    """Values that are themselves commands (no template): one line of them."""
    text = " ".join(args.values)
    return len(text), len(text.encode("utf-8", "surrogateescape"))


def _line_increment(args: Args) -> tuple[int, int]:
    size = _line_size(args)
    return size[0] + 1, size[1] + 1
