"""Recorded task durations: what --shard and --order plan from.

Durations come from earlier runs in the output folder, or from `--timings FILE`: a
fanout timings file (`fanout timings export`), a run's manifest.json, or JUnit XML from
any test runner. Each task's estimate is the 85th percentile of its last 20 recorded
durations; a task with no history gets the median of the known estimates, and never
less than MIN_ESTIMATE: a test a report timed at 0.000 s still costs something.

A duration read from JUnit is the time of the tests alone; the command that runs them
also pays its start-up (an interpreter, a test runner collecting). That start-up is
learnt per program (`pytest`, `go`, ...) as a task's wall time less its tests' time,
and added to estimates that come from JUnit. The plans made from all this are
fanout_cli/shards/split.py's."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fanout_cli.models import TaskSpec
from fanout_cli.values import MAX_DURATION

TIMINGS_VERSION = 1
HISTORY = 20  # durations kept per task
PERCENTILE = 0.85
RUNS_READ = 30  # newest runs of the output folder read for history
UNKNOWN_SECONDS = 1.0  # every estimate when nothing at all is known: a split by count
MIN_ESTIMATE = 0.001  # seconds: the least a task is estimated at
_MEASURED = ("success", "failure", "timeout")  # ran to an end: its duration means something
_FAILED = ("failure", "timeout", "error")


@dataclass
class Timings:
    """Durations by task id or test name (oldest first, at most HISTORY each), the
    latest status of each task, durations read from JUnit XML (matched to tasks by
    name), and start-up samples by program (oldest first, at most HISTORY each)."""

    durations: dict[str, list[float]] = field(default_factory=dict)
    last_status: dict[str, str] = field(default_factory=dict)
    junit: dict[str, float] = field(default_factory=dict)
    startup: dict[str, list[float]] = field(default_factory=dict)

    def record(self, task_id: str, status: str, seconds: float | None) -> None:
        self.last_status[task_id] = status
        # A recorded duration past any run's limit (30d) is nonsense a file can hold.
        measured = seconds is not None and 0 <= seconds <= MAX_DURATION
        if status in _MEASURED and measured:
            assert seconds is not None
            history = self.durations.setdefault(task_id, [])
            history.append(seconds)
            del history[:-HISTORY]

    def record_startup(self, program: str, seconds: float) -> None:
        """A command of `program` took `seconds` more than its tests."""
        if program and 0 <= seconds <= MAX_DURATION:
            samples = self.startup.setdefault(program, [])
            samples.append(seconds)
            del samples[:-HISTORY]

    def startup_estimate(self, program: str) -> float | None:
        """The median start-up of `program`'s commands, or None when never measured."""
        samples = sorted(self.startup.get(program) or ())
        return _median(samples) if samples else None

    def add_rows(self, rows: Iterable[Mapping[str, Any]], run_dir: str | None = None) -> None:
        """The task rows of one run (a manifest's "tasks"), oldest run first. A row whose
        runner JUnit was copied into its run folder (its `run_dir`, else `run_dir`)
        adds each test's duration and a start-up sample (`add_runner_junit`)."""
        for row in rows:
            task_id, status = row.get("task_id"), row.get("status")
            if not isinstance(task_id, str) or not isinstance(status, str):
                continue
            milliseconds = row.get("duration_ms")
            seconds = milliseconds / 1000 if isinstance(milliseconds, int | float) else None
            self.record(task_id, status, seconds)
            folder = row.get("run_dir") or run_dir
            if isinstance(row.get("junit"), dict) and isinstance(folder, str):
                self.add_runner_junit(row, folder)

    def record_testcase(self, classname: str, test: str, seconds: float, outcome: str) -> None:
        """One testcase of a JUnit report, kept as `CLASSNAME::NAME` (NAME alone without
        a classname): the name junit_key_candidates derives from a pytest node id."""
        if test:
            failed = outcome in ("failure", "error")
            self.record(f"{classname}::{test}" if classname else test,
                        "failure" if failed else "success", seconds)  # fmt: skip

    def add_runner_junit(self, row: Mapping[str, Any], run_dir: str) -> None:
        """A row's runner JUnit, copied into its run folder (fanout_cli.aop.runner_junit):
        one duration per testcase, keyed `CLASSNAME::NAME` (NAME alone without a
        classname, as junit_key_candidates derives from a pytest node id), and one
        start-up sample for the row's program: its time less its tests', never
        negative; a retried task's time holds several runs and gives none. A copy that
        is gone or unreadable adds nothing; a link planted there is never followed."""
        from fanout_cli.aop import RunFolder
        from fanout_cli.junit import scan_junit

        name = row["junit"].get("file")
        if not isinstance(name, str) or not name.endswith(".junit.xml"):
            return

        try:
            with open(RunFolder(run_dir).open(name), "rb") as handle:
                tests = scan_junit(handle, name, case=self.record_testcase).seconds
        except (OSError, ValueError):
            return
        program, milliseconds = row.get("program"), row.get("duration_ms")
        if isinstance(program, str) and isinstance(milliseconds, int | float) and row.get(
            "attempts", 1) == 1:  # fmt: skip
            self.record_startup(program, max(milliseconds / 1000 - tests, 0.0))

    def merge(self, other: Timings) -> None:
        """Add `other`, as if it was recorded after this."""
        for task_id, history in other.durations.items():
            merged = self.durations.setdefault(task_id, [])
            merged.extend(history)
            del merged[:-HISTORY]
        self.last_status.update(other.last_status)
        self.junit.update(other.junit)
        for program, samples in other.startup.items():
            for seconds in samples:
                self.record_startup(program, seconds)

    def known(self, task_id: str) -> float | None:
        """The estimate from this task's own history, else from the names JUnit may
        give it (a history kept under such a name first), or None."""
        own = _percentile(self.durations.get(task_id))
        if own is not None or not (self.junit or self.durations):
            return own
        from fanout_cli.junit import junit_key_candidates

        candidates = junit_key_candidates(task_id)
        for key in candidates[1:]:  # [0] is the id itself
            kept = _percentile(self.durations.get(key))
            if kept is not None:
                return kept
        for key in candidates:
            if key in self.junit:
                return self.junit[key]
        return None

    def estimates(self, specs: Sequence[TaskSpec], *, startup: bool = True) -> dict[str, float]:
        """Seconds for every task id: its own history, else the time JUnit gives its
        tests plus its program's start-up (with `startup`), else the median of the
        known; at least MIN_ESTIMATE."""
        known: dict[str, float | None] = {}
        for spec in specs:
            seconds = self.known(spec.task_id)
            if seconds is not None and startup and not self.durations.get(spec.task_id):
                seconds += self.startup_estimate(program_of(spec.command)) or 0.0
            known[spec.task_id] = seconds
        values = sorted(seconds for seconds in known.values() if seconds is not None)
        fallback = _median(values) if values else UNKNOWN_SECONDS
        return {task_id: max(MIN_ESTIMATE, fallback if seconds is None else seconds)
                for task_id, seconds in known.items()}  # fmt: skip

    def failed(self, task_id: str) -> bool:
        return self.last_status.get(task_id) in _FAILED

    def document(self) -> dict[str, Any]:
        tasks = {
            task_id: {
                "durations": [round(s, 3) for s in self.durations.get(task_id, [])],
                "last_status": self.last_status.get(task_id),
            }
            for task_id in sorted(set(self.durations) | set(self.last_status))
        }
        document: dict[str, Any] = {
            "fanout_timings_version": TIMINGS_VERSION,
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "tasks": tasks,
        }
        if self.startup:
            document["startup"] = {
                program: [round(s, 3) for s in samples]
                for program, samples in sorted(self.startup.items())
            }
        return document


