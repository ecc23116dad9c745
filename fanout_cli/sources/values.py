"""Values into tasks: the command template (or agent call) each value fills, and the
sources known in full before a run starts (::: values, --glob matches, task files)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace

from fanout_cli.errors import UsageError
from fanout_cli.models import AgentCall, TaskSpec
from fanout_cli.template import Template, render_text

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


def argument_source(tasks: ValueTasks, values: list[str]) -> ListSource:
    specs = [tasks.spec(n, value, f":::{n}") for n, value in enumerate(values, start=1)]
    return ListSource(":::", specs)


def glob_matches(pattern: str) -> list[str]:
    """Sorted matches; `**` recurses; hidden files only when the pattern names them."""
    import glob  # only --glob and task-file globs need it: plain runs start faster

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
