"""A run folder as a Report: its manifest's header, its journal's bars and rows, the
details files of the tasks tried more than once (and of agent calls: their waits), and
for a merged run each shard's folder. Links are made relative to the folder the report
is written to, so that the report still works when the folders are copied together.

It only reads, after the run (or while it runs: what is there is drawn and the report
says so). What cannot be read is left out and named in `Report.notes`; a run that
cannot be found, or a folder that is not a run, is a RunFolderError or UsageError."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fanout_cli.aop import output_names_of
from fanout_cli.aop.documents import parse_time
from fanout_cli.aop.files import RunFolderError, is_plain_name
from fanout_cli.aop.reader import (
    held_by,
    is_run_folder,
    read_details,
    read_manifest_header,
    task_rows,
)
from fanout_cli.report.journal import Journal
from fanout_cli.report.model import Bar, Files, Part, Report, Task
from fanout_cli.report.slots import assign_slots

STATUSES = ("success", "failure", "timeout", "cancelled", "error")


def load_report(run_dir: Path, report_dir: Path) -> Report:
    header = read_manifest_header(run_dir)
    merged_from = header.get("merged_from")
    notes: list[str] = []
    if isinstance(merged_from, list):
        parts = [part for folder in merged_from
                 if (part := _source_part(run_dir, str(folder), report_dir, notes))]  # fmt: skip
    else:
        parts = [load_part(run_dir, header, "", report_dir, notes)]
    options = mapping(header.get("options"))
    if not options and parts and not isinstance(merged_from, list):
        options = parts[0].options
    verdict = mapping(header.get("verdict")) or None
    tasks = [task for part in parts for task in part.tasks]
    counts = dict(mapping(verdict.get("counts"))) if verdict else _counts(tasks)
    starts = [part.started_at for part in parts if part.started_at is not None]
    ends = [part.finished_at for part in parts if part.finished_at is not None]
    return Report(
        run_id=run_dir.name,
        status=_status(run_dir, header) if not isinstance(merged_from, list) else "finished",
        argv=[str(word) for word in header.get("argv") or []],
        strategy=str(options.get("strategy") or "all-succeed"),
        verdict=verdict,
        counts=counts,
        parts=parts,
        started_at=parse_time(header.get("started_at")) or (min(starts) if starts else None),
        finished_at=parse_time(header.get("finished_at")) or (max(ends) if ends else None),
        merged=isinstance(merged_from, list),
        notes=notes,
    )


def mapping(value: object) -> dict[str, Any]:
    """A record's object, or {} for anything else."""
    return value if isinstance(value, dict) else {}


def _status(run_dir: Path, header: dict[str, Any]) -> str:
    status = str(header.get("status") or "crashed")
    if status == "running":
        return "running" if held_by(run_dir) else "crashed"
    return status


def _counts(tasks: list[Task]) -> dict[str, int]:
    counts = {"tasks": len(tasks), **dict.fromkeys(STATUSES, 0)}
    for task in tasks:
        counts[task.status] = counts.get(task.status, 0) + 1
    return counts


def _source_part(merged: Path, folder: str, report_dir: Path, notes: list[str]) -> Part | None:
    """One shard of a merged run; None (and a note) when its folder is gone or is not a run."""
    path = Path(folder)
    if not is_run_folder(path):
        gone = "is gone" if not os.path.lexists(path) else "is not a run folder"
        notes.append(f"{merged.name}: merged run {folder} {gone}; its tasks are not drawn")
        return None
    try:
        header = read_manifest_header(path)
        options = mapping(header.get("options"))
        label = f"shard {options['shard']}" if options.get("shard") else path.name
        return load_part(path, header, label, report_dir, notes)
    except RunFolderError as exc:
        notes.append(f"{exc}; its tasks are not drawn")
        return None


def load_part(
    run_dir: Path, header: dict[str, Any], label: str, report_dir: Path, notes: list[str]
) -> Part:
    status = _status(run_dir, header)
    journal = Journal(run_dir, running=status == "running").read()
    notes.extend(journal.problems)
    if status not in ("running", "crashed"):
        try:
            journal.never_started(task_rows(run_dir))
        except RunFolderError as exc:
            notes.append(f"{exc}; the tasks that never started are not listed")
    links = _Links(run_dir, report_dir)
    for seq, bars in journal.retried.items():
        _refine(run_dir, journal.rows[seq], bars, notes)
    linked = {seq: links.of_task(task, label) for seq, task in sorted(journal.tasks.items())}
    for bar in journal.bars:
        bar.files = links.of_bar(bar, linked.get(bar.seq))
    tasks = list(linked.values())
    options = mapping(header.get("options")) or journal.options
    jobs = options.get("jobs")
    used, reconstructed = assign_slots(journal.bars)
    slots = max(used, jobs if isinstance(jobs, int) and 0 < jobs <= 256 else 0)
    sessions = journal.sessions
    return Part(
        run_id=run_dir.name, label=label, status=status, bars=journal.bars, tasks=tasks,
        slots=slots, sessions=sessions, reconstructed=reconstructed,
        started_at=sessions[0][0] if sessions else None,
        finished_at=sessions[-1][1] if sessions else None,
        verdict=mapping(header.get("verdict")) or None,
        estimate=_estimate(run_dir, notes), options=options,
    )


