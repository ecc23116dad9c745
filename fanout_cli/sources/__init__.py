"""Task sources: standard input, `::: values`, `--glob`, the TOML task file and a
resumed run's saved list, one module each. This module is the door: what the command
line names as the source (a SourceRequest, checked: exactly one source, each option only
where it means something), and `open_source`, which opens it.

Each source becomes a stream of TaskSpec with its origin (`stdin:17`, `glob:src/a.py`,
`:::2`, `tasks.toml:12`). The task file's module is imported only for a task file.
`planned_items` is how those tasks enter a run: on resume with the earlier results that
stand, and always with the run's saved task list kept up to date before a task starts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fanout_cli.errors import TaskFileError, UsageError
from fanout_cli.models import AgentCall, Prior, TaskSpec
from fanout_cli.options import OptionError, build_config
from fanout_cli.sources.stdin import StdinSource
from fanout_cli.sources.values import (
    ListSource,
    ValueTasks,
    argument_source,
    display_value,
    glob_source,
)
from fanout_cli.template import Template

if TYPE_CHECKING:
    from fanout_cli.aop.writer import RunStore
    from fanout_cli.resume import ResumeBook
    from fanout_cli.sources.pipe import PipeOptions


@dataclass(frozen=True)
class SourceRequest:
    """What the command line named as the task source."""

    taskfile: str | None = None
    command: tuple[str, ...] | None = None  # the words after --, without ::: and values
    values: tuple[str, ...] | None = None  # the words after :::
    globs: tuple[str, ...] = ()
    null_separated: bool = False
    shell: bool = False
    agent: AgentCall | None = None  # --prompt / --agent / --agent-cli: agent tasks
    pipe: PipeOptions | None = None  # --pipe: stdin cut into blocks, each a task's stdin


USAGE = (
    "fanout run TASKFILE, or: fanout run [OPTIONS] -- COMMAND {} "
    "with ::: VALUE..., --glob PATTERN, or values on stdin"
)


def split_command(words: list[str]) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """`echo {} ::: a b` -> (("echo", "{}"), ("a", "b")); no ::: -> values None."""
    if "::::" in words:
        raise UsageError(
            ":::: (values from a file) is not supported; use: fanout run -- CMD < FILE"
        )
    if ":::" not in words:
        return tuple(words), None
    split = words.index(":::")
    values = words[split + 1 :]
    if ":::" in values:
        raise UsageError("only one ::: list is supported (no cross products)")
    return tuple(words[:split]), tuple(values)


def describe_source(request: SourceRequest) -> str:
    """The start of the run's title: how a person would rerun it."""
    if request.taskfile is not None:
        return f"fanout run {request.taskfile}"
    command = " ".join(request.command or ())
    text = f"fanout run -- {command}".rstrip() if command else "fanout run"
    if request.agent is not None:
        kind = f"--agent-cli {request.agent.tool}" if request.agent.tool else "--agent"
        text = f"fanout run {kind} --prompt {display_value(request.agent.prompt, 60)!r}"
    if request.pipe is not None:
        return f"{text} (--pipe)"
    if request.values is not None:
        return f"{text} ::: ({len(request.values)} values)"
    if request.globs:
        return f"{text} (--glob {' '.join(request.globs)})"
    return f"{text} (stdin)"


def check_one_source(request: SourceRequest, stdin_is_terminal: bool) -> None:
    """Exactly one task source; each option only where it means something."""
    named = [
        name
        for name, given in (
            ("a task file", request.taskfile is not None),
            ("::: values", request.values is not None),
            ("--glob", bool(request.globs)),
        )
        if given
    ]
    if request.pipe is not None:
        from fanout_cli.sources.pipe import check_pipe  # only --pipe runs load it

        check_pipe(named, request.command, agent=request.agent is not None)
    if len(named) > 1:
        raise UsageError(f"give one task source, not {' and '.join(named)}; usage: {USAGE}")
    if request.taskfile is not None and request.command:
        raise UsageError(
            "a task file and a command after -- are two task sources; put the command in "
            f"the file's [[task]] cmd, or drop the file; usage: {USAGE}"
        )
    if request.agent is not None:
        if request.taskfile is not None:
            raise UsageError("--prompt, --agent and --agent-cli make tasks from values; a task "
                             'file sets kind = "agent" and prompt in its [[task]] tables')
        if request.command:
            raise UsageError("agent tasks take no command after --; the values fill --prompt")
        if request.shell:
            raise UsageError("--shell applies to commands, not to agent tasks")
    elif (request.values is not None or request.globs) and not request.command:
        source = "::: values" if request.values is not None else "--glob"
        raise UsageError(f"{source} needs a command after --: fanout run -- COMMAND {{}} ...")
    if request.taskfile is not None and request.shell:
        raise UsageError("--shell applies to a command after --; in a task file, a string cmd "
                         "runs under sh -c")
    if named and request.null_separated:
        raise UsageError("-0/--null reads NUL-separated values from stdin; it does not apply to "
                         f"{named[0]}")
    if not named and stdin_is_terminal:
        raise UsageError(f"no tasks given; usage: {USAGE}")


