"""The command line: parse options into a RunConfig, wire the stages, map errors to exit codes."""

# No `from __future__ import annotations` here: Typer would eval every annotation
# string on each start (measured: ~20 ms); real annotations cost nothing.
import os
import signal
import sys
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperCommand

from fanout_cli import __version__
from fanout_cli.config import STRATEGIES, RunConfig, default_output_dir
from fanout_cli.errors import (
    EXIT_FAIL,
    EXIT_PASS,
    EXIT_SIGINT,
    EXIT_USAGE,
    FanoutError,
    OutputClosedError,
    UsageError,
)
from fanout_cli.models import AgentCall
from fanout_cli.sources import SourceRequest, split_command

EXIT_INTERNAL = 70  # a bug in fanout (EX_SOFTWARE); FANOUT_DEBUG=1 shows the traceback
COMMAND_KEY = "fanout.command"
VALUES_KEY = "fanout.values"


class RunCommand(TyperCommand):
    """`fanout run` keeps everything after the first `--` as the command template, and
    (for agent tasks, which have no command) the values after a `:::` with no `--`."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]  # typer's Context is click's
        if "--" in args:
            split = args.index("--")
            ctx.meta[COMMAND_KEY] = args[split + 1 :]
            args = args[:split]
        elif ":::" in args:
            split = args.index(":::")
            ctx.meta[VALUES_KEY] = args[split:]
            args = args[:split]
        return super().parse_args(ctx, args)


app = typer.Typer(
    name="fanout",
    help="Run shell and agent jobs in parallel, keep every output, print one verdict.",
    add_completion=True,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fanout {__version__}")
        raise typer.Exit(EXIT_PASS)


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Run shell and agent jobs in parallel, keep every output, print one verdict."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help(), err=True)
        raise typer.Exit(EXIT_USAGE)


Text = str | None


@app.command(cls=RunCommand)
def run(
    ctx: typer.Context,
    taskfile: Annotated[Text, typer.Argument(metavar="TASKFILE", help="TOML task list.", show_default=False)] = None,
    jobs: Annotated[Text, typer.Option("-j", "--jobs", metavar="N",
                    help="Tasks in flight at once (a sliding window). [default: CPU count]")] = None,
    timeout: Annotated[Text, typer.Option(metavar="DUR",
                       help="Per task: 500ms, 30s, 5m, 1h; a bare number is seconds.")] = None,
    grace: Annotated[Text, typer.Option(metavar="DUR",
                     help="Between SIGTERM and SIGKILL of a task's process group. [default: 5s]")] = None,
    deadline: Annotated[Text, typer.Option(metavar="DUR",
                        help="Whole run; unfinished tasks end as timeout.")] = None,
    ok_exit: Annotated[Text, typer.Option("--ok-exit", metavar="CODES",
                       help="Exit codes that count as success, e.g. 0,1 for grep. [default: 0]")] = None,
    retries: Annotated[Text, typer.Option(metavar="N",
                       help="Extra attempts for a failed or timed-out task. [default: 0]")] = None,
    retry_delay: Annotated[Text, typer.Option("--retry-delay", metavar="DUR",
                           help="First back-off before a retry; doubles each time, jittered. [default: 1s]")] = None,
    strategy: Annotated[Text, typer.Option(metavar="S",
                        help=f"Verdict: {', '.join(STRATEGIES)}. [default: all-succeed]")] = None,
    fail_fast: Annotated[bool | None, typer.Option("--fail-fast/--no-fail-fast",
                         help="all-succeed: stop at the first failure.", show_default=False)] = None,
    required_successes: Annotated[Text, typer.Option("--required-successes", metavar="N",
                                  help="first-n-succeed: pass once N succeed. [default: 1]")] = None,
    min_successes: Annotated[Text, typer.Option("--min-successes", metavar="N",
                             help="partial-success: successes needed. [default: 1]")] = None,
    min_success_ratio: Annotated[Text, typer.Option("--min-success-ratio", metavar="R",
                                 help="partial-success: share of all tasks needed, 0-1.")] = None,
    score: Annotated[Text, typer.Option(metavar="REGEX",
                     help="best-of-n: the score is group 1 of the last match in stdout. "
                          "[default: the [AOP:SCORE] line]")] = None,
    scorer: Annotated[Text, typer.Option(metavar="CMD",
                      help="best-of-n: a command given the details file path; prints the score.")] = None,
    vote_on: Annotated[Text, typer.Option("--vote-on", metavar="WHAT",
                       help="majority-vote key: stdout, summary, exit-code, or a REGEX (group 1). "
                            "[default: stdout]")] = None,
    output_dir: Annotated[Text, typer.Option("--output-dir", metavar="DIR",
                          help="Where runs are kept (env FANOUT_OUTPUT_DIR). "
                               "[default: .cache/agent-outputs]")] = None,
    run_id: Annotated[Text, typer.Option("--run-id", metavar="ID",
                      help="Name of this run's folder. [default: time-based, unique]")] = None,
    output_format: Annotated[Text, typer.Option("--format", metavar="F",
                             help="human, aop, json or jsonl. [default: human]")] = None,
    summary_chars: Annotated[Text, typer.Option("--summary-chars", metavar="N",
                             help="Cap of each task's summary. [default: 500]")] = None,
    max_lines: Annotated[Text, typer.Option("--max-lines", metavar="N",
                         help="--format aop: task lines in the summary. [default: 50]")] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress",
                        help="Live progress on stderr, and a table of the tasks at the end. "
                             "[default: when stdout and stderr are the terminal, not in CI]",
                        show_default=False)] = None,
    color: Annotated[Text, typer.Option(metavar="WHEN",
                     help="Colour: auto, always or never (auto respects NO_COLOR; always "
                          "and never override it). [default: auto]")] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet",
                     help="Print the verdict line only.", show_default=False)] = False,
    glob: Annotated[list[str] | None, typer.Option("--glob", metavar="PATTERN",
                    help="Task source: one task per matching path (repeatable; ** recurses; "
                         "sorted; hidden files only when the pattern names them).")] = None,
    null: Annotated[bool, typer.Option("-0", "--null",
                    help="Values on stdin are NUL-separated (find -print0).")] = False,
    shell: Annotated[bool, typer.Option("--shell",
                     help="Run the command under sh -c (values are shell-quoted).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run",
                       help="Print each command that would run, shell-quoted; run nothing.")] = False,
    resume: Annotated[str | None, typer.Option("--resume", metavar="RUN",
                      help="Run only the tasks of RUN (an id, or last) that have no result yet, "
                           "into RUN. With a task source, match it to RUN's results.")] = None,
    resume_failed: Annotated[str | None, typer.Option("--resume-failed", metavar="RUN",
                             help="Like --resume, and also re-run RUN's failed, timed-out, "
                                  "cancelled and error tasks.")] = None,
    shard: Annotated[Text, typer.Option(metavar="I/N",
                     help="Run only shard I of N (1-based), balanced by recorded durations "
                          "(env FANOUT_SHARD, or CI_NODE_INDEX/CI_NODE_TOTAL and the like).")] = None,
    timings: Annotated[list[str] | None, typer.Option("--timings", metavar="FILE",
                       help="Recorded durations for --shard and --order: fanout timings JSON, a "
                            "manifest.json or JUnit XML (repeatable). [default: earlier runs in "
                            "the output dir]")] = None,
    order: Annotated[Text, typer.Option(metavar="ORDER",
                     help="input, longest-first or failed-first (by recorded durations and "
                          "results). [default: input]")] = None,
    junit: Annotated[Text, typer.Option(metavar="FILE",
                     help="Also write the run as JUnit XML, one testcase per task.")] = None,
    executor: Annotated[Text, typer.Option(metavar="E",
                        help="local, or dask://HOST:PORT: run process tasks on a Dask cluster "
                             "(pip install 'fanout-cli[dask]'). [default: local]")] = None,
    resources: Annotated[list[str] | None, typer.Option("--resources", metavar="NAME=N",
                         help="Dask: a worker resource every task needs, e.g. GPU=1 "
                              "(repeatable).")] = None,
    rate: Annotated[Text, typer.Option(metavar="N/PERIOD",
                    help="Start at most N attempts per PERIOD, run-wide: 60/min, 5/s, 10/30s.")] = None,
    agent: Annotated[bool, typer.Option("--agent",
                     help="Tasks are LLM calls: each value fills --prompt (or is the prompt).")] = False,
    prompt: Annotated[Text, typer.Option(metavar="TEMPLATE",
                      help="Agent tasks: the prompt, with {} {.} {/} {#} ... filled from each "
                           "value. Implies --agent.")] = None,
    agent_cli: Annotated[Text, typer.Option("--agent-cli", metavar="TOOL",
                         help="Tasks run a headless agent CLI with --prompt: claude, codex, llm "
                              "or aider.")] = None,
    provider: Annotated[Text, typer.Option(metavar="NAME",
                        help="Agent tasks: openai, anthropic, or a name from [agent.providers] "
                             "(env FANOUT_PROVIDER). [default: openai]")] = None,
    model: Annotated[Text, typer.Option(metavar="MODEL",
                     help="Agent tasks: the model (env FANOUT_MODEL).")] = None,
    system: Annotated[Text, typer.Option(metavar="TEXT",
                      help="Agent tasks: the system prompt.")] = None,
    temperature: Annotated[Text, typer.Option(metavar="T",
                           help="Agent tasks: sampling temperature, 0-2.")] = None,
    max_tokens: Annotated[Text, typer.Option("--max-tokens", metavar="N",
                          help="Agent tasks: reply length cap. [default: the server's; 1024 "
                               "for anthropic]")] = None,
    base_url: Annotated[Text, typer.Option("--base-url", metavar="URL",
                        help="Agent tasks: the provider's URL, e.g. http://127.0.0.1:8080/v1 "
                             "for a local OpenAI-compatible server.")] = None,
    attach: Annotated[list[str] | None, typer.Option("--attach", metavar="TEMPLATE",
                      help="Agent tasks: append this file's contents to the prompt "
                           "(repeatable; {} etc. filled from each value).")] = None,
) -> None:
    """Run tasks in parallel and print one verdict.

    Tasks come from exactly one source: a TOML TASKFILE, ::: VALUE... after the
    command, --glob PATTERN, or values on stdin, one a line. The command after -- takes
    GNU parallel's replacement strings {} {.} {/} {//} {/.} {#} {%} ({{}} is a literal
    {}); without one, the value is appended. Several words run without a shell; a
    single word with shell syntax, or --shell, runs under sh -c with values quoted.

    Agent tasks: --prompt 'TEMPLATE' makes each value an LLM call (OpenAI-compatible
    or Anthropic; set [agent] in a task file, or --provider/--model/--base-url);
    --agent-cli TOOL runs claude, codex, llm or aider headless instead.

    Sharding: --shard I/N runs one of N parts balanced by recorded durations;
    --junit FILE writes JUnit XML; fanout merge joins the parts. --executor
    dask://HOST:PORT runs the processes on a Dask cluster.

    Exit status: 0 verdict pass, 1 verdict fail, 2 usage or task-file error,
    130 interrupted (128 + the signal; 141 when stdout is closed).

    Examples:

      fanout run tasks.toml -j 8 --timeout 5m --format aop

      find . -name '*.py' | fanout run -- ruff check {}

      fanout run --glob '*/' --ok-exit 0,1 --strategy partial-success -- rg -c TODO {}

      fanout run -- 'gzip -c {} > {}.gz' ::: a.log b.log

      fanout run --prompt 'Summarise {}' --attach {} --model gpt-4o-mini ::: a.md b.md

      fanout run tests.toml --shard 2/4 --timings timings.json --junit junit.xml
    """
    command_line = {
        "jobs": jobs, "timeout": timeout, "grace": grace, "deadline": deadline,
        "ok_exit": ok_exit, "retries": retries, "retry_delay": retry_delay,
        "strategy": strategy, "fail_fast": fail_fast,
        "required_successes": required_successes, "min_successes": min_successes,
        "min_success_ratio": min_success_ratio, "score": score, "scorer": scorer,
        "vote_on": vote_on, "output_dir": output_dir, "run_id": run_id,
        "format": output_format, "summary_chars": summary_chars, "max_lines": max_lines,
        "quiet": quiet or None,  # not given: [run] quiet may still apply
        "rate": rate, "shard": shard, "timings": timings or None, "order": order,
        "junit": junit, "progress": progress, "color": color, "executor": executor,
        "resources": resources or None,
    }  # fmt: skip
    agent_options = {
        "provider": provider, "model": model, "system": system, "temperature": temperature,
        "max_tokens": max_tokens, "base_url": base_url,
    }  # fmt: skip
    call = agent_call(agent, prompt, agent_cli, attach)
    words = ctx.meta.get(COMMAND_KEY)
    if ctx.meta.get(VALUES_KEY) is not None:
        if call is None:
            raise UsageError("put the command after --: fanout run [OPTIONS] -- COMMAND {} ::: VALUE...")
        words = ctx.meta[VALUES_KEY]
    command, values = split_command(words) if words is not None else (None, None)
    request = SourceRequest(
        taskfile=taskfile,
        command=command,
        values=values,
        globs=tuple(glob or ()),
        null_separated=null,
        shell=shell,
        agent=call,
    )
    if resume is not None and resume_failed is not None:
        raise UsageError("give --resume or --resume-failed, not both")
    resume_name = resume or resume_failed
    resuming = None if resume_name is None else (resume_name, resume_failed is not None)
    raise typer.Exit(execute_run(
        request, command_line, dry_run=dry_run, resuming=resuming, agent_options=agent_options
    ))


def agent_call(
    agent: bool, prompt: str | None, tool: str | None, attach: list[str] | None
) -> AgentCall | None:
    """The agent call the options describe (prompt and attach are templates), or None."""
    if tool is not None:
        from fanout_cli.agent_cli import TOOLS

        if tool not in TOOLS:
            raise UsageError(f"--agent-cli: expected one of {', '.join(TOOLS)}, got {tool!r}")
        if prompt is None:
            raise UsageError("--agent-cli needs --prompt 'TEMPLATE' (the values fill {})")
        if agent:
            raise UsageError("give --agent (HTTP calls) or --agent-cli TOOL, not both")
        if attach:
            raise UsageError("--attach applies to --agent calls; name the files in the "
                             "prompt for an agent CLI, which reads them itself")
    elif not (agent or prompt is not None):
        if attach:
            raise UsageError("--attach applies to agent tasks: add --prompt 'TEMPLATE'")
        return None
    if prompt is not None and not prompt.strip():
        raise UsageError("--prompt is empty")
    return AgentCall(prompt=prompt or "{}", attach=tuple(attach or ()), tool=tool)


def execute_run(
    request: SourceRequest,
    command_line: dict[str, Any],
    *,
    dry_run: bool,
    resuming: tuple[str, bool] | None = None,
    agent_options: dict[str, Any] | None = None,
) -> int:
    """Run (or resume) the tasks of one source; `resuming` is (RUN, rerun_failed)."""
    # Imported here so that `fanout --help` does not pay for the engine.
    from fanout_cli.executors import Executor
    from fanout_cli.executors.process import ProcessExecutor
    from fanout_cli.prepare import prepare_run
    from fanout_cli.render.choose import make_renderer
    from fanout_cli.render.console import Console
    from fanout_cli.render.lines import print_dry_run, print_shard_plan
    from fanout_cli.runner import run_tasks

    prepared = prepare_run(request, command_line, resuming, stdin_is_terminal(), agent_options)
    if dry_run:
        if prepared.shards is not None:
            print_shard_plan(Console(), prepared.shards, prepared.config.shard, prepared.known)
        print_dry_run(Console(), prepared.source.commands(prepared.config.jobs))
        return EXIT_PASS
    renderer = make_renderer(
        prepared.config,
        Console(color=color_choice(prepared.config.color)),
        # On --resume, results that stand are not reported again: no total to count to.
        total=None if prepared.resume is not None else prepared.source.total,
    )
    executor: Executor = ProcessExecutor()
    if prepared.config.executor != "local":
        from fanout_cli.executors.dask import connect_executor

        # Connects (or exits 2 within seconds) before the run folder is made.
        executor = connect_executor(prepared.config)
    options = options_document(prepared.config)
    if prepared.agents is not None:
        from fanout_cli.executors.agent import AgentExecutor

        executor = AgentExecutor(
            prepared.agents, executor, connections=prepared.config.jobs, http=prepared.http_calls
        )
        options["agent"] = prepared.agents.document()
    report = run_tasks(
        prepared.config,
        prepared.source,
        executor,
        renderer,
        title=prepared.title,
        options=options,
        resume=prepared.resume,
    )
    renderer.finish(report)
    if prepared.config.junit is not None:
        from fanout_cli.render.junit import write_run_junit

        write_run_junit(prepared.config.junit, report)  # a StoreError (exit 2) if it cannot
    if report.interrupted is not None:
        return 128 + signal.Signals[report.interrupted].value  # 130 SIGINT, 143 SIGTERM
    return EXIT_PASS if report.verdict.passed else EXIT_FAIL


def color_choice(when: str) -> bool | None:
    """--color: always or never decide; auto (None) asks the terminal and NO_COLOR."""
    return {"always": True, "never": False}.get(when)


def stdin_is_terminal() -> bool:
    try:
        return os.isatty(0)
    except OSError:  # pragma: no cover - stdin closed
        return False


OutputDir = Annotated[
    str | None,
    typer.Option("--output-dir", metavar="DIR",
                 help="Where runs are kept (env FANOUT_OUTPUT_DIR). [default: .cache/agent-outputs]"),
]  # fmt: skip


def _output_dir(value: str | None) -> Path:
    return Path(value or default_output_dir())


@app.command()
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


@app.command()
def show(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run id, a unique prefix, or last.")],
    task: Annotated[str | None, typer.Argument(
        metavar="[TASK]", help="A task id, seq number or details file name.")] = None,
    output_dir: OutputDir = None,
) -> None:
    """Print a run's table, or one task's full record and output.

    This is the one place fanout prints a task's full stdout and stderr.

    Examples: fanout show last; fanout show last unit; fanout show 20261122T1015 3
    """
    from fanout_cli.commands.runs import show_run, show_task
    from fanout_cli.render.console import Console
    from fanout_cli.render.runs import print_run, print_task

    if task is None:
        print_run(Console(), show_run(_output_dir(output_dir), run))
    else:
        print_task(Console(), show_task(_output_dir(output_dir), run, task))


@app.command()
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


@app.command()
def init(
    path: Annotated[str | None, typer.Argument(metavar="[PATH]",
                    help="The file to write, or a folder for PATH/tasks.toml. [default: tasks.toml]")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter task file, ready to run.

    Examples: fanout init; fanout init ci/checks.toml; fanout init --force
    """
    from fanout_cli.starter import write_starter

    written = write_starter(path, force=force)
    typer.echo(f"wrote {written}; run it with: fanout run {written}")


