"""Values into tasks: the command template (or agent call) each task's values fill,
and the sources known in full before a run starts (--glob matches, task files, a
resumed run's saved list)."""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from fanout_cli.errors import UsageError
from fanout_cli.models import AgentCall, TaskSpec
from fanout_cli.replacements import ONE_VALUE, Args, Grammar, render_text
from fanout_cli.template import Template

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
    `agent`, the values fill the call's prompt (and attach) templates instead.
    `names`: the values' names (--header, a matrix), for the records."""

    template: Template | None
    agent: AgentCall | None = None  # prompt, attach and args are templates here
    grammar: Grammar = ONE_VALUE
    total: int | None = None  # {##}, when the number of tasks is known
    literal: str = ""  # --prompt-file: text that follows each prompt as it is

    def display(self, seq: int, args: Args, slot: int | None = None) -> str:
        """The command as --dry-run shows it."""
        if self.agent is not None:
            call = render_call(self.agent, args, seq, self.grammar, self.total, self.literal)
            return agent_line(call) if call.tool is None else shlex.join(agent_command(call))
        if self.template is None:
            return " ".join(args.values)
        return self.template.display(args, seq, slot, self.total)

    def spec(self, seq: int, value: Args | str, origin: str) -> TaskSpec:
        args = Args.one(value) if isinstance(value, str) else value
        task_id = task_id_of(args) or f"task-{seq}"
        recorded = args.recorded(self.grammar.names)
        if self.agent is not None:
            call = render_call(self.agent, args, seq, self.grammar, self.total, self.literal)
            return TaskSpec(seq=seq, task_id=task_id, command=agent_command(call),
                            origin=origin, input=recorded, agent=call, args=args)  # fmt: skip
        if self.template is None:
            command = " ".join(args.values)
            return TaskSpec(seq=seq, task_id=task_id, command=command, origin=origin,
                            input=recorded, args=args)  # fmt: skip
        slot_later = self.template.uses_slot
        return TaskSpec(
            seq=seq,
            task_id=task_id,
            command=self.template.render(args, seq, None, self.total),
            origin=origin,
            input=recorded,
            template=self._slot_template if slot_later else None,
            args=args,  # {%} renders the command again from them; --tagstring reads them
        )

    @functools.cached_property
    def _slot_template(self) -> Template | None:
        """The template a task renders again once its slot is known, with {##} kept."""
        if self.template is None or not self.template.uses_total:
            return self.template
        return replace(self.template, total=self.total)


def task_id_of(args: Args) -> str:
    """A task's id: its value; a combination's values joined by a space; a batch's
    first record and how many more it holds."""
    first = display_value(" ".join(args.records[0]))
    more = len(args.records) - 1
    return first if not more else f"{first} +{more} more"


def agent_line(call: AgentCall) -> str:
    """An agent call as --dry-run shows it: `agent PROVIDER/MODEL: PROMPT`."""
    attach = "".join(f" +{path}" for path in call.attach)
    return f"agent {call.provider}/{call.model}{attach}: {display_value(call.prompt, 10_000)}"


def render_call(
    call: AgentCall, args: Args | str, seq: int, grammar: Grammar = ONE_VALUE,
    total: int | None = None, literal: str = "",
) -> AgentCall:
    """A call whose prompt, attach and args are templates, filled from a task's values;
    `literal` (a prompt file's text) follows the prompt as it is."""

    def fill(text: str) -> str:
        return render_text(text, args, seq, grammar, total)

    return replace(
        call,
        prompt=with_literal(fill(call.prompt), literal),
        attach=tuple(map(fill, call.attach)),
        args=tuple(map(fill, call.args)),
    )


def with_literal(prompt: str, literal: str) -> str:
    """The prompt, then a prompt file's text after a blank line (either may be empty)."""
    return f"{prompt}\n\n{literal}" if prompt and literal else prompt or literal


def agent_command(call: AgentCall) -> tuple[str, ...]:
    """The process an agent task runs: none for an HTTP call, the tool's argv for an
    agent CLI (built from its preset)."""
    if call.tool is None:
        return ()
    from fanout_cli import agent_cli

    return agent_cli.build_command(call.tool, call.prompt, model=call.model, system=call.system,
                                   extra_args=call.args, attach=call.attach)  # fmt: skip


class _Values(Protocol):  # sources.Source, which this module cannot import
    name: str

    @property
    def total(self) -> int | None: ...

    def specs(self) -> Iterator[TaskSpec]: ...

    def commands(self, jobs: int) -> Iterator[tuple[str, str | None]]: ...

    def stream(self) -> AsyncIterator[TaskSpec]: ...


