"""What the commands other than `run` return: frozen records, printed by fanout_cli.render.

Commands build them (fanout_cli.commands) and renderers read them; this module imports
neither, so imports point one way: commands -> render -> results."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fanout_cli.aop import RunFolder
from fanout_cli.aop.files import RunFolderError, UnsafeFile
from fanout_cli.aop.reader import RunInfo, open_file
from fanout_cli.errors import FanoutError, IOFailure
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
    plan: Mapping[str, Any] | None = None  # its plan.json (fanout_cli/shards/record.py)

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


@dataclass(frozen=True)
class ReportResult:
    """What `fanout report` wrote."""

    path: str  # "-" for standard output
    run_id: str
    status: str  # the run's: finished, interrupted, running, crashed
    mode: str  # report.svg's full, compact or aggregate
    tasks: int
    attempts: int
    size: int  # bytes
    notes: tuple[str, ...]  # what could not be read, one line each
    page: bytes | None = None  # the page itself, to print (--output -)


# --- fanout cat -----------------------------------------------------------------------

CHUNK_BYTES = 1 << 17  # what `fanout cat` reads at a time, as cat(1) does


@dataclass(frozen=True)
class CatOutput:
    """One task's output file that `fanout cat` prints, and its --tag prefix."""

    folder: RunFolder  # the task's run folder (a merged run's task: the run it came from)
    name: str
    tag: str | None  # the --tag prefix, without its TAB; None without --tag

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes as they are, in chunks; nothing when it is gone (the task
        never wrote it). RunFolderError for a link or FIFO planted in its place,
        IOFailure when reading fails."""
        try:
            descriptor = self.folder.open(self.name)
        except FileNotFoundError:
            return
        except UnsafeFile as exc:
            raise RunFolderError(str(exc)) from None
        except OSError as exc:
            where = self.folder.member(self.name)
            raise RunFolderError(f"{where}: cannot read: {exc.strerror}") from None
        try:
            while chunk := os.read(descriptor, CHUNK_BYTES):
                yield chunk
        except OSError as exc:
            raise IOFailure.of(self.folder.member(self.name), exc, "cannot read") from None
        finally:
            os.close(descriptor)


@dataclass(frozen=True)
class CatRun:
    """`fanout cat RUN`: the output files to print, in order, read as they are printed."""

    run_dir: Path
    outputs: Iterator[CatOutput]
    note: str | None = None  # the run has not ended: only what has is printed