@app.command()
def merge(
    runs: Annotated[list[str], typer.Argument(metavar="RUN_OR_DIR...",
                    help="Runs to merge: run ids, run folders, or folders holding run folders "
                         "(downloaded CI artifacts).")],
    junit: Annotated[str | None, typer.Option(metavar="FILE",
                     help="Also write the merged run as JUnit XML.")] = None,
    timings_out: Annotated[str | None, typer.Option("--timings-out", metavar="FILE",
                           help="Also write the merged timings here, for the next --shard.")] = None,
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
    output_dir: OutputDir = None,
) -> None:
    """Fan shard runs back in: one manifest, one verdict, one JUnit file, merged timings.

    The merged run is a new folder in the output dir (its manifest lists every task
    with the folder its files are in). A task found in several runs counts once: the
    newest run's result.

    Exit status: 0 verdict pass, 1 verdict fail, 2 usage error.

    Example: fanout merge artifacts/ --junit report.xml --timings-out timings.json
    """
    from fanout_cli.commands.merge import merge_runs
    from fanout_cli.render.console import Console
    from fanout_cli.render.merge import render_merge

    options = {
        "strategy": strategy, "required_successes": required_successes,
        "min_successes": min_successes, "min_success_ratio": min_success_ratio,
        "format": output_format,
    }  # fmt: skip
    result = merge_runs(runs, _output_dir(output_dir), options, junit=junit, timings_out=timings_out)
    render_merge(Console(), result, output_format or "human")
    raise typer.Exit(EXIT_PASS if result.passed else EXIT_FAIL)


