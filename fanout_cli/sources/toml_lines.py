"""Where each key of a TOML document is: the line to name in an error (FILE:LINE).

tomllib does not keep positions, so this reads the text once, following table headers,
arrays of tables and dotted keys, and maps each key path to its line."""

from __future__ import annotations

import re

KeyPath = tuple[str | int, ...]

# tomllib recurses once per nested array or inline table (a few thousand levels raise
# RecursionError) and takes quadratic time over a long dotted key: both are bounded
# before it runs. A task file needs a handful of levels; 32 is generous.
MAX_NESTING = 32
MAX_KEY_PARTS = 32
# What the limits scan looks at: strings and comments (skipped whole), brackets, dots,
# and what ends a dotted key (=, comma, newline).
_LIMIT_TOKEN = re.compile(
    r'"""(?:[^\\]|\\.)*?"""(?:"{1,2})?'
    r"|'''.*?'''(?:'{1,2})?"
    r'|"(?:[^"\\\n]|\\.)*"?'
    r"|'[^'\n]*'?"
    r"|#[^\n]*"
    r"|[\[\]{}.=,\n]",
    re.DOTALL,
)


def nesting_problem(text: str) -> tuple[int, str] | None:
    """The line and problem of the first array or table nested deeper than
    MAX_NESTING, or dotted key of more than MAX_KEY_PARTS parts; None when there is
    none. One linear pass over the raw text: it runs before the TOML parser."""
    line, depth, dots = 1, 0, 0
    for match in _LIMIT_TOKEN.finditer(text):
        token = match.group(0)
        if token == ".":
            dots += 1
            if dots >= MAX_KEY_PARTS:
                return line, f"a dotted key of more than {MAX_KEY_PARTS} parts"
            continue
        line += token.count("\n")
        if token[0] in "\"'#":
            continue  # a string or comment: it neither nests nor ends a key
        dots = 0
        if token in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return line, f"nesting deeper than {MAX_NESTING} levels"
        elif token in "]}":
            depth = max(depth - 1, 0)
    return None


_BARE_KEY = r"[A-Za-z0-9_-]+"
_KEY = rf"(?:{_BARE_KEY}|\"(?:[^\"\\]|\\.)*\"|'[^']*')"
_DOTTED_KEY = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"\s*(\[\[?)\s*({_DOTTED_KEY})\s*\]\]?")
_ASSIGNMENT = re.compile(rf"\s*({_DOTTED_KEY})\s*=")
_KEY_PART = re.compile(_KEY)


def _key_parts(dotted: str) -> list[str]:
    parts = []
    for match in _KEY_PART.finditer(dotted):
        part = match.group(0)
        if part[0] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return parts


class KeyLines:
    """Line numbers of TOML table headers and keys, by key path.

    Paths look like ("run", "jobs"), ("task", 2), ("task", 2, "env", "CI"); the n-th
    [[task]] header gets index n. Keys inside inline tables and arrays are not
    located; `find` falls back to the nearest enclosing key or header."""

    def __init__(self, text: str) -> None:
        self.lines: dict[KeyPath, int] = {}
        self._scan(text)

    def find(self, path: KeyPath) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def _scan(self, text: str) -> None:
        table: KeyPath = ()
        array_counts: dict[KeyPath, int] = {}
        depth = 0  # open [ and { of values spanning lines
        closing_quote: str | None = None  # inside a multi-line string
        for number, line in enumerate(text.splitlines(), start=1):
            position = 0
            if closing_quote is not None:
                end = _find_closing(line, 0, closing_quote)
                if end < 0:
                    continue
                closing_quote, position = None, end
            elif depth == 0:
                header = _HEADER.match(line)
                assignment = _ASSIGNMENT.match(line)
                if header and not assignment:
                    names = _table_path(_key_parts(header.group(2)), array_counts)
                    if header.group(1) == "[[":
                        index = array_counts.get(names, 0)
                        array_counts[names] = index + 1
                        table = (*names, index)
                    else:
                        table = names
                    self.lines.setdefault(table, number)
                    continue
                if assignment:
                    key = (*table, *_key_parts(assignment.group(1)))
                    self.lines.setdefault(key, number)
                    position = assignment.end()
            depth, closing_quote = _scan_value(line, position, depth)


def _table_path(parts: list[str], array_counts: dict[KeyPath, int]) -> KeyPath:
    """`[task.env]` after the third `[[task]]` is ("task", 2, "env")."""
    path: KeyPath = ()
    for position, part in enumerate(parts):
        path = (*path, part)
        if path in array_counts and position < len(parts) - 1:
            path = (*path, array_counts[path] - 1)
    return path


def _find_closing(line: str, start: int, quote: str) -> int:
    """Index just past the closing triple quote, or -1."""
    index = start
    while True:
        found = line.find(quote, index)
        if found < 0:
            return -1
        if quote == '"""' and _escaped(line, found):
            index = found + 1
            continue
        end = found + 3
        while line[end : end + 1] == quote[0]:  # up to two quotes may precede the closer
            end += 1
        return end


def _escaped(line: str, index: int) -> bool:
    backslashes = 0
    while index - backslashes - 1 >= 0 and line[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _scan_value(line: str, position: int, depth: int) -> tuple[int, str | None]:
    """Follow brackets and strings through one line of a value."""
    index = position
    while index < len(line):
        char = line[index]
        if char == "#":
            break
        if char in "\"'":
            triple = char * 3
            if line.startswith(triple, index):
                end = _find_closing(line, index + 3, triple)
                if end < 0:
                    return depth, triple
                index = end
                continue
            index += 1
            while index < len(line) and line[index] != char:
                index += 2 if char == '"' and line[index] == "\\" else 1
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(depth - 1, 0)
        index += 1
    return depth, None
