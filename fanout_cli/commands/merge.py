"""`fanout merge` and `fanout timings export`: fan shard runs back into one run.

The commands return what they made (a MergeResult, a Timings); render.merge prints it.

Each job of a CI matrix runs `fanout run --shard I/N` and uploads its run folder; a
last job downloads them and merges: one manifest over every task, one verdict under
the strategy, one JUnit file, and the timings the next pipeline plans its shards from.

The merged run is a new folder of the output dir holding manifest.json, a two-event
journal and timings.json. Nothing is copied: each task row names the `run_dir` its
details and output files are in. Finding and reading the runs, and fanning their rows
into one list, is commands/merge_sources.py."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fanout_cli.aop import RunFolder
from fanout_cli.aop.documents import (
    MANIFEST_VERSION,
    iso_time,
    journal_event,
    json_bytes,
    verdict_document,
)
from fanout_cli.aop.files import is_plain_name
from fanout_cli.aop.writer import create_run_folder, write_whole_run
from fanout_cli.commands.merge_sources import incomplete, load_runs, merged_rows, merged_timings
from fanout_cli.errors import StoreError, UsageError
from fanout_cli.layers import OptionError, build_config
from fanout_cli.models import Prior, RunReport, Verdict
from fanout_cli.redact import redact_words
from fanout_cli.render.console import warn
from fanout_cli.render.junit import write_run_junit
from fanout_cli.results import MergeResult, SourceRun
from fanout_cli.shards.coverage import check_coverage
from fanout_cli.shards.record import plan_summary, write_plan
from fanout_cli.strategies import STRATEGIES, StrategyOptions, Tracker
from fanout_cli.timings import (
    Timings,
    timings_from_runs,
    write_timings,
)

FORMATS = ("human", "json", "aop")
# What a strategy reads from a run's options; the rest of a run's options (jobs,
# timeouts) says how it ran, not how it is judged.
_STRATEGY_OPTIONS = ("strategy", "required_successes", "min_successes", "min_success_ratio")


# --- the verdict --------------------------------------------------------------------


def strategy_for(runs: Sequence[SourceRun], options: Mapping[str, str | None]) -> StrategyOptions:
    """The merge command's strategy options, else the ones the runs agree on."""
    given = {name: options.get(name) for name in _STRATEGY_OPTIONS}
    strategy = given["strategy"] or _agreed(runs, "strategy", "all-succeed")
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise UsageError(f"--strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}")
    relevant = STRATEGIES[strategy].threshold_options
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
        name=config.verdict.strategy,
        required_successes=config.verdict.required_successes,
        min_successes=config.verdict.min_successes,
        min_success_ratio=config.verdict.min_success_ratio,
        score_source=_score_source(runs),
    )


def _score_source(runs: Sequence[SourceRun]) -> str | None:
    """Whether any run asked for scores (best-of-n then fails when none has one)."""
    for run in runs:
        if run.options.get("scorer"):
            return "--scorer"
        if run.options.get("score"):
            return "--score REGEX"
    return None


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


def _shard_order(run: SourceRun) -> tuple[int, float]:
    return (0 if run.shard is None else run.shard.index, run.started_at)


# --- fanout merge ---------------------------------------------------------------------


def merge_runs(
    runs: list[str],
    output_dir: Path,
    options: dict[str, str | None],
    *,
    junit: str | None,
    timings_out: str | None,
    timing_files: Sequence[str] = (),
) -> MergeResult:
    """Merge the runs into a new run of `output_dir` (and --junit, --timings-out files).
    The merged timings are those of the --timings files (the history), then the runs'."""
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
    coverage = check_coverage(by_age)  # the plan records: every task once, planned alike
    if coverage.warning is not None:
        warn(coverage.warning)
    problems += [coverage.reason] if coverage.reason is not None else []
    if problems:
        verdict = replace(verdict, passed=False, reason=f"{verdict.reason}; {'; '.join(problems)}",
                          problems=coverage.details)  # fmt: skip
    timings = _history(timing_files)  # older than the runs' durations
    timings.merge(merged_timings(by_age))
    sources = sorted(by_age, key=_shard_order)
    report = write_merged_run(output_dir, sources, rows, verdict, strategy, timings,
                              coverage.plan)  # fmt: skip
    if junit is not None:
        write_run_junit(junit, report, rows, {"merged_from": str(len(sources))})
    if timings_out is not None:
        _write_timings(timings_out, timings, "--timings-out")
    return MergeResult(report, tuple(sources), tuple(rows))


