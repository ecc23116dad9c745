"""One [[task]] of a task file fanned out into many: `glob` (a task per match), `foreach`
(a task per value, or per table of named values) and `matrix` (a task per combination
of its lists, the first key varying slowest and the last fastest, as GNU parallel
combines its sources).

Named values are replacement strings in id, cmd, prompt, attach, args, cwd and env: `{py}`
and `{1}` (the first key), with the modifiers `{py.}` `{py/}` `{py//}` `{py/.}`; `{}` is
every value, space-separated. A `{word}` that names no value stays text."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from itertools import product
from typing import Any

from fanout_cli.errors import TaskFileError, UsageError
from fanout_cli.models import TaskSpec
from fanout_cli.replacements import Args, Grammar, has_replacement, render_text
from fanout_cli.sources.toml_lines import KeyPath
from fanout_cli.sources.values import (
    agent_command,
    display_value,
    glob_matches,
    render_call,
    task_id_of,
)
from fanout_cli.template import Template

FAN_OUT_KEYS = ("glob", "foreach", "matrix")
# A [[task]] that makes more tasks than this is a mistake (a matrix of ten lists of ten
# values is ten billion tasks), said before any is built.
MAX_TASKS_PER_ENTRY = 100_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Fail = Callable[[KeyPath, str], TaskFileError]  # an error at a key path's line


@dataclass(frozen=True)
class FanOut:
    """The values one [[task]] is fanned out over: one record per task, its values named
    (a matrix, foreach tables) or not (glob matches, foreach values)."""

    records: tuple[tuple[str, ...], ...]
    names: tuple[str, ...] = ()

    @property
    def grammar(self) -> Grammar:
        """`{}` and `{1}`..`{N}`, and each name (the Nth name is `{N}`)."""
        return Grammar(len(self.names) or 1, self.names)


def read_fan_out(entry: dict[str, Any], where: KeyPath, label: str, fail: Fail) -> FanOut | None:
    """The values of the entry's `glob`, `foreach` or `matrix`; None for a plain task."""
    given = [key for key in FAN_OUT_KEYS if key in entry]
    if len(given) > 1:
        raise fail((*where, given[1]), f"{label}: give one of glob, foreach and matrix, not "
                   f"{given[0]} and {given[1]} (a matrix list can hold what foreach would)")
    if not given:
        return None
    key = given[0]
    readers = {"glob": _glob, "foreach": _foreach, "matrix": _matrix}
    return readers[key](entry[key], (*where, key), label, fail)


def _glob(patterns: object, path: KeyPath, label: str, fail: Fail) -> FanOut:
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list) or not patterns or not all(
        isinstance(pattern, str) and pattern for pattern in patterns
    ):
        raise fail(path, f"{label}: glob must be a pattern or a list")
    matches: dict[str, None] = {}  # in order, each once
    for pattern in patterns:
        found = glob_matches(pattern)
        if not found:
            raise fail(path, f"{label}: glob {pattern!r} matches nothing")
        matches.update(dict.fromkeys(found))
    return FanOut(tuple((match,) for match in matches))


