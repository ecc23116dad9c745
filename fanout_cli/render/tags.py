"""--tag: each line of a task's output prefixed with the task's values and a TAB, as
GNU parallel tags them.

The tag of a task is its values joined by spaces (`::: a ::: 1` tags `a 1`, a -X batch
`a b c`, --colsep columns and --header names likewise); a task with no values (a task
file's own `[[task]]`) is tagged with its id. Tagging works on a stream: a prefix goes
before the first byte of each line, so a last line without a newline is tagged and
left without one, exactly as GNU parallel prints it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fanout_cli.models import TaskSpec

_LINE_START = re.compile(rb"[\n\r]")  # a line starts after either


def tag_of(task_id: str, value: str | Sequence[str] | Mapping[str, str] | None) -> str:
    """The text --tag puts before each line of a task (without the TAB)."""
    if value is None:
        return task_id
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return " ".join(value.values())
    return " ".join(value)


class Tagger:
    """Prefixes every line of one task's stream, chunk by chunk (`at_line_start` carries
    over: a chunk may end inside a line). As in GNU parallel, a carriage return starts
    a line too (a progress line redrawn with \\r is tagged each time)."""

    __slots__ = ("_template", "at_line_start", "prefix")

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self._template = b"\\g<0>" + prefix.replace(b"\\", b"\\\\")  # for re.sub
        self.at_line_start = True

    def __call__(self, chunk: bytes) -> bytes:
        if not chunk:
            return chunk
        head = self.prefix if self.at_line_start else b""
        inner = chunk[:-1]
        if b"\r" in inner:
            inner = _LINE_START.sub(self._template, inner)
        else:
            inner = inner.replace(b"\n", b"\n" + self.prefix)
        self.at_line_start = chunk[-1] in (10, 13)
        return head + inner + chunk[-1:]


def render_tagstring(text: str, spec: TaskSpec, slot: int) -> str:
    """--tagstring for one task: GNU parallel's replacement strings ({} {1} {#} {%} and
    the rest, {name} with --header) filled from the task's values; a task with no
    values (a task file's own) stands for its id, a --pipe block for nothing."""
    from fanout_cli.replacements import Args, Grammar, strings

    value = spec.input
    names: tuple[str, ...] = tuple(value) if isinstance(value, Mapping) else ()
    args = spec.args
    if args is None:
        if value is None or isinstance(value, str):  # a --pipe block: no values
            args = Args.one(("" if spec.stdin else spec.task_id) if value is None else value)
        else:
            args = Args((tuple(value.values() if isinstance(value, Mapping) else value),))
    grammar = Grammar(positions=None, names=names)
    return "".join(
        part if isinstance(part, str) else " ".join(strings(part, args, spec.seq, slot, None))
        for part in grammar.split(text, repr(text))
    )
