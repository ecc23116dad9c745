"""A run's task rows one at a time, in input order (by seq), for commands that go
through every task of a run of any size (`fanout cat`): memory does not grow with the
task count, or by a few bytes a task.

reader.task_rows returns the rows as one list. Here:
- an ended run's manifest is read line by line: its task list is written one compact
  row a line, in input order (see documents.json_with_tasks); a manifest reshaped by
  hand is read whole instead;
- a merged run's manifest lists its tasks by shard: the rows are read once to note
  each one's seq and where its line starts, then in seq order (ties in the merge's
  order: runs merged that are not shards of one split may share seqs);
- the journal of a run still going, or crashed, is read once to note where the last
  `task_ended` line of each seq starts (eight bytes a task), then row by row."""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from fanout_cli.aop import JOURNAL, MANIFEST, RunFolder
from fanout_cli.aop.checks import checked_row
from fanout_cli.aop.documents import TASKS_MARKER, parse_json
from fanout_cli.aop.files import RunFolderError
from fanout_cli.aop.reader import open_file, read_ended_at, read_manifest_header, task_rows

_LIST_START = TASKS_MARKER.lstrip(b"\n") + b"\n"
_LIST_END = b"]"
# How far past the highest seq so far a task_ended event's seq may be and still be
# noted in the dense index; one further (a hand-made or hostile journal) goes to a
# dict, so that no seq can make the index grow beyond what the journal holds.
_DENSE_GAP = 1 << 16
_OFFSET_BITS = 48  # a merged manifest's row offsets, packed below the seq


def rows_in_input_order(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The run's task rows (those reader.task_rows gives) in seq order, one at a time.
    RunFolderError when a row is not a task row (raised when that row is reached)."""
    header = read_manifest_header(run_dir)
    # A manifest's status is running (still going, or crashed) or one that ends a run;
    # none (empty: a power cut after its rename) is read as reader.task_rows does.
    if header.get("status") in (None, "running"):
        return _journal_rows(run_dir)
    if "merged_from" in header:
        return _merged_rows(run_dir)
    return _manifest_rows(run_dir)


class _NotOneRowALine(Exception):
    """A manifest whose task list is not laid out as fanout writes it."""


def _manifest_rows(run_dir: Path) -> Iterator[dict[str, Any]]:
    with open_file(run_dir, MANIFEST) as handle:
        try:
            yield from (row for _, row in _row_lines(handle, run_dir))
        except _NotOneRowALine:  # raised before the first row
            yield from task_rows(run_dir)


def _merged_rows(run_dir: Path) -> Iterator[dict[str, Any]]:
    with open_file(run_dir, MANIFEST) as handle:
        try:
            lines = _row_lines(handle, run_dir)
            keys = [row["seq"] << _OFFSET_BITS | start for start, row in lines]
        except _NotOneRowALine:
            yield from sorted(task_rows(run_dir), key=lambda row: int(row["seq"]))
            return
        keys.sort()
        where = str(RunFolder(run_dir).manifest)
        mask = (1 << _OFFSET_BITS) - 1
        for key in keys:
            handle.seek(key & mask)
            yield checked_row(parse_json(handle.readline().strip().removesuffix(b",")), where)


def _row_lines(handle: IO[bytes], run_dir: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(offset of its line, row) for each row of the manifest's task list, checked.
    _NotOneRowALine before the first when the list is not one row a line."""
    where = str(RunFolder(run_dir).manifest)
    line = b""
    while line != _LIST_START:
        line = handle.readline()
        if not line:
            raise _NotOneRowALine
    number = 0
    while line := handle.readline():
        number += 1
        text = line.strip()
        if text == _LIST_END:
            return
        try:
            row = parse_json(text.removesuffix(b","))
        except ValueError:
            if number == 1:  # a row over several lines: reshaped by hand
                raise _NotOneRowALine from None
            raise RunFolderError(f"{where}: task row {number} is not one JSON line") from None
        yield handle.tell() - len(line), checked_row(row, where)
    raise RunFolderError(f"{where}: not a fanout manifest: the task list is cut short")


def _journal_rows(run_dir: Path) -> Iterator[dict[str, Any]]:
    index = _SeqIndex()
    for event, offset in read_ended_at(run_dir):  # checked there: seq is a whole number
        index.add(event["seq"], offset)
    where = str(RunFolder(run_dir).journal)
    with open_file(run_dir, JOURNAL) as journal:
        for offset in index.offsets():
            journal.seek(offset)
            yield checked_row(parse_json(journal.readline()), where)


class _SeqIndex:
    """The offset of the last event noted for each seq, in seq order: an array for
    seqs 1, 2, 3, ... as a run numbers them, a dict for any other."""

    def __init__(self) -> None:
        self._dense = array("q")
        self._sparse: dict[int, int] = {}

    def add(self, seq: int, offset: int) -> None:
        # A seq noted in the dict stays there, so that no seq is in both.
        if seq in self._sparse or not 1 <= seq <= len(self._dense) + _DENSE_GAP:
            self._sparse[seq] = offset
            return
        if seq > len(self._dense):
            self._dense.extend([-1] * (seq - len(self._dense)))
        self._dense[seq - 1] = offset

    def offsets(self) -> Iterator[int]:
        dense = ((seq, offset) for seq, offset in enumerate(self._dense, 1) if offset >= 0)
        return (offset for _, offset in heapq.merge(dense, sorted(self._sparse.items())))
