"""Everything fanout prints, and nothing else: commands return data, these modules print it.

This module chooses a run's renderer (the Renderer protocol; the choice by format, by
terminal and by CI). The live display (render.live, and rich) and the machine formats
(render.machine) are imported only when chosen: a plain run loads neither.

Imports point one way, and no module here imports fanout's commands:

    render (this module) -> live -> tables -> lines -> console
    render (this module) -> machine -> lines
    runs, merge -> machine, lines -> console
    junit (the JUnit XML writer) -> nothing of render
    joblog (GNU parallel's job log, wrapping the chosen renderer) -> nothing of render
    outputs (-k, --group, --line-buffer: the tasks' own output, wrapping it) -> tags, console

`console` is the only module that writes to the terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, Protocol, TextIO

from fanout_cli.render.console import Console, color_choice
from fanout_cli.render.lines import HumanRenderer

if TYPE_CHECKING:
    from fanout_cli.models import RunReport, TaskResult, TaskSpec
    from fanout_cli.options import OutputOptions


class Renderer(Protocol):
    """Receives the run's events as they happen (runner.Listener), then its report."""

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None: ...

    def task_ended(self, result: TaskResult) -> None: ...

    def finish(self, report: RunReport) -> None: ...


# Set by CI services (CI by most of them); a live area would only fill their logs.
CI_VARIABLES = (
    "CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "CIRCLECI", "JENKINS_URL", "TF_BUILD",
)  # fmt: skip
ProgressMode = Literal["off", "terminal", "stderr"]


def in_ci(env: Mapping[str, str]) -> bool:
    """A CI service runs us. `CI=false` (or 0) is how a user says it does not."""
    return any(
        env.get(name, "").strip().lower() not in ("", "0", "false", "no") for name in CI_VARIABLES
    )


def terminal_streams(stdout: TextIO, stderr: TextIO) -> tuple[bool, bool]:
    """(stderr is a terminal, stdout is that same terminal)."""
    try:
        stderr_fd, stdout_fd = stderr.fileno(), stdout.fileno()
        if not os.isatty(stderr_fd):
            return False, False
        if not os.isatty(stdout_fd):
            return True, False
        return True, os.fstat(stdout_fd).st_rdev == os.fstat(stderr_fd).st_rdev
    except (AttributeError, OSError, ValueError):  # a stream with no file (tests), or closed
        return False, False


def progress_mode(
    output: OutputOptions, env: Mapping[str, str], stderr_terminal: bool, stdout_same_terminal: bool
) -> ProgressMode:
    """The human format's live progress. `terminal`: a live area on stderr, task lines
    scrolling up above it, the run's table at the end. `stderr`: only the live area
    (--progress while stdout goes elsewhere: stdout keeps its plain lines). `off`: the
    plain lines, as in a pipe or a CI log."""
    if output.format != "human" or output.quiet or output.progress is False:
        return "off"
    if not stderr_terminal or env.get("TERM") == "dumb":
        return "off"
    if output.shows_outputs:
        # The tasks' output has stdout; the live area and fanout's lines take stderr,
        # unless stdout is that same terminal (the output would run through the area).
        if stdout_same_terminal or (output.progress is None and in_ci(env)):
            return "off"
        return "terminal"
    if output.progress is None and (in_ci(env) or not stdout_same_terminal):
        return "off"
    return "terminal" if stdout_same_terminal else "stderr"


def make_renderer(
    output: OutputOptions, console: Console, total: int | None = None, jobs: int = 1
) -> Renderer:
    """`total`: the number of tasks when known up front (the live bar's end); `jobs`:
    the slots the live area shows. When the tasks' own output is printed (-k, --group,
    --line-buffer, --tag), fanout's lines go to stderr instead of `console`."""
    if output.format == "human" or output.quiet:
        mode = progress_mode(output, os.environ, *terminal_streams(console.stream, sys.stderr))
        if output.shows_outputs:
            console = Console(sys.stderr, color=color_choice(output.color))
        if mode == "off":
            return HumanRenderer(console, output)
        from fanout_cli.render.live import LiveRenderer  # only on a terminal: it brings rich

        return LiveRenderer(console, output, total, jobs, lines_on_stdout=mode == "stderr")
    from fanout_cli.render.machine import JsonLinesRenderer, SilentRenderer  # not for human

    if output.format == "jsonl":
        return JsonLinesRenderer(console)
    return SilentRenderer(console, output)