class OnceWithoutValues:
    """Agent tasks from stdin: when stdin holds no value, a prompt that no value fills
    (no replacement string) runs once, as task-1; one that values fill makes no task,
    and a warning says so (as `xargs -r` runs nothing)."""

    def __init__(self, inner: _Values, tasks: ValueTasks, once: bool) -> None:
        self.inner = inner
        self.name = inner.name
        self._tasks = tasks
        self._once = once

    @property
    def total(self) -> int | None:
        total = self.inner.total
        return 1 if total == 0 and self._once else total

    def specs(self) -> Iterator[TaskSpec]:
        empty = True
        for spec in self.inner.specs():
            empty = False
            yield spec
        if empty:
            yield from self._without_values()

    def commands(self, jobs: int) -> Iterator[tuple[str, str | None]]:
        empty = True
        for command in self.inner.commands(jobs):
            empty = False
            yield command
        if empty and self._once:
            yield self._tasks.display(1, Args.one("")), None

    async def stream(self) -> AsyncIterator[TaskSpec]:
        empty = True
        async for spec in self.inner.stream():
            empty = False
            yield spec
        if empty:
            for spec in self._without_values():
                yield spec

    def _without_values(self) -> Iterator[TaskSpec]:
        if self._once:
            yield self._tasks.spec(1, "", "prompt")
            return
        from fanout_cli.render.console import warn

        assert self._tasks.agent is not None
        prompt = display_value(self._tasks.agent.prompt, 60)
        warn(f"no values on stdin: --prompt {prompt!r} takes one per task, so no task ran "
             "(give values with ::: or on stdin)")  # fmt: skip


class ListSource:
    """A source known in full before the run starts: ::: values, --glob, a task file."""

    def __init__(self, name: str, specs: Sequence[TaskSpec]) -> None:
        self.name = name
        self._specs = specs
        self.total: int | None = len(specs)

    def specs(self) -> Iterator[TaskSpec]:
        return iter(self._specs)

    def commands(self, jobs: int) -> Iterator[tuple[str, str | None]]:
        for spec in self._specs:
            if spec.kind == "agent":
                assert spec.agent is not None
                yield agent_line(spec.agent), spec.cwd
            else:
                yield spec.display_for_slot((spec.seq - 1) % jobs + 1), spec.cwd

    async def stream(self) -> AsyncIterator[TaskSpec]:
        for spec in self._specs:
            yield spec


def glob_matches(pattern: str) -> list[str]:
    """Sorted matches, each once; `**` (a whole path part) matches zero or more folders;
    hidden names only when the pattern's part names them (starts with a dot).

    `**` follows links to folders but lists each real folder (device and inode) once,
    so a link back to `.` or `..` ends the walk instead of looping; Python's glob and
    bash's globstar do not agree there (one loops, the other never follows links)."""
    import fnmatch  # only --glob and task-file globs need these: plain runs start faster
    import os

    *folders, last = pattern.split("/")
    parts = [part for part in folders if part] + [last]
    if not _GLOB_MAGIC.search(pattern):
        return [pattern] if os.path.lexists(pattern) else []
    start = "/" if pattern.startswith("/") else ""
    found = set(_glob_expand(start, _collapse_stars(parts), fnmatch.fnmatchcase))
    return sorted(found)


_GLOB_MAGIC = re.compile(r"[*?[]")


def _collapse_stars(parts: list[str]) -> list[str]:
    """`a/**/**/b` walks once: consecutive `**` parts are one."""
    return [part for index, part in enumerate(parts)
            if not (part == "**" and index and parts[index - 1] == "**")]  # fmt: skip


def _glob_expand(prefix: str, parts: list[str], match: Callable[[str, str], bool]) -> Iterator[str]:
    """Paths under `prefix` (empty, `/`, or ending in `/`) that `parts` match."""
    import os

    part, rest = parts[0], parts[1:]
    if part == "**":
        if not rest and prefix:  # a trailing **: the folder, then every name below it
            yield prefix
        for folder in _real_folders(prefix):
            yield from _glob_expand(folder, rest, match) if rest else _entries(folder)
        return
    if part == "":  # the pattern ends with /: folders only
        if os.path.isdir(prefix or "."):
            yield prefix
        return
    if _GLOB_MAGIC.search(part):
        hidden_named = part.startswith(".")
        names = [name for name in _names(prefix)
                 if match(name, part) and (hidden_named or not name.startswith("."))]  # fmt: skip
    else:
        names = [part]
    for name in names:
        path = prefix + name
        if rest and os.path.isdir(path):
            yield from _glob_expand(path + "/", rest, match)
        elif not rest and os.path.lexists(path):
            yield path


def _names(folder: str) -> list[str]:
    import os

    try:
        return sorted(os.listdir(folder or "."))
    except OSError:  # unreadable or gone: nothing matches there (as with the shell)
        return []


def _real_folders(prefix: str) -> Iterator[str]:
    """`prefix` and every folder below it not hidden, depth first in name order; each
    real folder once, so links that loop end."""
    import os

    seen: set[tuple[int, int]] = set()
    pending = [prefix]
    while pending:
        folder = pending.pop()
        try:
            status = os.stat(folder or ".")
        except OSError:
            continue
        if (status.st_dev, status.st_ino) in seen:
            continue
        seen.add((status.st_dev, status.st_ino))
        yield folder
        below = [folder + name + "/" for name in _names(folder) if not name.startswith(".")]
        pending.extend(reversed([path for path in below if os.path.isdir(path)]))


def _entries(folder: str) -> Iterator[str]:
    """The names in a folder that are not hidden, as paths."""
    for name in _names(folder):
        if not name.startswith("."):
            yield folder + name


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
