"""Task sources: standard input, `::: values`, `--glob`, the TOML task file and a
resumed run's saved list, one module each. This module is the door: what the command
line names as the source (a SourceRequest, checked: exactly one source, each option only
where it means something), and `open_source`, which opens it.

Each source becomes a stream of TaskSpec with its origin (`stdin:17`, `glob:src/a.py`,
`:::2`, `tasks.toml:12`). The task file's module is imported only for a task file.
`planned_items` is how those tasks enter a run: on resume with the earlier results that
stand, and always with the run's saved task list kept up to date before a task starts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from fanout_cli.errors import TaskFileError, UsageError
from fanout_cli.layers import OptionError, build_config
from fanout_cli.models import AgentCall, Prior, TaskSpec
from fanout_cli.options import BY_NAME, Option
from fanout_cli.replacements import ONE_VALUE, Grammar, has_replacement, shell_word
from fanout_cli.sources.inputs import (
    NO_BATCHING,
    ArgumentSource,
    Batching,
    InputList,
    InputPlan,
    Inputs,
    split_sources,
)
from fanout_cli.sources.values import (
    ListSource,
    OnceWithoutValues,
    ValueTasks,
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
    command: tuple[str, ...] | None = None  # the words after --, without the sources
    inputs: tuple[InputList, ...] = ()  # -a FILE..., then ::: / :::: after the command
    globs: tuple[str, ...] = ()
    null_separated: bool = False
    shell: bool = False
    agent: AgentCall | None = None  # --prompt / --agent / --agent-cli: agent tasks
    prompt_text: str = ""  # --prompt-file: literal text that follows each prompt
    link: bool = False
    colsep: str | None = None
    header: bool = False
    batching: Batching = NO_BATCHING
    pipe: PipeOptions | None = None  # --pipe: stdin cut into blocks, each a task's stdin

    @property
    def values(self) -> bool:
        """Input sources are named (not only stdin by default)."""
        return bool(self.inputs)


USAGE = (
    "fanout run TASKFILE, or: fanout run [OPTIONS] -- COMMAND {} "
    "with ::: VALUE..., :::: FILE, --glob PATTERN, or values on stdin"
)


def split_command(words: list[str]) -> tuple[tuple[str, ...], tuple[InputList, ...]]:
    """`echo {1} {2} ::: a b :::: f` -> the command, and its input sources."""
    return split_sources(words)


def arg_files(paths: tuple[str, ...] | None) -> tuple[InputList, ...]:
    """-a FILE (repeatable): input sources before those after the command."""
    return tuple(InputList(path=path) for path in paths or ())


def input_options(given: dict[str, Any]) -> dict[str, Any]:
    """--link, --colsep, --header, -m, -X, -N and -s, checked, for the SourceRequest."""
    if given["batch_m"] and given["batch_x"]:
        raise UsageError("give -m or -X, not both")
    values = {}
    for name in ("colsep", "header", "max_args", "max_chars"):
        option = BY_NAME[name]
        try:
            values[name] = None if given[name] is None else _parsed(option, given[name])
        except ValueError as exc:
            raise UsageError(f"{option.flag}: {exc}") from None
    mode: Literal["m", "X"] | None = "m" if given["batch_m"] else "X" if given["batch_x"] else None
    if values["max_chars"] is not None and mode is None and values["max_args"] is None:
        raise UsageError("-s limits the commands of -m, -X and -N; add one of them")
    return {"link": given["link"], "colsep": values["colsep"],
            "header": values["header"] is not None,
            "batching": Batching(mode, values["max_args"], values["max_chars"])}  # fmt: skip


def source_request(
    taskfile: str | None,
    given: dict[str, Any],
    words: list[str] | None,
    agent: AgentCall | None,
    resuming: bool,
) -> SourceRequest:
    """The task source the command line names: its parsed options (`given`) and the
    words after -- (the command and its input sources). With --pipe, -N N is GNU
    parallel's: N records a block (-L N)."""
    command, inputs = split_command(words) if words is not None else (None, ())
    if given["pipe"] and given["max_args"] is not None and given["block_records"] is None:
        given = {**given, "block_records": given["max_args"], "max_args": None}  # GNU's -N
    return SourceRequest(taskfile=taskfile, command=command,
                         inputs=arg_files(given["arg_file"]) + inputs,
                         globs=given["glob"] or (), null_separated=given["null"],
                         shell=given["shell"], agent=agent,
                         prompt_text=_prompt_file_text(given.get("prompt_file")),
                         pipe=pipe_request(given, resuming), **input_options(given))  # fmt: skip


