"""What a report draws, as data: the runs, their lanes and bars, their tasks. Built by
report.load from a run folder, drawn by report.svg and report.page; nothing here reads
or writes a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The statuses a bar can have: a task's five, and three that only a timeline shows.
REQUEUED = "requeued"  # ended by --memfree and run again under the same attempt number
RUNNING = "running"  # still running: the run is in progress
UNFINISHED = "unfinished"  # started, never ended: the run was killed
FAILED = ("failure", "timeout", "error")  # failures first, in this order


@dataclass(frozen=True)
class Files:
    """A task's files, as links relative to the report (None: it has none)."""

    details: str | None = None
    stdout: str | None = None
    stderr: str | None = None


@dataclass
class Bar:
    """One run of a task on one slot, from its start to its end: an attempt, or the part
    of one that --memfree cut short and ran again."""

    seq: int
    task_id: str
    attempt: int
    slot: int | None  # as the journal says; None in a journal older than slot numbers
    start: float  # epoch seconds
    end: float
    status: str
    exit_code: int | None = None
    reason: str = ""
    summary: str = ""
    last: bool = False  # the task's last attempt
    files: Files = field(default_factory=Files)
    # Agent calls: waits for the provider's pause or a rate limit, (start, end).
    pauses: tuple[tuple[float, float], ...] = ()
    outputs: tuple[object, object] | None = None  # its stdout and stderr names, if known

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class Task:
    """A task as it ended (its journal row)."""

    seq: int
    task_id: str
    status: str
    duration: float
    attempts: int
    exit_code: int | None
    summary: str
    files: Files
    shard: str | None = None


@dataclass
class Part:
    """One run folder's timeline: the run itself, or one shard of a merged run."""

    run_id: str
    label: str  # "" for a lone run; the shard ("2/4") or run id of a merged run's part
    status: str  # finished, interrupted, running, crashed
    bars: list[Bar]
    tasks: list[Task]
    slots: int  # lanes drawn: the run's -j, or the highest slot used
    sessions: list[tuple[float, float]]  # the run, then each --resume, (start, end)
    reconstructed: bool = False  # slots worked out from the times: an old journal
    started_at: float | None = None
    finished_at: float | None = None
    verdict: dict[str, Any] | None = None
    estimate: float | None = None  # --shard with --timings: the planned seconds
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def wall(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)


@dataclass
class Report:
    """A run as the report shows it."""

    run_id: str
    status: str
    argv: list[str]
    strategy: str
    verdict: dict[str, Any] | None  # the manifest's; None while it runs or after a crash
    counts: dict[str, int]
    parts: list[Part]
    started_at: float | None
    finished_at: float | None
    merged: bool = False
    notes: list[str] = field(default_factory=list)  # what could not be read, and why

    @property
    def bars(self) -> list[Bar]:
        return [bar for part in self.parts for bar in part.bars]

    @property
    def tasks(self) -> list[Task]:
        return [task for part in self.parts for task in part.tasks]

    @property
    def wall(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)
