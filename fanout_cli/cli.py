"""The command line: parse arguments into a request, call its command, map the result
and every error to an exit code. The one place errors are caught."""

# No `from __future__ import annotations` here: Typer would eval every annotation
# string on each start (measured: ~20 ms); real annotations cost nothing.
import os
import sys
import traceback
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from typer.core import TyperCommand

from fanout_cli import __version__, cli_folder
from fanout_cli.errors import (
    EXIT_INTERNAL,
    EXIT_PASS,
    EXIT_SIGINT,
    EXIT_SIGPIPE,
    EXIT_USAGE,
    FanoutError,
    OutputClosedError,
    UsageError,
    run_exit_status,
)
from fanout_cli.options import AGENT_KEYS, BY_NAME, RUN_KEYS, RUN_OPTIONS

if TYPE_CHECKING:
    from fanout_cli.plan import RunRequest

COMMAND_KEY = "fanout.command"
VALUES_KEY = "fanout.values"
MARKERS = (":::", ":::+", "::::", "::::+")  # where input sources start (sources/inputs.py)
OPTIONS_KEY = "fanout.options"


class RunCommand(TyperCommand):
    """`fanout run`: its options come from the table in options.py. It keeps everything
    after the first `--` as the command template, and (for agent tasks, which have no
    command) the values after a `:::` with no `--`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["params"] = [*kwargs.get("params", []), *(o.parameter() for o in RUN_OPTIONS)]
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]  # typer's Context is click's
        if "--" in args:
            split = args.index("--")
            ctx.meta[COMMAND_KEY] = args[split + 1 :]
            args = args[:split]
        elif any(marker in args for marker in MARKERS):
            split = min(args.index(marker) for marker in MARKERS if marker in args)
            ctx.meta[VALUES_KEY] = args[split:]
            args = args[:split]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        # The declared options go to the command as one mapping, not as parameters.
        ctx.meta[OPTIONS_KEY] = {option.name: ctx.params.pop(option.name) for option in RUN_OPTIONS}
        return super().invoke(ctx)


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


@app.command(cls=RunCommand)
def run(
    ctx: typer.Context,
    taskfile: Annotated[str | None, typer.Argument(metavar="TASKFILE", help="TOML task list.", show_default=False)] = None,
) -> None:
    """Run tasks in parallel and print one verdict.

    Tasks come from one kind of source: a TOML TASKFILE; input sources after the
    command (::: VALUE..., :::: FILE..., -a FILE: every combination, :::+ and --link
    pair them); --glob PATTERN; or values on stdin, one a line. The command after --
    takes GNU parallel's replacement strings {} {.} {/} {//} {/.} {1}..{N} {#} {%} {##}
    ({{}} is a literal {}); without one, the values are appended. -m, -X and -N put
    several values in one command; --pipe gives each task a block of stdin instead of
    values. Several words run without a shell; a single word with shell syntax, or
    --shell, runs under sh -c with values kept as data.

    Agent tasks: --prompt 'TEMPLATE' makes each value an LLM call (OpenAI-compatible
    or Anthropic; set [agent] in a task file, or --provider/--model/--base-url);
    --agent-cli TOOL runs claude, codex, llm or aider headless instead.

    Reduce: --reduce CMD (one JSON line per task on stdin) or --reduce-prompt
    TEMPLATE runs once after the last task; its output is the run's answer.

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

      fanout run -- echo {1}={2} ::: a b c :::+ 1 2 3

      fanout run -k -- rg -n TODO {} ::: repos/* | sort

      find . -name '*.py' | fanout run -X -- ruff check

      cat big.log | fanout run --pipe --block 10M -- grep -c ERROR

      fanout run --prompt 'Summarise {}' --attach {} --model gpt-4o-mini ::: a.md b.md

      fanout run tests.toml --shard 2/4 --timings timings.json --junit junit.xml

      fanout run -q --reduce 'jq -s length' -- wc -l ::: *.py
    """
    from fanout_cli.commands.run import run_command

    request = run_request(taskfile, ctx.meta[OPTIONS_KEY], ctx.meta.get(COMMAND_KEY),
                          ctx.meta.get(VALUES_KEY))  # fmt: skip
    raise typer.Exit(run_exit_status(run_command(request)))


def run_request(
    taskfile: str | None,
    given: dict[str, Any],
    words: list[str] | None,
    values_after: list[str] | None,
) -> "RunRequest":
    """What `fanout run` was asked, from its parsed options and the words after -- or :::."""
    from fanout_cli.plan import RunRequest, agent_call
    from fanout_cli.sources import source_request

    call = agent_call(given["agent"], given["prompt"], given["agent_cli"], given["attach"],
                      given["prompt_file"])  # fmt: skip
    if values_after is not None:
        if call is None:
            raise UsageError("put the command after --: fanout run [OPTIONS] -- COMMAND {} ::: VALUE...")
        words = values_after
    if given["resume"] is not None and given["resume_failed"] is not None:
        raise UsageError("give --resume or --resume-failed, not both")
    resume_name = given["resume"] or given["resume_failed"]
    source = source_request(taskfile, given, words, call, resuming=resume_name is not None)
    return RunRequest(
        source=source,
        run_options={name: BY_NAME[name].given(given[name]) for name in RUN_KEYS},
        agent_options={name: given[name] for name in AGENT_KEYS},
        dry_run=given["dry_run"],
        resuming=None if resume_name is None else (resume_name, given["resume_failed"] is not None),
        stdin_is_terminal=stdin_is_terminal(),
        environ=dict(os.environ),
    )


def stdin_is_terminal() -> bool:
    try:
        return os.isatty(0)
    except OSError:  # pragma: no cover - stdin closed
        return False


app.command()(cli_folder.runs)
app.command()(cli_folder.show)
app.command()(cli_folder.report)
app.command()(cli_folder.cat)
app.command()(cli_folder.clean)


@app.command()
def init(
    path: Annotated[str | None, typer.Argument(metavar="[PATH]",
                    help="The file to write, or a folder for PATH/tasks.toml. [default: tasks.toml]")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter task file, ready to run.

    Examples: fanout init; fanout init ci/checks.toml; fanout init --force
    """
    from fanout_cli.render.console import Console
    from fanout_cli.starter import write_starter

    written = write_starter(path, force=force)
    Console().line(f"wrote {written}; run it with: fanout run {written}")


app.command()(cli_folder.merge)
timings_app = typer.Typer(
    help="Recorded task durations, for --shard and --order.", no_args_is_help=True
)
timings_app.command("export")(cli_folder.timings_export)
app.add_typer(timings_app, name="timings")


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
        from fanout_cli.render.console import error_line

        error_line(f"{exc.format_message()} (see fanout --help)")
        return getattr(exc, "exit_code", EXIT_USAGE)
    except OutputClosedError:  # stdout's reader went away: a SIGPIPE exit, silently
        return EXIT_SIGPIPE
    except click.exceptions.Abort:
        return EXIT_SIGINT
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except Exception as exc:
        if os.environ.get("FANOUT_DEBUG"):
            traceback.print_exc()
        else:
            from fanout_cli.render.console import internal_error_line

            internal_error_line(exc)
        return EXIT_INTERNAL
    return result if isinstance(result, int) else EXIT_PASS
