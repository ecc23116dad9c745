"""Task sources: standard input, `::: values`, `--glob` and the TOML task file.

Each becomes a stream of TaskSpec with its origin (`stdin:17`, `glob:src/a.py`,
`:::2`, `tasks.toml:12`). Standard input is read a chunk at a time, only when the
runner asks for the next task, so the first task starts before input ends and a
million lines cost no more memory than a hundred."""

from __future__ import annotations

import errno
import glob
import os
import re
import stat
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace

import anyio

from fanout_cli.errors import UsageError
from fanout_cli.models import AgentCall, TaskSpec
from fanout_cli.template import Template, render_text

CHUNK_BYTES = 1 << 16
ID_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def display_value(value: str, limit: int = ID_CHARS) -> str:
    """A value as a one-line, printable, valid-UTF-8 task id.

    Bytes that are not UTF-8 (kept as surrogates so commands get them exactly) become
    U+FFFD, control characters become escapes like \\n, and long values are capped."""
    if value.isascii() and value.isprintable():  # the usual case, and the fast one
        return value if len(value) <= limit else value[: limit - 1] + "…"
    text = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = _CONTROL.sub(lambda match: repr(match.group(0))[1:-1], text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class ValueTasks:
    """Turns values into tasks: through a command template, or, with no template, each
    value is itself a shell command (as GNU parallel does with lines on stdin). With
    `agent`, each value fills the call's prompt (and attach) templates instead."""

    template: Template | None
    agent: AgentCall | None = None  # prompt and attach are templates here

    def command(self, seq: int, value: str, slot: int | None = None) -> tuple[str, ...] | str:
        if self.agent is not None:
            call = render_call(self.agent, value, seq)
            return agent_line(call) if call.tool is None else agent_command(call)
        return value if self.template is None else self.template.render(value, seq, slot)

    def spec(self, seq: int, value: str, origin: str) -> TaskSpec:
        task_id = display_value(value) or f"task-{seq}"
        if self.agent is not None:
            call = render_call(self.agent, value, seq)
            return TaskSpec(
                seq=seq,
                task_id=task_id,
                command=agent_command(call),
                origin=origin,
                input=value,
                agent=call,
            )
        if self.template is None:
            return TaskSpec(seq=seq, task_id=task_id, command=value, origin=origin, input=value)
        return TaskSpec(
            seq=seq,
            task_id=task_id,
            command=self.template.render(value, seq),
            origin=origin,
            input=value,
            template=self.template if self.template.uses_slot else None,
        )


def agent_line(call: AgentCall) -> str:
    """An agent call as --dry-run shows it: `agent PROVIDER/MODEL: PROMPT`."""
    attach = "".join(f" +{path}" for path in call.attach)
    return f"agent {call.provider}/{call.model}{attach}: {display_value(call.prompt, 10_000)}"


def render_call(call: AgentCall, value: str, seq: int) -> AgentCall:
    """A call whose prompt and attach are templates, filled from one value."""
    return replace(
        call,
        prompt=render_text(call.prompt, value, seq),
        attach=tuple(render_text(path, value, seq) for path in call.attach),
    )


def agent_command(call: AgentCall) -> tuple[str, ...]:
    """The process an agent task runs: none for an HTTP call, the tool's argv for an
    agent CLI (built from its preset)."""
    if call.tool is None:
        return ()
    from fanout_cli import agent_cli

    return agent_cli.build_command(
        call.tool, call.prompt, model=call.model, system=call.system, extra_args=call.args
    )


class RecordSplitter:
    """Cuts a byte stream into records at a separator; keeps only the unfinished one."""

    def __init__(self, separator: bytes) -> None:
        self.separator = separator
        self._pending: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        if self.separator not in chunk:
            self._pending.append(chunk)
            return []
        pieces = chunk.split(self.separator)
        if self._pending:
            pieces[0] = b"".join([*self._pending, pieces[0]])
        self._pending = [pieces.pop()] if pieces[-1] else []
        return pieces

    def finish(self) -> list[bytes]:
        rest = b"".join(self._pending)
        self._pending = []
        return [rest] if rest else []


class StdinSource:
    """Values from a file descriptor: lines (LF or CRLF) or, with -0, NUL-separated."""

    total: int | None = None  # not known until the input ends

    def __init__(self, tasks: ValueTasks, null_separated: bool = False, fd: int = 0) -> None:
        self.tasks = tasks
        self.null_separated = null_separated
        self.fd = fd
        self.name = "stdin"
        self._splitter = RecordSplitter(b"\0" if null_separated else b"\n")
        self._records = 0  # every record, empty ones too, so stdin:N is line N
        self._seq = 0

    def _values(self, chunk: bytes) -> Iterator[tuple[int, str]]:
        """(seq, value) of one chunk (b"" at the end of input), one at a time."""
        records = self._splitter.feed(chunk) if chunk else self._splitter.finish()
        for record in records:
            self._records += 1
            data = record[:-1] if not self.null_separated and record.endswith(b"\r") else record
            if data:
                self._seq += 1
                yield self._seq, data.decode("utf-8", "surrogateescape")  # kept byte-exact

    def _blocking_values(self) -> Iterator[tuple[int, str]]:
        while True:
            chunk = _read(self.fd)
            yield from self._values(chunk)
            if not chunk:
                return

    def specs(self) -> Iterator[TaskSpec]:
        """All the tasks, with blocking reads."""
        for seq, value in self._blocking_values():
            yield self.tasks.spec(seq, value, f"stdin:{self._records}")

    def commands(self, jobs: int) -> Iterator[tuple[tuple[str, ...] | str, str | None]]:
        """For --dry-run: the commands alone, without building whole tasks (a million
        lines must print in seconds). `{%}` gets the slots 1..jobs in turn."""
        for seq, value in self._blocking_values():
            yield self.tasks.command(seq, value, (seq - 1) % jobs + 1), None

    async def stream(self) -> AsyncIterator[TaskSpec]:
        pollable = _pollable(self.fd)
        while True:
            if pollable:
                await anyio.wait_readable(self.fd)
            chunk = _read(self.fd)
            for seq, value in self._values(chunk):
                yield self.tasks.spec(seq, value, f"stdin:{self._records}")
            if not chunk:
                return


def _pollable(fd: int) -> bool:
    """Pipes and sockets can be waited on; files and /dev/null are read straight away."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:  # stdin closed: read() will report the end of input
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _read(fd: int) -> bytes:
    while True:
        try:
            return os.read(fd, CHUNK_BYTES)
        except BlockingIOError:  # an inherited O_NONBLOCK descriptor woke us too early
            os.set_blocking(fd, True)
        except OSError as exc:
            if exc.errno == errno.EBADF:  # no stdin at all (started with 0<&-): no values
                return b""
            raise


class ListSource:
    """A source known in full before the run starts: ::: values, --glob, a task file."""

    def __init__(self, name: str, specs: Sequence[TaskSpec]) -> None:
        self.name = name
        self._specs = specs
        self.total: int | None = len(specs)

    def specs(self) -> Iterator[TaskSpec]:
        return iter(self._specs)

    def commands(self, jobs: int) -> Iterator[tuple[tuple[str, ...] | str, str | None]]:
        for spec in self._specs:
            if spec.kind == "agent":
                assert spec.agent is not None
                yield agent_line(spec.agent), spec.cwd
            else:
                yield spec.command_for_slot((spec.seq - 1) % jobs + 1), spec.cwd

    async def stream(self) -> AsyncIterator[TaskSpec]:
        for spec in self._specs:
            yield spec


Source = StdinSource | ListSource


def argument_source(tasks: ValueTasks, values: list[str]) -> ListSource:
    specs = [tasks.spec(n, value, f":::{n}") for n, value in enumerate(values, start=1)]
    return ListSource(":::", specs)


def glob_matches(pattern: str) -> list[str]:
    """Sorted matches; `**` recurses; hidden files only when the pattern names them."""
    return sorted(glob.glob(pattern, recursive=True))


def glob_source(tasks: ValueTasks, patterns: list[str]) -> ListSource:
    seen: set[str] = set()
    specs: list[TaskSpec] = []
    for pattern in patterns:
        matches = glob_matches(pattern)
        if not matches:
            raise UsageError(f"--glob {pattern!r}: no file matches")
        for match in matches:
            if match not in seen:
                seen.add(match)
                specs.append(tasks.spec(len(specs) + 1, match, f"glob:{display_value(match)}"))
    return ListSource("--glob", specs)


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


def value_tasks(request: SourceRequest) -> ValueTasks:
    if request.agent is not None:
        return ValueTasks(None, request.agent)
    if not request.command:
        return ValueTasks(None)
    return ValueTasks(Template.parse(request.command, force_shell=request.shell))
