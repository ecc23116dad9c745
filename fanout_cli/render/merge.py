"""`fanout merge` and `fanout timings export -o -`, printed from what the commands return."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fanout_cli.aop.documents import json_bytes
from fanout_cli.render.console import Console
from fanout_cli.render.lines import display_path, format_seconds, verdict_line
from fanout_cli.render.machine import print_report

if TYPE_CHECKING:  # the types only, not their modules
    from fanout_cli.results import MergeResult
    from fanout_cli.timings import Timings

# --format aop of a merge: the run's defaults (--max-lines, --summary-chars).
AOP_MAX_LINES = 50
AOP_LINE_CHARS = 500


def render_merge(
    console: Console, result: MergeResult, output_format: str, *, quiet: bool = False
) -> None:
    """The merged run as human lines, the JSON envelope (`json`) or the AOP block (`aop`);
    `quiet` (-q): the verdict line only, whatever the format, as `fanout run -q`."""
    if quiet:
        console.line(verdict_line(result.report, console))
    elif output_format == "human":
        print_merge(console, result)
    else:
        print_report(console, result.report, output_format, AOP_MAX_LINES, AOP_LINE_CHARS)


def print_merge(console: Console, result: MergeResult) -> None:
    """A line per merged run, a line per task that did not succeed (the shard jobs
    printed the rest already), then the verdict line."""
    for run in result.sources:
        shard = f"shard {run.shard}, " if run.shard is not None else ""
        tasks = len(run.rows)
        console.line(
            f"merged {run.run_id} ({shard}{run.status}): {tasks} task{'s' * (tasks != 1)} · "
            f"{display_path(str(run.path))}"
        )
    for row in result.rows:
        if row["status"] == "success":
            continue
        duration = format_seconds((row.get("duration_ms") or 0) / 1000)
        console.line(f"{row['status']:<9} {row['task_id']}  {duration}  {row.get('summary')}")
    for problem in result.report.verdict.problems:  # what merge's coverage check found
        console.line(problem)
    console.line(verdict_line(result.report, console))


def print_timings(console: Console, timings: Timings) -> None:
    """A timings file's JSON, as `fanout timings export` writes it to a file."""
    console.write_bytes(json_bytes(timings.document(), indent=2) + b"\n")