class Source(Protocol):
    name: str
    total: int | None  # None for a stream whose length is known only at its end

    def specs(self) -> Iterator[TaskSpec]: ...

    def commands(self, jobs: int) -> Iterator[tuple[tuple[str, ...] | str, str | None]]: ...

    def stream(self) -> AsyncIterator[TaskSpec]: ...


@dataclass(frozen=True)
class Resume:
    run_dir: Path
    book: ResumeBook
    from_saved_list: bool  # the tasks come from the run's own saved list


def planned_items(
    store: RunStore, source: Source, resume: Resume | None
) -> AsyncIterator[TaskSpec | Prior]:
    """The tasks to run (and, on resume, the earlier results that stand), with the run's
    saved task list brought up to date first: a task is never started before it is on
    the list, so a resume after a crash knows it."""
    if resume is None:
        if source.total is None:
            return _saving(store, source.stream())
        store.save_specs(source.specs())
        store.end_task_list()
        return source.stream()
    if resume.from_saved_list:
        return resume.book.plan(source.stream(), None)
    # A source given again replaces the saved list: an edited task file is now the run's.
    if source.total is None:
        store.replace_task_list([])
        stream = resume.book.plan(source.stream(), lambda spec: store.save_specs([spec]))
        return _ending_list(store, stream)
    planned = [resume.book.classify(spec) for spec in source.specs()]
    store.replace_task_list(numbered for _, numbered in planned)
    store.end_task_list()
    return _from_list([item for item, _ in planned])


async def _from_list(items: list[TaskSpec | Prior]) -> AsyncIterator[TaskSpec | Prior]:
    for item in items:
        yield item


async def _saving(store: RunStore, specs: AsyncIterator[TaskSpec]) -> AsyncIterator[TaskSpec]:
    """Save each task of a stream to the run's task list as it is read, and say so on
    the list when the stream has ended."""
    async for spec in specs:
        store.save_specs([spec])
        yield spec
    store.end_task_list()


async def _ending_list(
    store: RunStore, items: AsyncIterator[TaskSpec | Prior]
) -> AsyncIterator[TaskSpec | Prior]:
    """The items of a stream whose tasks are saved as they are read (on resume); the
    list says it is whole once the stream has ended."""
    async for item in items:
        yield item
    store.end_task_list()


def open_source(
    request: SourceRequest, saved_list: Path | None = None
) -> tuple[Source, dict[str, object], dict[str, Any]]:
    """The source, with the task file's [run] options and [agent] table (empty for the
    other sources). `saved_list`: the run folder whose saved task list to run instead."""
    if saved_list is not None:
        from fanout_cli.resume import saved_specs

        return ListSource(saved_list.name, saved_specs(saved_list)), {}, {}
    if request.taskfile is not None:
        return _task_file_source(request.taskfile)
    if request.pipe is not None:
        from fanout_cli.sources.pipe import PipeCommand, PipeSource

        return PipeSource(PipeCommand(request.command or (), request.shell), request.pipe), {}, {}
    tasks = value_tasks(request)
    if request.values is not None:
        return argument_source(tasks, list(request.values)), {}, {}
    if request.globs:
        return glob_source(tasks, list(request.globs)), {}, {}
    return StdinSource(tasks, request.null_separated), {}, {}


def _task_file_source(path: str) -> tuple[ListSource, dict[str, object], dict[str, Any]]:
    from fanout_cli.sources.taskfile import load_task_file

    task_file = load_task_file(path)
    file_options = dict(task_file.run_options)
    try:
        build_config(file_options)  # alone first, so that its errors name the file
    except OptionError as exc:
        line = task_file.run_option_lines.get(exc.name)
        raise TaskFileError(path, line, f"[run] {exc.name}: {exc.problem}") from None
    return ListSource(path, task_file.specs), file_options, dict(task_file.agent)


def value_tasks(request: SourceRequest) -> ValueTasks:
    if request.agent is not None:
        return ValueTasks(None, request.agent)
    if not request.command:
        return ValueTasks(None)
    return ValueTasks(Template.parse(request.command, force_shell=request.shell))