def _percentile(history: list[float] | None) -> float | None:
    """The 85th percentile (nearest rank) of a history, or None for none."""
    if not history:
        return None
    ranked = sorted(history)
    return ranked[max(math.ceil(PERCENTILE * len(ranked)) - 1, 0)]


def _median(ranked: Sequence[float]) -> float:
    middle = len(ranked) // 2
    return ranked[middle] if len(ranked) % 2 else (ranked[middle - 1] + ranked[middle]) / 2


def program_of(command: tuple[str, ...] | str) -> str:
    """What a command's start-up is learnt under: its first word's base name
    (`/usr/bin/python3 -m pytest` -> `python3`; a `sh -c` script's first word)."""
    words = command.split(None, 1)[:1] if isinstance(command, str) else command[:1]
    return os.path.basename(words[0]) if words else ""


def load_timings(path: str) -> Timings:
    """A fanout timings file, a run's manifest.json, or JUnit XML. Raises ValueError
    with a one-line reason naming the file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512).lstrip()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    if head.startswith(b"<"):
        return _junit_timings(path)
    try:
        document = json.loads(Path(path).read_bytes())
    except ValueError as exc:
        raise ValueError(f"{path}: neither JSON nor JUnit XML ({exc})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deep for a timings file") from None
    timings = Timings()
    if isinstance(document, dict) and isinstance(document.get("tasks"), dict):
        _read_timings_document(document, timings)
        return timings
    if isinstance(document, dict) and isinstance(document.get("tasks"), list):
        rows = (row for row in document["tasks"] if isinstance(row, dict))
        timings.add_rows(rows, os.path.dirname(os.path.abspath(path)))  # its runner JUnit
        return timings
    raise ValueError(f"{path}: not a fanout timings file, manifest or JUnit XML")


def _junit_timings(path: str) -> Timings:
    """A JUnit report's durations by every name a task may go by, and each testcase's
    as its history (so that --timings-out keeps them for the next pipeline)."""
    from fanout_cli.junit import read_junit_durations, scan_junit

    timings = Timings(junit=read_junit_durations(path))
    try:
        with open(path, "rb") as handle:
            scan_junit(handle, path, case=timings.record_testcase)
    except (OSError, ValueError):
        pass  # a report scan_junit refuses (a DTD) still gave its durations by name
    return timings


def _read_timings_document(document: dict[str, Any], timings: Timings) -> None:
    """A fanout timings file's tasks and start-up samples, into `timings`."""
    for task_id, entry in document["tasks"].items():
        if not isinstance(entry, dict):
            continue
        for seconds in entry.get("durations") or []:
            if isinstance(seconds, int | float):
                timings.record(task_id, "success", float(seconds))
        if isinstance(entry.get("last_status"), str):
            timings.last_status[task_id] = entry["last_status"]
    startup = document.get("startup")
    for program, samples in startup.items() if isinstance(startup, dict) else ():
        for seconds in samples if isinstance(samples, list) else ():
            if isinstance(seconds, int | float) and isinstance(program, str):
                timings.record_startup(program, float(seconds))


