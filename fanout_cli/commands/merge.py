"""`fanout merge` and `fanout timings export`: fan shard runs back into one run.

The commands return what they made (a MergeResult, a Timings); render.merge prints it.

Each job of a CI matrix runs `fanout run --shard I/N` and uploads its run folder; a
last job downloads them and merges: one manifest over every task, one verdict under
the strategy, one JUnit file, and the timings the next pipeline plans its shards from.

The merged run is a new folder of the output dir holding manifest.json, a two-event
journal and timings.json. Nothing is copied: each task row names the `run_dir` its
details and output files are in."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fanout_cli import history
from fanout_cli.aop import reader
from fanout_cli.aop.documents import (
    iso_time,
    journal_event,
    json_bytes,
    merged_manifest_header,
    parse_time,
)
from fanout_cli.aop.layout import RunFolder
from fanout_cli.aop.writer import create_run_folder, write_whole_run
from fanout_cli.config import STRATEGIES, OptionError, build_config
from fanout_cli.errors import StoreError, UsageError
from fanout_cli.models import Prior, RunReport, TaskStatus, Verdict
from fanout_cli.render.console import warn
from fanout_cli.render.junit import write_run_junit
from fanout_cli.results import MergeResult, SourceRun
from fanout_cli.strategies.base import StrategyOptions, Tracker
from fanout_cli.timings import (
    Timings,
    load_timings,
    timings_from_runs,
    write_timings,
)
from fanout_cli.values import Shard, parse_shard

# Folders between a named folder and the run folders it holds:
# artifacts/ shard-2/ .cache/ agent-outputs/ <run-id>/ is three in between.
SEARCH_DEPTH = 3
FORMATS = ("human", "json", "aop")
# What a strategy reads from a run's options; the rest of a run's options (jobs,
# timeouts) says how it ran, not how it is judged.
_STRATEGY_OPTIONS = ("strategy", "required_successes", "min_successes", "min_success_ratio")
# Task row fields the journal has and the manifest leaves out: a duplicate is told
# by its key, and best-of-n and majority-vote read score and vote_key.
_JOURNAL_FIELDS = ("key", "kind", "reason", "score", "vote_key", "interrupted")
_STATUSES = frozenset(str(status) for status in TaskStatus)


# --- finding and reading runs ---------------------------------------------------------


def find_runs(names: Sequence[str], output_dir: Path) -> list[Path]:
    """The run folders the names stand for, each once, in the order given: a run id,
    unique prefix or `last` of the output dir, a run folder, or a folder holding run
    folders (downloaded CI artifacts), searched SEARCH_DEPTH folders deep."""
    found: dict[Path, None] = {}
    for name in names:
        folder = Path(name)
        if folder.is_dir() and not reader.is_run_folder(folder):
            held = _run_folders_under(folder, SEARCH_DEPTH)
            if not held:
                raise UsageError(
                    f"{name}: no run folders in it (looked {SEARCH_DEPTH + 1} levels deep)"
                )
            found.update(dict.fromkeys(held))
        else:
            found[history.resolve_run(output_dir, name).absolute()] = None
    return list(found)


def _run_folders_under(folder: Path, depth: int) -> list[Path]:
    """Run folders inside `folder`, sorted, not descending into a run folder. Merged
    runs are left out: merging the output dir again must not count their tasks twice."""
    runs: list[Path] = []
    try:
        children = sorted(child for child in folder.iterdir() if child.is_dir())
    except OSError:
        return runs
    for child in children:
        if child.is_symlink():
            continue
        if reader.is_run_folder(child):
            if "merged_from" not in reader.read_manifest_header(child):
                runs.append(child.absolute())
        elif depth > 0:
            runs.extend(_run_folders_under(child, depth - 1))
    return runs


def load_run(run_dir: Path) -> SourceRun:
    """A run that has ended, with its task rows; UsageError for one that has not."""
    if not reader.has_manifest(run_dir):
        raise UsageError(f"{run_dir}: no manifest.json; not a run that ended, cannot merge it")
    header = reader.read_manifest_header(run_dir)
    info = reader.run_info(run_dir)
    if info.status == "running":
        raise UsageError(f"{run_dir}: still running; merge it once it has ended")
    if info.status not in ("finished", "interrupted"):
        raise UsageError(
            f"{run_dir}: did not end ({info.status}); resume it first "
            f"(fanout run --resume {run_dir.name}) or leave it out"
        )
    options = header.get("options")
    if not isinstance(options, dict):
        options = {}
    shard = _shard_of(run_dir, options)
    started_at = info.started_at or 0.0
    finished_at = parse_time(header.get("finished_at"))
    if finished_at is None:
        finished_at = started_at + (header.get("duration_ms") or 0) / 1000
    rows = [_complete_row(run_dir, shard, row) for row in _rows_with_journal_fields(run_dir)]
    stamps = (_text(header.get("started_at")), _text(header.get("finished_at")))
    return SourceRun(run_dir, info.status, started_at, finished_at, options, shard, rows, stamps)


def _shard_of(run_dir: Path, options: Mapping[str, Any]) -> Shard | None:
    """The shard the run was: its options say, or (a resumed run's options do not
    carry it) the options its journal started with."""
    text = options.get("shard")
    if not text:
        first = next(reader.read_journal(run_dir), {})
        started = first.get("options") if first.get("event") == "run_started" else None
        text = started.get("shard") if isinstance(started, dict) else None
    try:
        return parse_shard(text) if text else None
    except ValueError as exc:
        raise UsageError(f"{run_dir}: shard option: {exc}") from None


def _rows_with_journal_fields(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The manifest's task rows, completed from each task's last `task_ended` event."""
    rows = reader.task_rows(run_dir)
    if all(all(name in row for name in _JOURNAL_FIELDS) for row in rows):
        yield from rows  # a merged run's rows have them already; its journal does not
        return
    ended = reader.ended_rows(run_dir)
    for row in rows:
        last = ended.get(row["seq"], {}) if isinstance(row.get("seq"), int) else {}
        yield {**row, **{name: last.get(name) for name in _JOURNAL_FIELDS if name not in row}}


