"""The commands that read and tidy the output folder: runs, show, report, cat, clean, merge
and timings export. Plain functions with Typer's annotations; cli.py registers them on the
app (this module does not import cli.py), so each stays a few lines of parsing that
hand a request to its command in fanout_cli.commands."""

# No `from __future__ import annotations` here: Typer evaluates the annotations.
from pathlib import Path
from typing import Annotated

import typer

from fanout_cli.errors import EXIT_FAIL, EXIT_PASS
from fanout_cli.values import default_output_dir

OutputDir = Annotated[
    str | None,
    typer.Option("--output-dir", metavar="DIR",
                 help="Where runs are kept (env FANOUT_OUTPUT_DIR). [default: .cache/agent-outputs]"),
]  # fmt: skip


# What a --timings value may be (fanout_cli/timings_files.py); `fanout run --timings` says it too.
TIMINGS_VALUES = (
    "Names and globs (expanded by fanout, sorted; ** goes into folders), comma-separated; a "
    "value naming an existing file is that file. Repeatable; later files are newer, the runs "
    "newest; no file is a warning."
)


def _output_dir(value: str | None) -> Path:
    return Path(value or default_output_dir())


def runs(
    output_dir: OutputDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a run.")] = False,
) -> None:
    """List the runs in the output folder, newest first.

    Example: fanout runs
    """
    from fanout_cli.commands.runs import list_runs
    from fanout_cli.render.console import Console
    from fanout_cli.render.runs import print_runs

    print_runs(Console(), list_runs(_output_dir(output_dir)), as_json=as_json)


def show(
    run: Annotated[str, typer.Argument(metavar="RUN", help=(
        "A run id, a unique prefix, last, or the path of a run folder or of a file in one "
        "(the manifest a verdict line prints; a task's details or output file)."))],
    task: Annotated[str | None, typer.Argument(metavar="[TASK]", help=(
        "A task id (a trailing slash or not), a unique prefix of one, a seq number, or "
        "its details or output file's name or path."))] = None,
    as_json: Annotated[bool, typer.Option("--json", help=(
        "The task's whole record (its details document); with no TASK, one JSON "
        "object a task."))] = False,
    output_dir: OutputDir = None,
) -> None:
    """Print a run's table, or one task's header and its full stdout and stderr.

    RUN: a run id, a unique prefix, last, or a path (a run folder, its manifest.json, a
    task's file). TASK: an id (with or without a trailing slash), a seq number, a
    details or output file's name or path, or a unique prefix of an id.

    A task's few header lines (status, id, seq, how it ended, duration, attempts, the
    command as a shell reads it, summary, the paths of its files) come first, then its
    stdout and its stderr byte for byte, each under a line naming it.

    Examples: fanout show last; fanout show last unit; fanout show last 3; fanout show
    .cache/agent-outputs/20261122T101530-3f9a/manifest.json lint/
    """
    from fanout_cli.commands.runs import show_run, show_target, show_task
    from fanout_cli.render import runs as render
    from fanout_cli.render.console import Console

    folder = _output_dir(output_dir)
    run, task = show_target(run, task)
    if task is None:
        view = show_run(folder, run)
        (render.print_rows_json if as_json else render.print_run)(Console(), view)
    else:
        found = show_task(folder, run, task)
        (render.print_task_json if as_json else render.print_task)(Console(), found)


def report(
    run: Annotated[str, typer.Argument(metavar="RUN", help=(
        "A run id, a unique prefix, last, or the path of a run folder or its manifest.json; "
        "a merged run (fanout merge) draws its shards side by side."))],
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="FILE", help=(
        "Write the page here (- for stdout), its links relative to FILE's folder. "
        "[default: RUN's folder/report.html]"))] = None,
    output_dir: OutputDir = None,
) -> None:
    """Write a run's report: one self-contained HTML page to open in a browser.

    A timeline with a lane per slot and a bar per attempt (coloured by status, back-off
    and rate-limit waits marked, each bar linked to its task's details file), the
    failures first, the slowest tasks, a histogram of durations, the shards' planned and
    actual times, and a table of every attempt. No request leaves the page; it reads
    without script. It reads the run folder only, after the run or while it runs.

    Exit status: 0 written (a warning for each part of the run that could not be read,
    which the page also names), 2 no such run or not a run folder, 74 cannot write FILE.

    Examples: fanout report last; fanout report last -o public/report.html
    """
    from fanout_cli.commands.report import write_report
    from fanout_cli.render.console import Console
    from fanout_cli.render.runs import print_report

    print_report(Console(), write_report(_output_dir(output_dir), run, output))


def cat(
    run: Annotated[str, typer.Argument(
        metavar="RUN", help="A run id, a unique prefix, last, or a run folder or its manifest.json.")],
    tasks: Annotated[list[str] | None, typer.Argument(
        metavar="[TASK...]", help="Only these tasks (id, seq number or details file name), "
                                  "in the order given. [default: every task, in input order]")] = None,
    stderr: Annotated[bool, typer.Option(
        "--stderr", help="Print the tasks' stderr instead of their stdout (on stdout, for a pipe).")] = False,
    tag: Annotated[bool, typer.Option(
        "--tag", help="Prefix each line with the task's values and a TAB, as parallel --tag.")] = False,
    status: Annotated[list[str] | None, typer.Option(
        "--status", metavar="STATUS", help="Only tasks that ended so: success, failure, timeout, "
                                           "cancelled or error (repeatable, or comma-separated).")] = None,
    output_dir: OutputDir = None,
) -> None:
    """Print what the tasks of a run printed: each task's stdout, in input order.

    Only the final attempt of a retried task; the bytes exactly as the task wrote them,
    read from the run folder as they are printed, at any number of tasks. A task that
    never started prints nothing. A run still going prints the tasks that have ended
    (and says so on stderr).

    Examples: fanout cat last; fanout cat last --status failure --stderr; fanout cat last 3 lint
    """
    from fanout_cli.commands.cat import cat_run, parse_statuses
    from fanout_cli.render.cat import print_outputs
    from fanout_cli.render.console import Console

    chosen = parse_statuses(status or [])
    found = cat_run(_output_dir(output_dir), run, tasks or [], stream="stderr" if stderr else "stdout",
                    statuses=chosen, tag=tag)  # fmt: skip
    print_outputs(Console(), found)