def timings_from_runs(
    output_dir: Path, limit: int = RUNS_READ, *, shards: bool = False
) -> Timings:
    """History from the newest `limit` finished runs of an output folder; shard runs
    only with `shards` (a plan leaves them out: a shard run one after another in the
    same folder would change the next shard's plan). A run a merge covers counts once;
    a run that cannot be read is skipped with a warning."""
    from fanout_cli import history
    from fanout_cli.aop import reader
    from fanout_cli.aop.files import RunFolderError
    from fanout_cli.render.console import warn

    timings = Timings()
    runs = [run for run in history.readable_runs(output_dir) if run.status == "finished"]
    documents = []
    merged: set[str] = set()  # folders a merge already counts
    for run in runs[:limit]:
        try:
            document = reader.read_manifest(run.path)
        except RunFolderError as exc:
            warn(f"{exc.message}; skipped")
            continue
        if document is None:
            continue
        options = document.get("options")
        if not shards and isinstance(options, dict) and options.get("shard"):
            continue
        sources = document.get("merged_from")
        if isinstance(sources, list):
            merged.update(os.path.realpath(str(path)) for path in sources)
        documents.append((run.path, document))
    for path, document in reversed(documents):  # oldest first: the newest is kept last
        rows = document.get("tasks")
        if os.path.realpath(path) not in merged and isinstance(rows, list):
            timings.add_rows((row for row in rows if isinstance(row, dict)), str(path))
    return timings


def write_timings(path: str, timings: Timings) -> None:
    from fanout_cli.aop.writer import write_json_atomic

    write_json_atomic(Path(os.path.abspath(path)), timings.document())
