"""The shard runs `fanout merge` and `fanout timings export` read: finding them, loading
their task rows, and fanning those rows back into one list.

A run's files are read through aop.reader; each row is completed with the `run_dir` its
details and output files are in and the shard it ran in."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from fanout_cli import history
from fanout_cli.aop import RunFolder, reader
from fanout_cli.aop.documents import json_bytes, parse_time
from fanout_cli.aop.files import RunFolderError
from fanout_cli.errors import UsageError
from fanout_cli.models import TaskStatus
from fanout_cli.render.console import warn
from fanout_cli.results import SourceRun
from fanout_cli.shards.record import read_plan
from fanout_cli.timings import Timings
from fanout_cli.values import Shard, parse_shard

# Folders between a named folder and the run folders it holds:
# artifacts/ shard-2/ .cache/ agent-outputs/ <run-id>/ is three in between.
SEARCH_DEPTH = 3
# Task row fields the journal has and the manifest leaves out: a duplicate is told
# by its key, and best-of-n and majority-vote read score and vote_key.
_JOURNAL_FIELDS = ("key", "kind", "reason", "score", "vote_key", "interrupted",
                   "scorer_error", "tokens")  # fmt: skip
_STATUSES = frozenset(str(status) for status in TaskStatus)


# --- finding and reading runs ---------------------------------------------------------


def find_runs(names: Sequence[str], output_dir: Path) -> dict[Path, bool]:
    """The run folders the names stand for, each once, in the order given: a run id,
    unique prefix or `last` of the output dir, a run folder, or a folder holding run
    folders (downloaded CI artifacts), searched SEARCH_DEPTH folders deep. Each says
    whether it was named (True) or found in a folder (False: skipped with a warning
    when it cannot be read)."""
    found: dict[Path, bool] = {}
    for name in names:
        folder = Path(name)
        if folder.is_dir() and not reader.is_run_folder(folder):
            held = _run_folders_under(folder, SEARCH_DEPTH)
            if not held:
                raise UsageError(
                    f"{name}: no run folders in it (looked {SEARCH_DEPTH + 1} levels deep)"
                )
            found.update(dict.fromkeys(held, False))
        else:
            found[history.resolve_run(output_dir, name).absolute()] = True
    return found


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
            try:
                merged = "merged_from" in reader.read_manifest_header(child)
            except RunFolderError as exc:
                warn(f"{exc.message}; skipped")
                continue
            if not merged:
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
    plan = read_plan(run_dir)  # a corrupt one is the run's RunFolderError, as a manifest's
    return SourceRun(run_dir, info.status, started_at, finished_at, options, shard, rows, stamps,
                     plan)


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
        raise RunFolderError(
            f"{RunFolder(run_dir).manifest}: {problem}: {json_bytes(row).decode()[:200]}"
        )
    if row.get("details_file") is not None:
        reader.details_file_name(run_dir, row["details_file"])
    return {
        **row,
        "run_dir": str(history.task_folder(run_dir, row)),
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
    """The runs the names stand for, oldest first. One found in a folder that cannot
    be read is skipped with a warning; one named is an error (RunFolderError)."""
    runs = []
    for path, named in find_runs(names, output_dir).items():
        try:
            runs.append(load_run(path))
        except RunFolderError as exc:
            if named:
                raise
            warn(f"{exc.message}; skipped")
    if not runs:
        raise UsageError("no run to merge: every run found was skipped")
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


def merged_timings(runs: Sequence[SourceRun]) -> Timings:
    """Every duration the runs recorded, oldest run first (the newest status wins)."""
    timings = Timings()
    for run in runs:
        timings.add_rows(run.rows)
    return timings
