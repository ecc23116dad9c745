"""One pass over a run's journal: every attempt as a bar, every ended task as a row.

The journal says when each attempt started and on which slot (`task_started`), when
--memfree cut one short (`task_requeued`), how each task ended (`task_ended`: status,
duration from its first start to its last end, attempts) and when the run, or a
--resume of it, ended (`run_ended`). A task with one attempt is drawn from the journal
alone; a task tried again, or an agent call, from its details file as well, which has
each attempt's times (report.load). A line that is not an event is left out and noted
with its line number; a torn last line (a crash mid-write) is left out silently, as
every reader of the journal does."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fanout_cli.aop import JOURNAL, RunFolder
from fanout_cli.aop.checks import ended_event_problem
from fanout_cli.aop.documents import parse_json, parse_time
from fanout_cli.aop.reader import open_file
from fanout_cli.report.model import REQUEUED, RUNNING, UNFINISHED, Bar, Files, Task

NOTES_PER_FILE = 5  # problems named one by one; the rest are counted


@dataclass(frozen=True)
class _Start:
    time: float
    task_id: str
    attempt: int
    slot: int | None


def task_of(row: dict[str, Any]) -> Task:
    """A task as its row (the journal's task_ended, the manifest's) says it ended."""
    files = Files(details=row.get("details_file"), stdout=row.get("stdout_file"))
    duration = row.get("duration_ms") or 0
    return Task(int(row["seq"]), str(row["task_id"]), str(row["status"]), duration / 1000,
                int(row.get("attempts") or 0), row.get("exit_code"),
                str(row.get("summary") or ""), files)  # fmt: skip


class Journal:
    """What one run folder's journal holds, read once (`read`)."""

    def __init__(self, run_dir: Path, running: bool) -> None:
        self.run_dir = run_dir
        self.where = str(RunFolder(run_dir).journal)
        self.running = running  # a live fanout holds the run: open attempts still run
        self.bars: list[Bar] = []
        self.tasks: dict[int, Task] = {}  # the last end of each seq
        self.rows: dict[int, dict[str, Any]] = {}
        self.retried: dict[int, list[Bar]] = {}  # bars of a task's last end, to refine
        self.sessions: list[tuple[float, float]] = []
        self.options: dict[str, Any] = {}
        self.problems: list[str] = []
        self._open: dict[int, list[_Start]] = {}
        self._session: float | None = None
        self._last: float | None = None
        self._bad = 0

    def read(self) -> Journal:
        try:
            handle = open_file(self.run_dir, JOURNAL)
        except FileNotFoundError:
            self.problems.append(f"{self.where}: no journal: nothing to draw")
            return self
        with handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith(b"\n"):
                    break  # torn: the writer died mid-line (or is writing it now)
                self._line(number, line)
        self._close_open()
        if self._bad > NOTES_PER_FILE:
            self.problems.append(f"{self.where}: {self._bad - NOTES_PER_FILE} more lines left out")
        return self

    def _line(self, number: int, line: bytes) -> None:
        try:
            event = parse_json(line)
        except ValueError:
            return self._problem(number, "not a JSON event")
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            return self._problem(number, "not a journal event")
        stamp = parse_time(event.get("time"))
        if stamp is None:
            return self._problem(number, f"{event['event']}: no time")
        if self._session is None:  # the run's start, or a --resume's
            self._session = stamp
        try:
            problem = self._event(event, stamp)
        except (KeyError, TypeError, ValueError) as exc:
            problem = f"{event['event']}: {type(exc).__name__}: {exc}"
        if problem is not None:
            return self._problem(number, problem)
        self._last = stamp
        return None

    def _problem(self, number: int, what: str) -> None:
        self._bad += 1
        if self._bad <= NOTES_PER_FILE:
            self.problems.append(f"{self.where}:{number}: {what}; left out")

    def _event(self, event: dict[str, Any], stamp: float) -> str | None:
        kind = event["event"]
        if kind == "run_started":
            options = event.get("options")
            self.options = options if isinstance(options, dict) else {}
        elif kind == "task_started":
            slot = event.get("slot")
            start = _Start(stamp, str(event["task_id"]), int(event["attempt"]),
                           None if slot is None else int(slot))
            self._open.setdefault(int(event["seq"]), []).append(start)
        elif kind == "task_requeued":
            self._requeued(event, stamp)
        elif kind == "task_ended":
            problem = ended_event_problem(event)
            if problem is not None:
                return f"task_ended: {problem}"
            self._ended(event, stamp)
        elif kind == "run_ended":
            self.sessions.append((self._session or stamp, stamp))
            self._session = None
        return None

    def _requeued(self, event: dict[str, Any], stamp: float) -> None:
        seq = int(event["seq"])
        starts = self._open.get(seq)
        if not starts:
            return
        start = starts.pop()
        self.bars.append(Bar(seq, start.task_id, start.attempt, start.slot,
                             start.time, stamp, REQUEUED,
                             reason=str(event.get("reason") or "ended for memory")))  # fmt: skip

    def _ended(self, row: dict[str, Any], stamp: float) -> None:
        seq = int(row["seq"])
        starts = self._open.pop(seq, [])
        task = self.tasks[seq] = task_of(row)
        self.rows[seq] = row
        bars = []
        for index, start in enumerate(starts):
            last = index == len(starts) - 1
            if last:
                end = starts[0].time + task.duration if task.duration else stamp
                end = max(end, start.time)
            else:
                end = starts[index + 1].time  # refined from the details file
            bars.append(Bar(seq, task.task_id, start.attempt, start.slot, start.time, end,
                            task.status if last else "failure",
                            task.exit_code if last else None,
                            summary=task.summary if last else "", last=last,
                            files=task.files))  # fmt: skip
        self.bars.extend(bars)
        self.retried.pop(seq, None)
        if len(starts) > 1 or row.get("kind") == "agent":
            self.retried[seq] = bars

    def never_started(self, rows: list[dict[str, Any]]) -> None:
        """The manifest's tasks the journal has no end of: those a stop cancelled before
        they began (an ended run lists every task, begun or not)."""
        for row in rows:
            if int(row["seq"]) not in self.tasks:
                self.tasks[int(row["seq"])] = task_of(row)

    def _close_open(self) -> None:
        """Attempts that started and have no end: running, or cut off by a crash."""
        if self._session is not None:
            end = time.time() if self.running else (self._last or self._session)
            self.sessions.append((self._session, end))
        for seq, starts in self._open.items():
            for start in starts:
                end = time.time() if self.running else (self._last or start.time)
                status = RUNNING if self.running else UNFINISHED
                self.bars.append(Bar(seq, start.task_id, start.attempt, start.slot, start.time,
                                     max(end, start.time), status))  # fmt: skip
