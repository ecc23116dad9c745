"""GNU parallel's input sources, and the records they make.

Each `:::` list, each `::::` file and each `-a FILE` (`-` is stdin) is one input source;
stdin is the source when no other is named. A task's record is one combination of them:
every combination, the last source varying fastest; a source after `:::+`/`::::+` is
linked to the one before (paired by position, the shortest deciding), `--link` links all
(a shorter one wraps). `--colsep` cuts each value into columns, `--header :` takes each
source's first value as its names. Combinations are made lazily, and the first source,
when it is a stream, stays one: the first task starts before its input ends."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from fanout_cli.errors import UsageError
from fanout_cli.sources.stdin import RecordReader

MARKERS = (":::", ":::+", "::::", "::::+")
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
            what = "values" if marker.startswith(":::") and len(marker) < 5 else "file names"
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
        return RecordReader(fd, self.plan.null_separated, source.path)

    @property
    def width(self) -> int | None:
        """Values in a record (None with --colsep and no header: known line by line)."""
        if self.names:
            return len(self.names)
        return None if self._colsep is not None else len(self.plan.sources)

    @property
    def streamed(self) -> RecordReader | None:
        return self._stream

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
        for name in names:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise UsageError(f"--header: column name {name!r} is not a name that "
                                 "{name} can use (letters, digits and _)")  # fmt: skip
            if names.count(name) > 1:
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
        for line, value in self._stream.all_lazily():
            yield from self._with_rest([(self._columns(value), f"{self._stream.name}:{line}")])

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