def _prompt_file_text(path: str | None) -> str:
    if path is None:
        return ""
    from fanout_cli.agents import read_prompt_file

    try:
        return read_prompt_file(path)
    except (OSError, ValueError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise UsageError(f"--prompt-file {path}: {problem}") from None


def pipe_request(given: dict[str, Any], resuming: bool) -> PipeOptions | None:
    """--pipe and its options, checked (None: not asked for)."""
    if not given["pipe"] and all(given[name] is None
                                 for name in ("block", "recend", "block_records")):  # fmt: skip
        return None
    from fanout_cli.sources.pipe import pipe_options  # only --pipe runs load it

    return pipe_options(given, resuming=resuming)


def _parsed(option: Option, value: object) -> Any:
    assert option.parse is not None
    return option.parse(value)


def describe_source(request: SourceRequest) -> str:
    """The start of the run's title: how a person would rerun it, each word quoted
    for a shell (the AOP block's `[AOP:TASK]`)."""
    if request.taskfile is not None:
        return f"fanout run {shell_word(request.taskfile)}"
    command = " ".join(map(title_word, request.command or ()))
    text = f"fanout run -- {command}".rstrip() if command else "fanout run"
    if request.agent is not None:
        kind = f"--agent-cli {request.agent.tool}" if request.agent.tool else "--agent"
        text = f"fanout run {kind} --prompt {shell_word(display_value(request.agent.prompt, 60))}"
    if request.pipe is not None:
        return f"{text} (--pipe)"
    if request.inputs:
        return f"{text} {' '.join(_described(source) for source in request.inputs)}"
    if request.globs:
        return f"{text} (--glob {' '.join(map(shell_word, request.globs))})"
    return f"{text} (stdin)"


# A word a shell reads as itself: shell_word's safe characters and braces, no comma.
_REPLACEMENT_WORD = re.compile(r"[\w@%+=:./{}-]+", re.ASCII)


def title_word(word: str) -> str:
    """A word of a command quoted for a shell, but for a replacement string such as
    `{}`, `{1}` or `{.}` (no shell expands braces without a `,` or a `..` in them)."""
    if _REPLACEMENT_WORD.fullmatch(word) and ".." not in word:
        return word
    return shell_word(word)


def _described(source: InputList) -> str:
    if source.values is None:
        return f"::::{'+' * source.linked} {shell_word(str(source.path))}"
    count = len(source.values)
    return f":::{'+' * source.linked} ({count} value{'s' * (count != 1)})"


def check_one_source(request: SourceRequest, stdin_is_terminal: bool) -> None:
    """Exactly one task source; each option only where it means something."""
    named = [
        name
        for name, given in (
            ("a task file", request.taskfile is not None),
            ("::: values", bool(request.inputs)),
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
    elif (request.inputs or request.globs) and not request.command:
        source = "::: values" if request.inputs else "--glob"
        raise UsageError(f"{source} needs a command after --: fanout run -- COMMAND {{}} ...")
    if request.taskfile is not None and request.shell:
        raise UsageError("--shell applies to a command after --; in a task file, a string cmd "
                         "runs under sh -c")
    reads_lines = not named or any(source.path for source in request.inputs)
    if request.null_separated and not reads_lines:
        raise UsageError("-0/--null reads NUL-separated values from stdin or a :::: / -a file; "
                         f"it does not apply to {named[0]}")
    _check_input_options(request, named)
    if not named and stdin_is_terminal:
        raise UsageError(f"no tasks given; usage: {USAGE}")


def _check_input_options(request: SourceRequest, named: list[str]) -> None:
    """--link, --colsep, --header, -m, -X and -N shape values from input sources."""
    shaping = (("--link", request.link), ("--colsep", request.colsep),
               ("--header", request.header), ("-m/-X/-N", request.batching.active))  # fmt: skip
    given = [flag for flag, on in shaping if on]
    if given and request.pipe is not None:
        raise UsageError(f"{given[0]} shapes values; --pipe gives each task a block of stdin, "
                         "not values")
    if given and named and not request.inputs:
        raise UsageError(f"{given[0]} applies to ::: / :::: / -a values and stdin, not to "
                         f"{named[0]}")
    batching = request.batching
    if batching.active and not request.command and request.agent is None and not named:
        raise UsageError("-m, -X and -N put several values in one command; give the command "
                         "after --: fanout run -X -- COMMAND")
    if batching.max_args is not None and (len(request.inputs) > 1 or request.colsep):
        raise UsageError("-N groups the values of one input source; with several sources or "
                         "--colsep, use -m or -X")


class Source(Protocol):
    name: str

    @property
    def total(self) -> int | None: ...  # None for a stream, known only at its end

    def specs(self) -> Iterator[TaskSpec]: ...

    def commands(self, jobs: int) -> Iterator[tuple[str, str | None]]: ...

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
    if request.globs:
        return glob_source(value_tasks(request, ONE_VALUE), list(request.globs)), {}, {}
    sources = request.inputs or (InputList(path="-"),)
    inputs = Inputs(InputPlan(sources, request.link, request.colsep, request.header,
                              request.null_separated))  # fmt: skip
    tasks = value_tasks(request, Grammar(_positions(request, inputs), inputs.names))
    source = ArgumentSource(tasks, inputs, request.batching)
    if request.agent is not None and not request.inputs and not request.batching.active:
        call = request.agent  # values from stdin: an empty stdin still says what it did
        once = not any(has_replacement(text, tasks.grammar)
                       for text in (call.prompt, *call.attach))  # fmt: skip
        return OnceWithoutValues(source, tasks, once), {}, {}
    return source, {}, {}


def _positions(request: SourceRequest, inputs: Inputs) -> int | None:
    """How many values a task's {1}..{N} may name."""
    if request.batching.max_args is not None and request.batching.mode is None:
        return request.batching.max_args
    return inputs.width


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


def value_tasks(request: SourceRequest, grammar: Grammar) -> ValueTasks:
    if request.agent is not None:
        where = "--prompt"
        for text in (request.agent.prompt, *request.agent.attach):
            grammar.split(text, where)  # a replacement string fanout lacks: say so now
            where = "--attach"
        return ValueTasks(None, request.agent, grammar, literal=request.prompt_text)
    if not request.command:
        return ValueTasks(None, grammar=grammar)
    repeat = request.batching.mode == "X"
    template = Template.parse(request.command, request.shell, grammar, repeat)
    return ValueTasks(template, grammar=grammar)