def _tokens(rows: Sequence[Mapping[str, Any]]) -> dict[str, int] | None:
    """The merged tasks' token usage, from their rows (fanout_cli.tokens)."""
    from fanout_cli.tokens import TokenTotals

    totals = TokenTotals()
    for row in rows:
        totals.add(row.get("tokens"))
    return totals.document()


def write_merged_run(
    output_dir: Path,
    sources: Sequence[SourceRun],
    rows: Sequence[dict[str, Any]],
    verdict: Verdict,
    strategy: StrategyOptions,
    timings: Timings,
    plan: Mapping[str, Any] | None = None,
) -> RunReport:
    """The new run folder: manifest.json, journal.jsonl, timings.json, and plan.json
    when the shards agreed on one; `sources` in the order to list them (by shard)."""
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
        rows=lambda: ({**row, **_files_beside(row)} for row in rows),
        started_at=started_at,
        finished_at=finished_at,
        title=(
            f"fanout merge of {len(sources)} run{'s' * (len(sources) != 1)}: "
            f"{count} task{'s' * (count != 1)}, {strategy.name}"
        ),
        tokens=_tokens(rows),
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
    if plan is not None:
        write_plan(folder, plan)
        header["plan"] = plan_summary(plan)
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


def _files_beside(row: dict[str, Any]) -> dict[str, str | None]:
    """The row's details and stdout files by absolute path (a stdout file that is not a
    plain name, which fanout never writes, is left out)."""
    stdout = row.get("stdout_file")
    return {
        "details_file": _beside(row["run_dir"], row.get("details_file")),
        "stdout_file": _beside(row["run_dir"], stdout) if is_plain_name(stdout) else None,
    }


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


def _history(timing_files: Sequence[str]) -> Timings:
    """The --timings files' durations (fanout_cli.timings_files): a missing file is a
    warning, as in `fanout run --timings` (a first pipeline has none)."""
    if not timing_files:
        return Timings()
    from fanout_cli.timings_files import read_timings

    return read_timings(timing_files)


# --- fanout timings export ------------------------------------------------------------


def export_timings(
    runs: list[str], output_dir: Path, output: str, timing_files: Sequence[str]
) -> Timings:
    """The --timings files, then the runs (oldest first; with none named, the output
    dir's recent runs), as one timings file, written at `output` unless it is `-`
    (stdout: the caller prints what this returns)."""
    if output != "-":
        _check_folder("--output", output)
    timings = _history(timing_files)
    if runs:
        timings.merge(merged_timings(load_runs(runs, output_dir)))
    else:
        timings.merge(timings_from_runs(output_dir, shards=True))
    if output != "-":
        _write_timings(output, timings, "--output")
    return timings


def merged_manifest_header(
    report: RunReport,
    *,
    merged_from: list[str],
    argv: list[str],
    options: Mapping[str, Any],
    stamps: tuple[str | None, str | None],
) -> dict[str, Any]:
    """The manifest of a merge of runs (`fanout merge`), stamped now; `stamps` are the
    first source's start and the last one's end as their manifests spelled them."""
    return {
        "fanout_manifest_version": MANIFEST_VERSION,
        "run_id": report.run_id,
        "status": "finished",
        "merged_from": merged_from,
        "argv": redact_words(argv),
        "cwd": os.getcwd(),
        "options": options,
        "started_at": stamps[0] or iso_time(report.started_at),
        "finished_at": stamps[1] or iso_time(report.finished_at),
        "duration_ms": round(report.duration * 1000),
        "merged_at": iso_time(time.time()),
        "verdict": verdict_document(report),
        "tokens": None if report.tokens is None else dict(report.tokens),
    }