def clean(
    older_than: Annotated[str | None, typer.Option("--older-than", metavar="DUR",
                          help="Remove runs started longer ago than DUR (7d, 12h).")] = None,
    keep: Annotated[int | None, typer.Option("--keep", metavar="N", min=0,
                    help="Keep the newest N runs; remove the rest.")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Remove every run.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go; remove nothing.")] = False,
    output_dir: OutputDir = None,
) -> None:
    """Remove whole run folders from the output folder, and nothing else.

    With both --older-than and --keep, a run goes when it is older and not among the
    newest N. Runs still in progress are never removed.

    Examples: fanout clean --older-than 7d; fanout clean --keep 20
    """
    from fanout_cli.commands.runs import clean_runs
    from fanout_cli.render.console import Console
    from fanout_cli.render.runs import print_clean

    result = clean_runs(
        _output_dir(output_dir), older_than=older_than, keep=keep, everything=everything,
        dry_run=dry_run,
    )
    print_clean(Console(), result)
    if result.error is not None:
        raise result.error


def merge(
    runs: Annotated[list[str], typer.Argument(metavar="RUN_OR_DIR...",
                    help="Runs to merge: run ids, run folders, or folders holding run folders "
                         "(downloaded CI artifacts).")],
    junit: Annotated[str | None, typer.Option(metavar="FILE",
                     help="Also write the merged run as JUnit XML.")] = None,
    timings_out: Annotated[str | None, typer.Option("--timings-out", metavar="FILE",
                           help="Also write the merged timings here, for the next --shard.")] = None,
    timings: Annotated[list[str] | None, typer.Option("--timings", metavar="FILES",
                       help="History to keep in --timings-out: the last merge's --timings-out "
                            f"(or timings JSON, manifest.json, JUnit XML). {TIMINGS_VALUES}")] = None,
    strategy: Annotated[str | None, typer.Option(metavar="S",
                        help="Verdict strategy. [default: the one the runs used]")] = None,
    required_successes: Annotated[str | None, typer.Option("--required-successes", metavar="N",
                                  help="first-n-succeed: successes needed.")] = None,
    min_successes: Annotated[str | None, typer.Option("--min-successes", metavar="N",
                             help="partial-success: successes needed.")] = None,
    min_success_ratio: Annotated[str | None, typer.Option("--min-success-ratio", metavar="R",
                                 help="partial-success: share of all tasks needed, 0-1.")] = None,
    output_format: Annotated[str | None, typer.Option("--format", metavar="F",
                             help="human, aop or json. [default: human]")] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print the verdict line only (whatever --format).")] = False,
    output_dir: OutputDir = None,
) -> None:
    """Fan shard runs back in: one manifest, one verdict, one JUnit file, merged timings.

    The merged run is a new folder in the output dir (its manifest lists every task
    with the folder its files are in). A task found in several runs counts once: the
    newest run's result.

    With --timings, --timings-out holds that history followed by the runs' durations
    (the last 20 a task), so that estimates see more than one pipeline.

    Exit status: 0 verdict pass, 1 verdict fail, 2 usage error.

    Example: fanout merge artifacts/ --junit report.xml --timings timings.json --timings-out timings.json
    """
    from fanout_cli.commands.merge import merge_runs
    from fanout_cli.render.console import Console
    from fanout_cli.render.merge import render_merge

    options = {
        "strategy": strategy, "required_successes": required_successes,
        "min_successes": min_successes, "min_success_ratio": min_success_ratio,
        "format": output_format,
    }  # fmt: skip
    result = merge_runs(runs, _output_dir(output_dir), options, junit=junit,
                        timings_out=timings_out, timing_files=timings or [])  # fmt: skip
    render_merge(Console(), result, output_format or "human", quiet=quiet)
    raise typer.Exit(EXIT_PASS if result.passed else EXIT_FAIL)


def timings_export(
    runs: Annotated[list[str] | None, typer.Argument(metavar="[RUN_OR_DIR...]",
                    help="Runs to read. [default: the newest 30 finished runs of the output dir]")] = None,
    output: Annotated[str, typer.Option("-o", "--output", metavar="FILE",
                      help="Where to write the timings JSON (- for stdout).")] = "-",
    timings: Annotated[list[str] | None, typer.Option("--timings", metavar="FILES",
                       help="Timings to start from: timings JSON, manifest.json or JUnit XML. "
                            f"{TIMINGS_VALUES}")] = None,
    output_dir: OutputDir = None,
) -> None:
    """Write the recorded durations of runs as one timings file.

    CI caches the file between pipelines and passes it to every shard with --timings,
    so that all shards plan from the same data.

    Example: fanout timings export -o .fanout-timings.json
    """
    from fanout_cli.commands.merge import export_timings
    from fanout_cli.render.console import Console
    from fanout_cli.render.merge import print_timings

    exported = export_timings(runs or [], _output_dir(output_dir), output, timings or [])
    if output == "-":
        print_timings(Console(), exported)
