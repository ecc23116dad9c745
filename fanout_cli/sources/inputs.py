"""GNU parallel's input sources, the records they make, and the tasks made of those.

Each `:::` list, each `::::` file and each `-a FILE` (`-` is stdin) is one input source;
stdin is the source when no other is named. A task's record is one combination of them:
every combination, the last source varying fastest; a source after `:::+`/`::::+` is
linked to the one before (paired by position, the shortest deciding), `--link` links all
(a shorter one wraps). `--colsep` cuts each value into columns, `--header :` takes each
source's first value as its names. Combinations are made lazily, and the first source,
when it is a stream, stays one: the first task starts before its input ends. A task is
made of one record, or (-m, -X, -N: sources/batch.py) of a batch of them."""

from __future__ import annotations

import itertools
import os
import re
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from fanout_cli.errors import UsageError
from fanout_cli.replacements import Args
from fanout_cli.sources.stdin import RecordReader

if TYPE_CHECKING:
    from fanout_cli.models import TaskSpec
    from fanout_cli.sources.batch import Batch, Batcher, Record
    from fanout_cli.sources.values import ValueTasks

MARKERS = (":::", ":::+", "::::", "::::+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what {name} can spell
Entry = tuple[tuple[str, ...], str]  # a source's value(s) as columns, and where it came from


@dataclass(frozen=True)
class InputList:
    """One input source: the values after `:::`, or a file's values (`::::`, `-a`)."""

    values: tuple[str, ...] | None = None
    path: str | None = None  # "-": stdin
    linked: bool = False  # :::+ / ::::+: paired with the source before

    @property
    def label(self) -> str:
        if self.path is None:
            return ":::"
        return "stdin" if self.path == "-" else self.path


@dataclass(frozen=True)
class Batching:
    mode: Literal["m", "X"] | None = None
    max_args: int | None = None  # -N
    max_chars: int | None = None  # -s

    @property
    def active(self) -> bool:
        return self.mode is not None or self.max_args is not None

    @property
    def limits(self) -> tuple[str | None, int | None, int | None]:
        return self.mode, self.max_args, self.max_chars


NO_BATCHING = Batching()


def split_sources(words: list[str]) -> tuple[tuple[str, ...], tuple[InputList, ...]]:
    """`echo {1} {2} ::: a b :::+ 1 2` -> the command and its input sources."""
    starts = [index for index, word in enumerate(words) if word in MARKERS]
    if not starts:
        return tuple(words), ()
    sources: list[InputList] = []
    for number, start in enumerate(starts):
        marker = words[start]
        end = starts[number + 1] if number + 1 < len(starts) else len(words)
        given = words[start + 1 : end]
        if not given:
            what = "file names" if marker.startswith("::::") else "values"
            raise UsageError(f"{marker} (source {len(sources) + 1}) has no {what} after it")
        linked = marker.endswith("+")
        if marker.startswith("::::"):
            sources += [InputList(path=path, linked=linked and index == 0)
                        for index, path in enumerate(given)]  # fmt: skip
        else:
            sources.append(InputList(values=tuple(given), linked=linked))
    if sources[0].linked:
        raise UsageError(f"{words[starts[0]]} links to the source before it, and there is none")
    return tuple(words[: starts[0]]), tuple(sources)


@dataclass(frozen=True)
class InputPlan:
    """How the sources make records: linked, cut into columns, named."""

    sources: tuple[InputList, ...]
    link: bool = False
    colsep: str | None = None
    header: bool = False
    null_separated: bool = False


class Inputs:
    """The records of a run's input sources. The first source (when it is not linked)
    is read as a stream; the others are read whole first, since every value of theirs
    goes with each of the first's."""

    def __init__(self, plan: InputPlan) -> None:
        self.plan = plan
        self._colsep = None if plan.colsep is None else re.compile(plan.colsep)
        stdin_users = [source for source in plan.sources if source.path == "-"]
        if len(stdin_users) > 1:
            raise UsageError("stdin (-) is named as an input source twice")
        self._readers = [self._reader(source) for source in plan.sources]
        self.names = self._names()
        groups = self._groups()
        self._stream = self._readers[0] if len(groups[0]) == 1 and plan.sources[0].path else None
        first = None if self._stream is not None else self._group_entries(groups[0])
        self._first = first
        self._rest = [self._group_entries(group) for group in groups[1:]]
        rest_size = 1
        for entries in self._rest:
            rest_size *= len(entries)
        self._rest_size = rest_size
        self.total = None if first is None else len(first) * rest_size

    def _reader(self, source: InputList) -> RecordReader | None:
        if source.path is None:
            return None
        if source.path == "-":
            return RecordReader(0, self.plan.null_separated, "stdin")
        try:
            fd = os.open(source.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise UsageError(f"{source.path}: cannot read: {exc.strerror}") from None
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise UsageError(f"{source.path}: is a folder, not a file of values")
        return RecordReader(fd, self.plan.null_separated, source.path, owns_fd=True)

    @property
    def width(self) -> int | None:
        """Values in a record (None with --colsep and no header: known line by line)."""
        if self.names:
            return len(self.names)
        return None if self._colsep is not None else len(self.plan.sources)

    @property
    def streamed(self) -> RecordReader | None:
        return self._stream

    @property
    def one_stream(self) -> bool:
        """A streamed source alone, not cut into columns: each value is a record."""
        return self._stream is not None and not self._rest and self._colsep is None

    def _columns(self, value: str) -> tuple[str, ...]:
        return (value,) if self._colsep is None else tuple(self._colsep.split(value))

    def _entries(self, index: int) -> list[Entry]:
        """Every value of source `index` (read whole), its header taken off."""
        source, reader = self.plan.sources[index], self._readers[index]
        if reader is None:
            assert source.values is not None
            given = list(enumerate(source.values, start=1))[1 if self.plan.header else 0 :]
            return [(self._columns(value), f":::{n}") for n, value in given]
        return [(self._columns(value), f"{reader.name}:{line}") for line, value in reader.all()]

    def _names(self) -> tuple[str, ...]:
        if not self.plan.header:
            return ()
        names: list[str] = []
        for source, reader in zip(self.plan.sources, self._readers, strict=True):
            first = source.values[0] if reader is None and source.values else None
            if reader is not None:
                first = reader.first()
            if first is None:
                raise UsageError(f"--header: {source.label} is empty, so it has no header")
            names += self._columns(first)
        for name in names:  # a name {name} cannot spell ("first name") is only unusable
            if _NAME.fullmatch(name) and names.count(name) > 1:
                raise UsageError(f"--header: the column name {name!r} appears twice")
        return tuple(names)

    def _groups(self) -> list[list[int]]:
        if self.plan.link:
            return [list(range(len(self.plan.sources)))]
        groups: list[list[int]] = []
        for index, source in enumerate(self.plan.sources):
            if source.linked:
                groups[-1].append(index)
            else:
                groups.append([index])
        return groups

    def _group_entries(self, group: list[int]) -> list[Entry]:
        """A group's entries: one source's, or its linked sources' paired by position
        (--link: the longest decides and shorter ones wrap; :::+: the shortest)."""
        lists = [self._entries(index) for index in group]
        if len(lists) == 1:
            return lists[0]
        length = max(map(len, lists)) if self.plan.link else min(map(len, lists))
        if any(not entries for entries in lists):
            return []
        return [_joined([entries[n % len(entries)] for entries in lists]) for n in range(length)]

    def records(self) -> Iterator[Entry]:
        """Every record (reading a streamed first source with blocking reads)."""
        if self._stream is None:
            assert self._first is not None
            yield from self._with_rest(self._first)
            return
        name = self._stream.name
        if self.one_stream:  # the fast way
            for line, value in self._stream.all_lazily():
                yield (value,), f"{name}:{line}"
            return
        for line, value in self._stream.all_lazily():
            yield from self._with_rest([(self._columns(value), f"{name}:{line}")])

    def with_rest(self, line: int, value: str) -> Iterator[Entry]:
        """The records one value of the streamed first source makes."""
        assert self._stream is not None
        return self._with_rest([(self._columns(value), f"{self._stream.name}:{line}")])

    def _with_rest(self, heads: list[Entry]) -> Iterator[Entry]:
        if not self._rest:
            yield from heads
            return
        for head in heads:
            for tail in itertools.product(*self._rest):
                yield _joined([head, *tail])


def _joined(entries: list[Entry]) -> Entry:
    values = tuple(value for columns, _ in entries for value in columns)
    return values, "+".join(origin for _, origin in entries)


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

    def _batcher(self, tasks: ValueTasks, jobs: int | None = None) -> Batcher | None:
        if not self.batching.active:
            return None
        from fanout_cli.sources.batch import Batcher, system_limit

        template, jobs = tasks.template, self.jobs if jobs is None else jobs
        if template is None:
            return Batcher(self.batching.limits, jobs, _line_size, _line_increment,
                           system_limit(True))  # fmt: skip
        return Batcher(self.batching.limits, jobs, template.size, template.increment,
                       system_limit(template.shell))  # fmt: skip

    def unbatched(self) -> list[tuple[TaskSpec, Record]]:
        """Every record, and the task it would make alone (as without -m/-X/-N): what a
        shard plans value by value (shards/batches.py)."""
        records = list(self.inputs.records())
        tasks = replace(self.tasks, total=len(records))
        return [(tasks.spec(seq, Args((record[0],)), record[1]), record)
                for seq, record in enumerate(records, start=1)]  # fmt: skip

    def batched(self, records: list[Record]) -> list[tuple[Args, str]]:
        """These records in as few commands as the limits allow (the system's, -s, -N),
        in order, the last not spread over the slots."""
        batcher = self._batcher(self.tasks, jobs=1)
        assert batcher is not None
        ready = list(_ready(records, batcher, self.batching))
        return ready + [_as_args(batch, self.batching) for batch in batcher.finish()]

    def _numbered(self, records: Iterator[Record], batcher: Batcher | None) -> Iterator[Item]:
        if batcher is None:
            for seq, (values, origin) in enumerate(records, start=1):
                yield seq, Args((values,)), origin
            return
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
        plain = batcher is None and self.inputs.one_stream
        async for values in reader.chunks():
            for line, value in values:
                if plain:  # one stream of values, one task each: the fast way
                    seq += 1
                    yield self.tasks.spec(seq, Args(((value,),)), f"{reader.name}:{line}")
                    continue
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
    size = len(" ".join(args.values).encode("utf-8", "surrogateescape"))
    return size, size


def _line_increment(args: Args) -> tuple[int, int]:
    size = _line_size(args)
    return size[0] + 1, size[1] + 1
