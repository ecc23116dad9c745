"""What the commands other than `run` return: frozen records, printed by fanout_cli.render.

Commands build them (fanout_cli.commands) and renderers read them; this module imports
neither, so imports point one way: commands -> render -> results."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fanout_cli.aop.reader import RunInfo, open_file
from fanout_cli.errors import FanoutError
from fanout_cli.models import RunReport
from fanout_cli.values import Shard

# --- fanout merge ---------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRun:
    """One ended run being merged, with its task rows (each carrying `run_dir`)."""

    path: Path  # absolute
    status: str  # finished or interrupted
    started_at: float
    finished_at: float
    options: Mapping[str, Any]
    shard: Shard | None
    rows: list[dict[str, Any]]
    # The manifest's own stamps: back and forth through a float may lose a millisecond.
    stamps: tuple[str | None, str | None] = (None, None)

    @property
    def run_id(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class MergeResult:
    """The merged run (its folder written), the runs it came from by shard, its task rows."""

    report: RunReport
    sources: tuple[SourceRun, ...]
    rows: tuple[dict[str, Any], ...]

    @property
    def passed(self) -> bool:
        return self.report.verdict.passed


# --- fanout runs, show, clean ---------------------------------------------------------


@dataclass(frozen=True)
class RunView:
    """`fanout show RUN`: the run and its task rows."""

    info: RunInfo
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class TaskOutput:
    """One of a task's output files, as its details file names it: a plain name of
    the run folder, opened through aop (never through a link planted there)."""

    stream: str  # stdout or stderr
    size: object  # the byte count the details file records
    folder: Path
    name: str
    lines: object = None  # the line count the details file records (older runs: none)

    @property
    def path(self) -> Path:
        return self.folder / self.name

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes as they are; nothing when it is gone."""
        try:
            handle = open_file(self.folder, self.name)
        except FileNotFoundError:
            return
        with handle:
            while chunk := handle.read(1 << 16):
                yield chunk


@dataclass(frozen=True)
class TaskView:
    """`fanout show RUN TASK`: the task's details (its manifest row when the details
    file cannot be read), then its output files."""

    record: Mapping[str, Any]
    outputs: tuple[TaskOutput, ...]
    details: Path | None = None  # the details file's path, when it was read


@dataclass(frozen=True)
class CleanResult:
    """What `fanout clean` removed (or, with --dry-run, would remove) and kept."""

    folder: Path
    removed: tuple[RunInfo, ...]
    busy: tuple[RunInfo, ...]  # still held by a running fanout: never removed
    freed_bytes: int
    dry_run: bool
    # Why removing stopped part way (the runs before it are gone); the caller raises it.
    error: FanoutError | OSError | None = None