def _complete_row(run_dir: Path, shard: Shard | None, row: dict[str, Any]) -> dict[str, Any]:
    """The row with the folder its files are in and the shard it ran in (a merged
    run's rows have both already)."""
    seq, task_id, status = row.get("seq"), row.get("task_id"), row.get("status")
    problem = None
    if not isinstance(seq, int) or not isinstance(task_id, str) or status not in _STATUSES:
        problem = "a task row without a valid seq, task_id and status"
    elif row.get("shard") is not None and _row_shard(row) is None:
        problem = "a task row with a shard that is not I/N"
    if problem is not None:
        raise UsageError(
            f"{RunFolder(run_dir).manifest}: {problem}: {json_bytes(row).decode()[:200]}"
        )
    return {
        **row,
        "run_dir": row.get("run_dir") or str(run_dir),
        "shard": row.get("shard") or (None if shard is None else str(shard)),
    }


def _row_shard(row: Mapping[str, Any]) -> Shard | None:
    try:
        return parse_shard(row["shard"]) if row.get("shard") else None
    except ValueError:
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def load_runs(names: Sequence[str], output_dir: Path) -> list[SourceRun]:
    """The runs the names stand for, oldest first."""
    runs = [load_run(path) for path in find_runs(names, output_dir)]
    return sorted(runs, key=lambda run: (run.started_at, str(run.path)))


# --- merging ------------------------------------------------------------------------


def merged_rows(runs: Sequence[SourceRun]) -> list[dict[str, Any]]:
    """Every task once (by id and key): the result of the newest run that has it,
    ordered by shard, then input order. `runs` is oldest first."""
    newest: dict[tuple[str, object], tuple[int, dict[str, Any]]] = {}
    for position, run in enumerate(runs):
        for row in run.rows:
            newest[(row["task_id"], row.get("key"))] = (position, row)

    def order(entry: tuple[int, dict[str, Any]]) -> tuple[int, int, int]:
        position, row = entry
        shard = _row_shard(row)
        return (0 if shard is None else shard.index, row["seq"], position)

    return [row for _, row in sorted(newest.values(), key=order)]


