"""Recorded task durations, and the shards and orders made from them.

Durations come from earlier runs in the output folder, or from `--timings FILE`: a
fanout timings file (`fanout timings export`), a run's manifest.json, or JUnit XML from
any test runner. Each task's estimate is the 85th percentile of its last 20 recorded
durations; a task with no history gets the median of the known estimates.

A shard plan is longest-processing-time-first bin packing over tasks sorted by
(estimate, id, command): every machine that has the same tasks and the same timings
computes the same shards, whatever order the tasks came in."""

from __future__ import annotations

import heapq
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
_MEASURED = ("success", "failure", "timeout")  # ran to an end: its duration means something
_FAILED = ("failure", "timeout", "error")


@dataclass
class Timings:
    """Durations by task id (oldest first, at most HISTORY each), the latest status of
    each task, and durations read from JUnit XML (matched to tasks by name)."""

    durations: dict[str, list[float]] = field(default_factory=dict)
    last_status: dict[str, str] = field(default_factory=dict)
    junit: dict[str, float] = field(default_factory=dict)

    def record(self, task_id: str, status: str, seconds: float | None) -> None:
        self.last_status[task_id] = status
        # A recorded duration past any run's limit (30d) is nonsense a file can hold.
        measured = seconds is not None and 0 <= seconds <= MAX_DURATION
        if status in _MEASURED and measured:
            assert seconds is not None
            history = self.durations.setdefault(task_id, [])
            history.append(seconds)
            del history[:-HISTORY]

    def add_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """The task rows of one run (a manifest's "tasks"), oldest run first."""
        for row in rows:
            task_id, status = row.get("task_id"), row.get("status")
            if not isinstance(task_id, str) or not isinstance(status, str):
                continue
            milliseconds = row.get("duration_ms")
            seconds = milliseconds / 1000 if isinstance(milliseconds, int | float) else None
            self.record(task_id, status, seconds)

    def merge(self, other: Timings) -> None:
        """Add `other`, as if it was recorded after this."""
        for task_id, history in other.durations.items():
            merged = self.durations.setdefault(task_id, [])
            merged.extend(history)
            del merged[:-HISTORY]
        self.last_status.update(other.last_status)
        self.junit.update(other.junit)

    def known(self, task_id: str) -> float | None:
        """The estimate from this task's own history, or None."""
        history = self.durations.get(task_id)
        if history:
            ranked = sorted(history)
            return ranked[max(math.ceil(PERCENTILE * len(ranked)) - 1, 0)]  # nearest rank
        if self.junit:
            from fanout_cli.junit import junit_key_candidates

            for key in junit_key_candidates(task_id):
                if key in self.junit:
                    return self.junit[key]
        return None

    def estimates(self, specs: Sequence[TaskSpec]) -> dict[str, float]:
        """Seconds for every task id: its own history, else the median of the known."""
        known = {spec.task_id: self.known(spec.task_id) for spec in specs}
        values = [seconds for seconds in known.values() if seconds is not None]
        if values:
            import statistics  # not at import: a plain run never estimates (6 modules)

            fallback = statistics.median(values)
        else:
            fallback = UNKNOWN_SECONDS
        return {
            task_id: fallback if seconds is None else seconds for task_id, seconds in known.items()
        }

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
        return {
            "fanout_timings_version": TIMINGS_VERSION,
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "tasks": tasks,
        }


def load_timings(path: str) -> Timings:
    """A fanout timings file, a run's manifest.json, or JUnit XML. Raises ValueError
    with a one-line reason naming the file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512).lstrip()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    if head.startswith(b"<"):
        from fanout_cli.junit import read_junit_durations

        return Timings(junit=read_junit_durations(path))
    try:
        document = json.loads(Path(path).read_bytes())
    except ValueError as exc:
        raise ValueError(f"{path}: neither JSON nor JUnit XML ({exc})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deep for a timings file") from None
    timings = Timings()
    if isinstance(document, dict) and isinstance(document.get("tasks"), dict):
        for task_id, entry in document["tasks"].items():
            if not isinstance(entry, dict):
                continue
            for seconds in entry.get("durations") or []:
                if isinstance(seconds, int | float):
                    timings.record(task_id, "success", float(seconds))
            if isinstance(entry.get("last_status"), str):
                timings.last_status[task_id] = entry["last_status"]
        return timings
    if isinstance(document, dict) and isinstance(document.get("tasks"), list):
        timings.add_rows(row for row in document["tasks"] if isinstance(row, dict))
        return timings
    raise ValueError(f"{path}: not a fanout timings file, manifest or JUnit XML")


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
            timings.add_rows(row for row in rows if isinstance(row, dict))
    return timings


@dataclass(frozen=True)
class ShardPlan:
    tasks: tuple[TaskSpec, ...]  # in input order
    estimate: float  # seconds: the sum of its tasks' estimates


def plan_shards(
    specs: Sequence[TaskSpec], estimates: Mapping[str, float], total: int
) -> list[ShardPlan]:
    """Longest-processing-time-first: the longest task goes to the least-loaded shard
    (ties: the lowest shard number). Sorting by (estimate, id, command) first makes the
    plan independent of the input order."""
    ranked = sorted(specs, key=lambda spec: (-estimates[spec.task_id], spec.task_id, spec.key))
    loads = [(0.0, index) for index in range(total)]
    members: list[list[TaskSpec]] = [[] for _ in range(total)]
    for spec in ranked:
        load, index = heapq.heappop(loads)
        members[index].append(spec)
        heapq.heappush(loads, (load + estimates[spec.task_id], index))
    return [
        ShardPlan(
            tuple(sorted(tasks, key=lambda spec: spec.seq)),
            sum(estimates[spec.task_id] for spec in tasks),
        )
        for tasks in members
    ]


def ordered(
    specs: Sequence[TaskSpec], order: str, estimates: Mapping[str, float], timings: Timings
) -> list[TaskSpec]:
    """`input` keeps the order; `longest-first` sorts by estimate (ties in input order);
    `failed-first` puts the tasks whose latest recorded run failed first, each group
    longest first."""
    if order == "input":
        return list(specs)
    if order == "longest-first":
        return sorted(specs, key=lambda spec: -estimates[spec.task_id])
    return sorted(
        specs, key=lambda spec: (not timings.failed(spec.task_id), -estimates[spec.task_id])
    )


def write_timings(path: str, timings: Timings) -> None:
    from fanout_cli.aop.writer import write_json_atomic

    write_json_atomic(Path(os.path.abspath(path)), timings.document())