timings_app = typer.Typer(
    help="Recorded task durations, for --shard and --order.", no_args_is_help=True
)
app.add_typer(timings_app, name="timings")


@timings_app.command("export")
def timings_export(
    runs: Annotated[list[str] | None, typer.Argument(metavar="[RUN_OR_DIR...]",
                    help="Runs to read. [default: the newest 30 finished runs of the output dir]")] = None,
    output: Annotated[str, typer.Option("-o", "--output", metavar="FILE",
                      help="Where to write the timings JSON (- for stdout).")] = "-",
    timings: Annotated[list[str] | None, typer.Option("--timings", metavar="FILE",
                       help="Timings to start from: a timings file, manifest or JUnit XML "
                            "(repeatable; runs are added after them).")] = None,
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


def options_document(config: RunConfig) -> dict[str, Any]:
    document = asdict(config)
    document["ok_exit"] = sorted(config.ok_exit)
    document["rate"] = None if config.rate is None else str(config.rate)
    document["timings"] = list(config.timings)
    document["resources"] = list(config.resources)
    return document


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_cli(sys.argv[1:] if argv is None else argv))


def run_cli(argv: list[str]) -> int:
    """Run the command line and return the exit code; the one place errors are caught."""
    try:
        result = app(args=argv, prog_name="fanout", standalone_mode=False)
    except FanoutError as exc:
        from fanout_cli.render.console import error_line

        error_line(exc.message)
        return exc.exit_code
    except click.ClickException as exc:  # click's usage errors: one line, exit 2
        sys.stderr.write(f"fanout: error: {exc.format_message()} (see fanout --help)\n")
        return getattr(exc, "exit_code", EXIT_USAGE)
    except OutputClosedError:  # stdout's reader went away: a SIGPIPE exit, silently
        return 128 + signal.SIGPIPE
    except click.exceptions.Abort:
        return EXIT_SIGINT
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except Exception as exc:
        if os.environ.get("FANOUT_DEBUG"):
            traceback.print_exc()
        else:
            sys.stderr.write(
                f"fanout: internal error: {type(exc).__name__}: {exc} "
                "(FANOUT_DEBUG=1 shows the traceback; please report it)\n"
            )
        return EXIT_INTERNAL
    return result if isinstance(result, int) else EXIT_PASS