def strategy_for(runs: Sequence[SourceRun], options: Mapping[str, str | None]) -> StrategyOptions:
    """The merge command's strategy options, else the ones the runs agree on."""
    given = {name: options.get(name) for name in _STRATEGY_OPTIONS}
    strategy = given["strategy"] or _agreed(runs, "strategy", "all-succeed")
    if strategy not in STRATEGIES:
        raise UsageError(f"--strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}")
    relevant = {
        "first-n-succeed": ("required_successes",),
        "partial-success": ("min_successes", "min_success_ratio"),
    }.get(strategy, ())
    saved: dict[str, object] = {"strategy": strategy}
    # A threshold given replaces the runs' thresholds of either kind (count or ratio).
    if not any(given[name] is not None for name in relevant):
        for name in relevant:
            saved[name] = _agreed(runs, name, None)
    try:
        config = build_config(saved, {name: value for name, value in given.items() if value})
    except OptionError as exc:
        raise UsageError(f"--{exc.name.replace('_', '-')}: {exc.problem}") from None
    return StrategyOptions(
        name=config.strategy,
        required_successes=config.required_successes,
        min_successes=config.min_successes,
        min_success_ratio=config.min_success_ratio,
    )


def _agreed(runs: Sequence[SourceRun], name: str, default: object) -> Any:
    """The value of option `name` the runs used; UsageError when they differ."""
    values = {json_bytes(run.options.get(name, default)): run.options.get(name, default)
              for run in runs}  # fmt: skip
    if len(values) > 1:
        shown = ", ".join(sorted(str(value) for value in values.values()))
        flag = name.replace("_", "-")
        raise UsageError(f"the runs used different --{flag} ({shown}); choose one with --{flag}")
    return next(iter(values.values()), default)


def judge(rows: Sequence[dict[str, Any]], options: StrategyOptions) -> Verdict:
    tracker = Tracker(options, len(rows))
    for row in rows:
        tracker.observe(Prior(row, 0))
    return tracker.verdict()


def incomplete(runs: Sequence[SourceRun]) -> list[str]:
    """Why the merged runs may not hold every task: a run was interrupted, or a shard
    of the split is missing. UsageError when the runs are shards of different splits."""
    problems = [f"run {run.run_id} was interrupted" for run in runs if run.status != "finished"]
    # A merged run's rows say which shards it holds; a shard run may have no rows.
    shards = {run.shard for run in runs if run.shard is not None}
    shards |= {shard for run in runs for row in run.rows if (shard := _row_shard(row))}
    totals = sorted({shard.total for shard in shards})
    if len(totals) > 1:
        shown = ", ".join(sorted(str(shard) for shard in shards))
        raise UsageError(f"the runs are shards of different splits ({shown}); merge one split")
    if totals:
        present = {shard.index for shard in shards}
        missing = [f"{index}/{totals[0]}" for index in range(1, totals[0] + 1)
                   if index not in present]  # fmt: skip
        if missing:
            problems.append(f"shard{'s' * (len(missing) > 1)} {', '.join(missing)} missing")
    return problems


def _shard_order(run: SourceRun) -> tuple[int, float]:
    return (0 if run.shard is None else run.shard.index, run.started_at)


def merged_timings(runs: Sequence[SourceRun]) -> Timings:
    """Every duration the runs recorded, oldest run first (the newest status wins)."""
    timings = Timings()
    for run in runs:
        timings.add_rows(run.rows)
    return timings


# --- fanout merge ---------------------------------------------------------------------


def merge_runs(
    runs: list[str],
    output_dir: Path,
    options: dict[str, str | None],
    *,
    junit: str | None,
    timings_out: str | None,
) -> MergeResult:
    """Merge the runs into a new run of `output_dir` (and --junit, --timings-out files)."""
    output_format = options.get("format") or "human"
    if output_format not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}, got {output_format!r}")
    if timings_out == "-":
        raise UsageError("--timings-out: stdout holds the merge's result; name a file")
    for flag, path in (("--junit", junit), ("--timings-out", timings_out)):
        if path is not None:
            _check_folder(flag, path)
    by_age = load_runs(runs, output_dir)
    strategy = strategy_for(by_age, options)
    rows = merged_rows(by_age)
    verdict = judge(rows, strategy)
    problems = incomplete(by_age)
    if problems:
        verdict = replace(verdict, passed=False, reason=f"{verdict.reason}; {'; '.join(problems)}")
    timings = merged_timings(by_age)
    sources = sorted(by_age, key=_shard_order)
    report = write_merged_run(output_dir, sources, rows, verdict, strategy, timings)
    if junit is not None:
        write_run_junit(junit, report, rows, {"merged_from": str(len(sources))})
    if timings_out is not None:
        _write_timings(timings_out, timings, "--timings-out")
    return MergeResult(report, tuple(sources), tuple(rows))


