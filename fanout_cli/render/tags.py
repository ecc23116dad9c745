"""--tag: each line of a task's output prefixed with the task's values and a TAB, as
GNU parallel tags them.

The tag of a task is its values joined by spaces (`::: a ::: 1` tags `a 1`, a -X batch
`a b c`, --colsep columns and --header names likewise); a task with no values (a task
file's own `[[task]]`) is tagged with its id. Tagging works on a stream: a prefix goes
before the first byte of each line, so a last line without a newline is tagged and
left without one, exactly as GNU parallel prints it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


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
    over: a chunk may end inside a line)."""

    __slots__ = ("at_line_start", "prefix")

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.at_line_start = True

    def __call__(self, chunk: bytes) -> bytes:
        if not chunk:
            return chunk
        head = self.prefix if self.at_line_start else b""
        body = chunk[:-1].replace(b"\n", b"\n" + self.prefix) + chunk[-1:]
        self.at_line_start = chunk.endswith(b"\n")
        return head + body