def _refine(run_dir: Path, row: dict[str, Any], bars: list[Bar], notes: list[str]) -> None:
    """The times, status and outputs of each attempt of a task, and an agent call's
    waits, from its details file; the journal's approximations stay where it has none."""
    details_file = row.get("details_file")
    if not isinstance(details_file, str):
        return
    try:
        details = read_details(run_dir, details_file)
    except RunFolderError as exc:
        notes.append(f"{exc}; its attempts are drawn from the journal")
        return
    attempts = {entry.get("attempt"): entry for entry in details.get("attempts") or []
                if isinstance(entry, dict)}  # fmt: skip
    for bar in bars:
        entry = attempts.get(bar.attempt)
        if entry is None:
            continue
        start, end = parse_time(entry.get("started_at")), parse_time(entry.get("finished_at"))
        if start is not None and end is not None and end >= start:
            bar.start, bar.end = start, end
        bar.status = str(entry.get("status") or bar.status)
        bar.exit_code = entry.get("exit_code")
        bar.reason = str(entry.get("reason") or "")
        bar.outputs = (entry.get("stdout"), entry.get("stderr"))
        bar.pauses = _pauses(bar.start, entry.get("exchanges"))


def _pauses(start: float, exchanges: object) -> tuple[tuple[float, float], ...]:
    """An agent attempt's waits before its requests (the provider's pause, --rate),
    laid out from the attempt's start: each wait, then its request's duration."""
    if not isinstance(exchanges, list):
        return ()
    pauses = []
    at = start
    for exchange in exchanges:
        if not isinstance(exchange, dict):
            continue
        waited = exchange.get("waited_s") or 0
        took = (exchange.get("duration_ms") or 0) / 1000
        if isinstance(waited, (int, float)) and waited > 0:
            pauses.append((at, at + waited))
            at += waited
        at += took if isinstance(took, (int, float)) else 0
    return tuple(pauses)


def _estimate(run_dir: Path, notes: list[str]) -> float | None:
    """A shard run's planned seconds (--shard with --timings), from its plan.json."""
    from fanout_cli.shards.record import read_plan

    try:
        plan = read_plan(run_dir)
    except RunFolderError as exc:
        notes.append(str(exc))
        return None
    if not plan or not plan.get("shard") or not plan.get("timings", {}).get("known"):
        return None
    estimates = plan.get("shard_estimates") or []
    index = int(plan["shard"]) - 1
    return float(estimates[index]) if 0 <= index < len(estimates) else None


class _Links:
    """The files of one run folder as links from the report's folder."""

    _SAFE = re.compile(r"[A-Za-z0-9._-]+")  # what fanout names its files with: no quoting

    def __init__(self, run_dir: Path, report_dir: Path) -> None:
        prefix = os.path.relpath(run_dir, report_dir)
        self.prefix = "" if prefix == "." else quote(prefix) + "/"

    def link(self, name: object) -> str | None:
        if not is_plain_name(name):
            return None
        text = str(name)
        return self.prefix + (text if self._SAFE.fullmatch(text) else quote(text))

    def of_bar(self, bar: Bar, task: Task | None) -> Files:
        """A bar's files: its task's for its last attempt, its own outputs for an earlier
        one (from the details file), the details file alone when they are not known."""
        if task is None:
            return Files()
        if bar.outputs is None:
            return task.files if bar.last else Files(task.files.details)
        stdout, stderr = bar.outputs
        return Files(task.files.details, self.link(stdout), self.link(stderr))

    def of_task(self, task: Task, shard: str) -> Task:
        names = output_names_of(task.files.details) if task.files.details else None
        files = Files(self.link(task.files.details), self.link(task.files.stdout),
                      self.link(names[1]) if names else None)  # fmt: skip
        return Task(task.seq, task.task_id, task.status, task.duration, task.attempts,
                    task.exit_code, task.summary, files, shard or None)  # fmt: skip
