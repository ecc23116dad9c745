"""The human format's table at the end of a run on a terminal: one row a task,
capped to the screen's height (failures kept first), each row cut to its width."""

from __future__ import annotations

import itertools
import os
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fanout_cli.models import RunReport, TaskStatus
from fanout_cli.render.console import Console
from fanout_cli.render.lines import display_path, format_seconds, status_label, verdict_line

TABLE_ID_CELLS = 40  # wider ids are cut in the table's id column


@dataclass(frozen=True)
class TableRow:
    status: str
    task_id: str
    duration_ms: int | None  # None: never started
    attempts: int
    summary: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TableRow:
        attempts = int(row.get("attempts") or 0)
        duration = row.get("duration_ms")
        return cls(
            status=str(row.get("status")),
            task_id=str(row.get("task_id")),
            duration_ms=int(duration) if attempts and duration is not None else None,
            attempts=attempts,
            summary=str(row.get("summary") or ""),
        )


@dataclass(frozen=True)
class TableSelection:
    rows: tuple[TableRow, ...]
    hidden: int  # rows not shown (the table's last line says so)


def _rank(status: object) -> int:
    """Which rows a capped table keeps first: failures, then cancelled, then successes."""
    if status == TaskStatus.SUCCESS:
        return 2
    return 1 if status == TaskStatus.CANCELLED else 0


def select_rows(rows: Iterable[Mapping[str, Any]], limit: int) -> TableSelection:
    """At most `limit` lines of table. Every row in input order when they fit; else
    failures first (then cancelled, then successes; each in input order) in `limit - 1`
    lines, and one line for the rest. One pass, holding at most 3 x `limit` rows: a run
    can have a million."""
    kept: tuple[list[tuple[int, TableRow]], ...] = ([], [], [])
    count = 0
    for row in rows:
        bucket = kept[_rank(row.get("status"))]
        if len(bucket) < limit:
            bucket.append((count, TableRow.from_row(row)))
        count += 1
    if count <= limit:
        in_order = sorted(itertools.chain(*kept), key=lambda item: item[0])
        return TableSelection(tuple(row for _, row in in_order), 0)
    shown = [row for bucket in kept for _, row in bucket][: max(limit - 1, 0)]
    return TableSelection(tuple(shown), count - len(shown))


def cell_width(text: str) -> int:
    """Terminal cells: wide (East Asian) characters take two, combining marks none."""
    return sum(
        0 if unicodedata.combining(char) else
        2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        for char in text
    )  # fmt: skip


def fit(text: str, cells: int) -> str:
    """`text` cut to `cells` terminal cells, ending in … when cut."""
    if cell_width(text) <= cells:
        return text
    kept, used = [], 0
    for char in text:
        width = cell_width(char)
        if used + width > cells - 1:
            break
        kept.append(char)
        used += width
    return "".join(kept) + "…" if cells > 0 else ""


def table_lines(selection: TableSelection, columns: int) -> list[tuple[str, str]]:
    """The rows as (status text, rest of the line), each line at most `columns` cells:
    status, id, duration, attempts when more than one, summary."""
    id_cells = min(max((cell_width(row.task_id) for row in selection.rows), default=0),
                   TABLE_ID_CELLS)  # fmt: skip
    lines = []
    for row in selection.rows:
        task_id = fit(row.task_id, id_cells)
        task_id += " " * (id_cells - cell_width(task_id))
        duration = "-" if row.duration_ms is None else format_seconds(row.duration_ms / 1000)
        tries = f" [{row.attempts} attempts]" if row.attempts > 1 else ""
        label = f"{row.status:<9}"
        summary = row.summary.replace("\t", " ")  # a tab's width is the terminal's choice
        rest = f" {task_id}  {duration:>6}{tries}  {summary}"
        if cell_width(label) >= columns:
            lines.append((fit(label, columns), ""))
        else:
            lines.append((label, fit(rest, columns - cell_width(label)).rstrip()))
    return lines


def screen_lines(text: str, columns: int) -> int:
    """How many terminal lines `text` takes once it wraps."""
    return max(-(-cell_width(text) // max(columns, 1)), 1)


def print_table(console: Console, report: RunReport, size: os.terminal_size) -> None:
    """The run, one row a task, capped to the screen's height, then the verdict line."""
    plain_verdict = verdict_line(report, Console(console.stream, color=False))
    more_in = display_path(report.manifest_path)
    longest_more = f"… {report.verdict.counts['tasks']} more in {more_in}"
    # Kept free: the blank line above the table, the verdict, the shell's next prompt.
    hint = report_hint(report.run_id)
    spare = 2 + screen_lines(plain_verdict, size.columns) + screen_lines(hint, size.columns)
    spare += screen_lines(longest_more, size.columns) - 1
    selection = select_rows(report.rows(), max(size.lines - spare, 2))
    console.line()
    for label, rest in table_lines(selection, size.columns - 1):  # some terminals wrap a full line
        console.line(status_label(console, label) + rest)
    if selection.hidden:
        console.line(f"… {selection.hidden} more in {more_in}")
    console.line(console.style(hint, "2"))
    console.line(verdict_line(report, console))


def report_hint(run_id: str) -> str:
    """Where a person who wants the picture of a run finds it."""
    return f"timeline of the slots, failures first: fanout report {run_id}"