def write_merged_run(
    output_dir: Path,
    sources: Sequence[SourceRun],
    rows: Sequence[dict[str, Any]],
    verdict: Verdict,
    strategy: StrategyOptions,
    timings: Timings,
) -> RunReport:
    """The new run folder: manifest.json, journal.jsonl, timings.json; `sources` in
    the order to list them (by shard)."""
    folder = RunFolder(create_run_folder(output_dir))
    run_dir = folder.path
    first = min(sources, key=lambda run: run.started_at)
    last = max(sources, key=lambda run: run.finished_at)
    started_at, finished_at = first.started_at, last.finished_at
    count = len(rows)
    report = RunReport(
        run_id=run_dir.name,
        run_dir=str(run_dir),
        manifest_path=str(folder.manifest),
        verdict=verdict,
        # The result envelope and AOP lines name details files relative to details_dir,
        # which is the merged folder; the files are in the source runs' folders.
        rows=lambda: (
            {**row, "details_file": _beside(row["run_dir"], row.get("details_file"))}
            for row in rows
        ),
        started_at=started_at,
        finished_at=finished_at,
        title=(
            f"fanout merge of {len(sources)} run{'s' * (len(sources) != 1)}: "
            f"{count} task{'s' * (count != 1)}, {strategy.name}"
        ),
    )
    options = {
        "strategy": strategy.name,
        "fail_fast": False,
        "required_successes": strategy.required_successes,
        "min_successes": strategy.min_successes,
        "min_success_ratio": strategy.min_success_ratio,
        "shard": None,
    }
    argv = list(sys.argv)
    merged_from = [str(run.path) for run in sources]
    header = merged_manifest_header(report, merged_from=merged_from, argv=argv, options=options,
                                    stamps=(first.stamps[0], last.stamps[1]))  # fmt: skip
    now = iso_time(time.time())
    events = [
        journal_event("run_started", now, {"run_id": report.run_id, "argv": argv,
                                           "options": options, "merged_from": merged_from}),
        journal_event("run_ended", now, {"status": "finished", "passed": verdict.passed,
                                         "reason": verdict.reason, "counts": dict(verdict.counts)}),
    ]  # fmt: skip
    write_whole_run(folder, header, rows, events)
    _write_timings(str(folder.timings), timings, "merge")
    return report


def _beside(run_dir: str, details_file: object) -> str | None:
    return RunFolder(run_dir).member(details_file) if isinstance(details_file, str) else None


def _check_folder(flag: str, path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{flag} {path}: no such folder {folder}")


def _write_timings(path: str, timings: Timings, flag: str) -> None:
    try:
        write_timings(path, timings)
    except OSError as exc:
        raise StoreError(f"{flag} {path}: cannot write: {exc.strerror}") from None


# --- fanout timings export ------------------------------------------------------------


def export_timings(
    runs: list[str], output_dir: Path, output: str, timing_files: list[str]
) -> Timings:
    """The --timings files, then the runs (oldest first; with none named, the output
    dir's recent runs), as one timings file, written at `output` unless it is `-`
    (stdout: the caller prints what this returns)."""
    if output != "-":
        _check_folder("--output", output)
    timings = Timings()
    for path in timing_files:
        if not os.path.exists(path):  # as `fanout run --timings`: a first pipeline has none
            warn(f"--timings {path}: no such file")
            continue
        try:
            timings.merge(load_timings(path))
        except ValueError as exc:
            raise UsageError(f"--timings {exc}") from None
    if runs:
        timings.merge(merged_timings(load_runs(runs, output_dir)))
    else:
        timings.merge(timings_from_runs(output_dir, shards=True))
    if output != "-":
        _write_timings(output, timings, "--output")
    return timings
