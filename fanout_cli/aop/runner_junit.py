"""A task's own test-runner JUnit: found when an attempt ends, checked, counted and
copied into the run folder; read back from there by --junit, merge and timings.

A task says where its runner writes JUnit (task-file `junit`, or `--task-junit`), a
path relative to its cwd. After each attempt the file counts only when it was written
during that attempt: its mtime is at or after the attempt's start (less the coarse
clock's granularity, which the kernel stamps files with). A file left by an earlier
run is never taken for this one. It is parsed in one streaming pass
(fanout_cli.junit.scan_junit: no DTD, no entity) while it is copied, atomically and
without following links, to `<seq>-<slug>.junit.xml` beside the task's other files,
so a merge on another machine has it. The attempt records
{"file", "tests", "failures", "errors", "skipped", "seconds"}, or {"file": None,
"reason": why there is none}; the task's status is never changed by it.

The file is read where fanout runs: a Dask worker's files are not fetched."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, BinaryIO

from fanout_cli.aop import RunFolder, files, task_basename
from fanout_cli.errors import IOFailure

if TYPE_CHECKING:
    from fanout_cli.junit import JUnitTotals
    from fanout_cli.models import Attempt, TaskSpec

COPY_SUFFIX = ".junit.xml"
_REASON_CHARS = 300


def copied_name(spec: TaskSpec) -> str:
    """The copy's name in the run folder: `0003-ID.junit.xml`."""
    return task_basename(spec) + COPY_SUFFIX


def junit_path(spec: TaskSpec, template: str | None, slot: int) -> str | None:
    """Where this attempt's runner JUnit is, as fanout (not the task) reaches it: the
    task's own `junit` (rendered when the task was made, {%} now), else `template`
    (--task-junit) rendered from the task's values; joined to the task's cwd."""
    if spec.junit is not None:
        rendered = spec.junit.replace("{%}", str(slot))
    elif template is not None:
        from fanout_cli.replacements import Args, Grammar, strings

        args = spec.args or Args(())
        rendered = "".join(
            part if isinstance(part, str) else " ".join(strings(part, args, spec.seq, slot, None))
            for part in Grammar(positions=None).split(template, f"--task-junit {template!r}")
        )
    else:
        return None
    return os.path.join(spec.cwd, rendered) if spec.cwd else rendered


def collect(
    folder: RunFolder, spec: TaskSpec, attempt: Attempt, template: str | None, slot: int
) -> Attempt:
    """The attempt with its runner JUnit recorded (`junit`), the file copied into the
    run folder; the attempt as it was for a task that names none. IOFailure when the
    copy cannot be written."""
    path = junit_path(spec, template, slot)
    if path is None:
        return attempt
    from fanout_cli.timings import program_of  # the key the planner finds start-up by

    name = copied_name(spec)
    record = {**_copy(folder, name, path, attempt.started_at),
              "program": program_of(spec.command) or None}  # fmt: skip
    if record.get("file") is None:  # an earlier attempt's copy is not this attempt's
        with contextlib.suppress(FileNotFoundError):
            folder.remove(name)
    return replace(attempt, junit=record)


async def collect_in_thread(
    folder: RunFolder, spec: TaskSpec, attempt: Attempt, template: str | None, slot: int
) -> Attempt:
    """`collect` off the event loop: a report of 100,000 tests takes 0.3 s to read."""
    import anyio

    return await anyio.to_thread.run_sync(collect, folder, spec, attempt, template, slot)


def _missing(reason: str) -> dict[str, Any]:
    return {"file": None, "reason": reason[:_REASON_CHARS]}


def _copy(folder: RunFolder, name: str, path: str, started_at: float) -> dict[str, Any]:
    from fanout_cli.junit import scan_junit

    try:  # O_NONBLOCK: a FIFO planted there is refused below, not waited on
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return _missing(f"{path}: {'not written' if exc.errno == errno.ENOENT else exc.strerror}")
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        return _missing(f"{path}: not a regular file")
    with open(descriptor, "rb") as source:
        if status.st_mtime < started_at - _clock_granularity():
            return _missing(f"{path}: not written during this attempt (an older file)")
        try:
            with folder.replacing(name) as copy:
                totals = scan_junit(_Reading(source, copy), path)
        except ValueError as exc:
            return _missing(str(exc))
        except _ReadError as exc:
            return _missing(f"{path}: cannot read: {exc.strerror}")
        except OSError as exc:
            raise IOFailure.of(folder.member(name), exc) from None
    return {"file": name, **totals.document()}


def _clock_granularity() -> float:
    """How far behind the clock a file's mtime can be: the kernel stamps files with its
    coarse clock (one tick, 1-10 ms), read at the attempt's start with the fine one."""
    coarse = getattr(time, "CLOCK_REALTIME_COARSE", None)  # Linux only
    try:
        return 0.011 if coarse is None else time.clock_getres(coarse) + 0.001
    except OSError:
        return 0.011


class _ReadError(Exception):
    """A report could not be read to its end (unlike a copy that cannot be written)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror)
        self.strerror = error.strerror or str(error)


class _Reading:
    """A report read chunk by chunk, each chunk also written to `copy` when given."""

    def __init__(self, source: BinaryIO, copy: int | None = None) -> None:
        self.source = source
        self.copy = copy

    def read(self, size: int = -1) -> bytes:
        try:
            chunk = self.source.read(size)
        except OSError as exc:
            raise _ReadError(exc) from None
        if self.copy is not None:
            view = memoryview(chunk)
            while view:
                view = view[os.write(self.copy, view) :]
        return chunk


def open_copied(run_dir: str, row: Mapping[str, Any]) -> BinaryIO | None:
    """A row's copied runner JUnit, open for reading through the run folder (a link
    planted in its place: RunFolderError); None when it has none, or it is gone."""
    record = row.get("junit")
    name = record.get("file") if isinstance(record, dict) else None
    if not isinstance(name, str) or not name.endswith(COPY_SUFFIX):
        return None
    try:
        return open(RunFolder(run_dir).open(name), "rb")
    except files.UnsafeFile as exc:
        raise files.RunFolderError(str(exc)) from None
    except OSError:
        return None


def copy_suites(out: BinaryIO, row: Mapping[str, Any]) -> JUnitTotals | None:
    """Write the <testsuite> elements of a row's copied runner JUnit to `out` (a
    seekable file), streaming; their counts, or None when the row has no readable
    copy (nothing is left written then: `out` is cut back to where it was)."""
    from fanout_cli.junit import scan_junit

    run_dir = row.get("run_dir")
    handle = open_copied(run_dir, row) if isinstance(run_dir, str) else None
    if handle is None:
        return None
    start = out.tell()
    pending: list[str] = []
    size = 0

    def copy(text: str) -> None:
        nonlocal size
        pending.append(text)
        size += len(text)
        if size > 1 << 16:
            flush()

    def flush() -> None:
        nonlocal size
        out.write("".join(pending).encode("utf-8"))
        pending.clear()
        size = 0

    out.write(b"  ")
    with handle:
        try:
            totals = scan_junit(_Reading(handle), f"{run_dir}/{row['junit']['file']}", copy=copy)
        except (ValueError, _ReadError):
            out.seek(start)
            out.truncate()
            return None
    flush()
    out.write(b"\n")
    return totals