def _value(value: object) -> str | None:
    """A value a task can be made from, as text: a string or a number (as Python writes
    it, which is how TOML writes it for the usual ones); None for anything else."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _foreach(items: object, path: KeyPath, label: str, fail: Fail) -> FanOut:
    if not isinstance(items, list) or not items:
        raise fail(path, f"{label}: foreach must be a non-empty list of values (or of tables)")
    if any(isinstance(item, dict) for item in items):
        return _foreach_tables(items, path, label, fail)
    values = [_value(item) for item in items]
    if any(value is None for value in values):
        raise fail(path, f"{label}: foreach must be a non-empty list of values (strings or "
                   "numbers), or of tables of them")  # fmt: skip
    if any("\0" in str(value) for value in values):
        raise fail(path, f"{label}: a foreach value holds a NUL character, which a command "
                   "line cannot carry")  # fmt: skip
    return FanOut(tuple((str(value),) for value in values))


def _foreach_tables(items: list[Any], path: KeyPath, label: str, fail: Fail) -> FanOut:
    """`foreach = [{ src = "a.png", dst = "a.webp" }, ...]`: a task per table, each with
    the keys of the first (in its order)."""
    names: tuple[str, ...] = ()
    records = []
    for index, item in enumerate(items):
        what = f"{label}: foreach entry {index + 1}"
        if not isinstance(item, dict):
            raise fail((*path, index), f"{what} is {kind_of(item)}, not a table: give every "
                       "entry as a table (or every entry as a value)")  # fmt: skip
        if not item:
            raise fail((*path, index), f"{what} is an empty table")
        if index == 0:
            names = _names(item, (*path, index), what, fail)
        elif set(item) != set(names):
            raise fail((*path, index), f"{what} has the keys {', '.join(item)}, entry 1 "
                       f"has {', '.join(names)}: every entry needs the same keys")  # fmt: skip
        records.append(tuple(_named_value(item[name], (*path, index, name), f"{what}: {name}",
                                          fail) for name in names))  # fmt: skip
    return FanOut(tuple(records), names)


def _matrix(table: object, path: KeyPath, label: str, fail: Fail) -> FanOut:
    """`matrix = { py = ["3.11", "3.12"], os = ["linux", "mac"] }`: a task per
    combination, the first key varying slowest."""
    example = 'matrix = { py = ["3.11", "3.12"], os = ["linux", "mac"] }'
    if not isinstance(table, dict):
        raise fail(path, f"{label}: matrix must be a table of lists, as in {example}")
    if not table:
        raise fail(path, f"{label}: matrix is empty; give it a list for each name, as in "
                   f"{example}")  # fmt: skip
    names = _names(table, path, f"{label}: matrix", fail)
    lists: list[tuple[str, ...]] = []
    for name in names:
        values = table[name]
        what = f"{label}: matrix.{name}"
        if not isinstance(values, list):
            raise fail((*path, name), f"{what} must be a list of values, got {kind_of(values)}")
        if not values:
            raise fail((*path, name), f"{what} is an empty list (it would make no tasks)")
        lists.append(tuple(_named_value(value, (*path, name), what, fail) for value in values))
    count = math.prod(len(values) for values in lists)
    if count > MAX_TASKS_PER_ENTRY:
        raise fail(path, f"{label}: matrix makes {count} tasks, more than the "
                   f"{MAX_TASKS_PER_ENTRY} one [[task]] may make")  # fmt: skip
    return FanOut(tuple(product(*lists)), names)


def _names(table: dict[str, Any], path: KeyPath, what: str, fail: Fail) -> tuple[str, ...]:
    for name in table:
        if not _NAME.fullmatch(name):
            raise fail((*path, name), f"{what}: {name!r} is not a name for {{{name}}} "
                       "(letters, digits and _, not starting with a digit)")  # fmt: skip
    return tuple(table)


def _named_value(value: object, path: KeyPath, what: str, fail: Fail) -> str:
    text = _value(value)
    if text is None:
        raise fail(path, f"{what}: a value must be a string or a number, got {kind_of(value)}")
    if "\0" in text:
        raise fail(path, f"{what}: a value holds a NUL character, which a command line "
                   "cannot carry")  # fmt: skip
    return text


def kind_of(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
             list: "an array", dict: "a table"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Expansion:
    """A [[task]] read (`base`, numbered from its first task) and what it fans out over;
    `specs` makes its tasks once the number of tasks in the file is known ({##})."""

    base: TaskSpec
    fan_out: FanOut | None
    id_template: str | None
    where: KeyPath  # ("task", N)
    label: str
    inherited: frozenset[KeyPath]  # ("cwd",), ("env", NAME): what comes from [defaults]
    literal: str = ""  # prompt_file's text: it follows each prompt as it is

    @property
    def count(self) -> int:
        return 1 if self.fan_out is None else len(self.fan_out.records)

    def specs(self, total: int, fail: Fail) -> Iterator[TaskSpec]:
        if self.fan_out is None:
            yield self.base
            return
        grammar = self.fan_out.grammar
        self._check_fields(grammar, fail)
        template = None if self.base.agent is not None else self._template(grammar, fail)
        if template is not None and template.uses_total:  # kept for a render with {%}
            template = replace(template, total=total)
        for seq, record in enumerate(self.fan_out.records, start=self.base.seq):
            yield self._spec(seq, Args((record,)), grammar, template, total)

    def _spec(
        self, seq: int, args: Args, grammar: Grammar, template: Template | None, total: int
    ) -> TaskSpec:
        base = self.base
        env = {name: render_text(value, args, seq, grammar, total)
               for name, value in base.env.items()}  # fmt: skip
        fields: dict[str, Any] = {
            "seq": seq,
            "task_id": self._task_id(args, seq, grammar, total),
            "input": args.recorded(grammar.names),
            "cwd": None if base.cwd is None else render_text(base.cwd, args, seq, grammar, total),
            "junit": None if base.junit is None else render_text(base.junit, args, seq, grammar,
                                                                 total),
            "env": env,
        }
        if base.agent is not None:
            call = render_call(base.agent, args, seq, grammar, total, self.literal)
            return replace(base, **fields, agent=call, command=agent_command(call))
        assert template is not None
        later = template.uses_slot  # {%} is known when the task starts: render it again then
        return replace(base, **fields, command=template.render(args, seq, None, total),
                       template=template if later else None, args=args if later else None)

    def _task_id(self, args: Args, seq: int, grammar: Grammar, total: int) -> str:
        """The id written (its replacement strings filled in), else the values joined by a
        space; an id with no replacement string gets the values appended: `test-3.11-linux`."""
        written = self.id_template
        if written is None:
            return task_id_of(args)
        if has_replacement(written, grammar):
            return display_value(render_text(written, args, seq, grammar, total))
        return display_value("-".join((written, *args.values)))

    def _template(self, grammar: Grammar, fail: Fail) -> Template:
        command = self.base.command
        words = (command,) if isinstance(command, str) else command
        try:
            return Template(words, isinstance(command, str), grammar)
        except UsageError as exc:  # an unsupported {...}, a value no reference can reach
            raise fail((*self.where, "cmd"), f"{self.label}: {exc}") from None

    def _check_fields(self, grammar: Grammar, fail: Fail) -> None:
        """An unsupported `{...}` in a templated field is an error at that field's line,
        said once (not once per task)."""
        base = self.base
        fields: list[tuple[KeyPath, str, str]] = []
        if self.id_template is not None:
            fields.append((("id",), "id", self.id_template))
        if base.cwd is not None:
            fields.append((("cwd",), "cwd", base.cwd))
        if base.junit is not None:
            fields.append((("junit",), "junit", base.junit))
        for name, value in base.env.items():
            fields.append((("env", name), f"env.{name}", value))
        if base.agent is not None:
            fields.append((("prompt",), "prompt", base.agent.prompt))
            fields += [(("attach",), "attach", path) for path in base.agent.attach]
            fields += [(("args",), "args", word) for word in base.agent.args]
        for key_path, what, text in fields:
            try:
                grammar.split(text, f"{what} {text!r}")
            except UsageError as exc:
                table = ("defaults",) if key_path in self.inherited else self.where
                raise fail((*table, *key_path), f"{self.label}: {exc}") from None
