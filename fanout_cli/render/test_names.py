"""What fanout's own testcase for a task is called, and which tests the task's output
says failed, for CI reports of tasks that wrote no JUnit of their own.

A task whose value is a path (`tests/unit/test_x.py`, `./pkg/foo`, a pytest node id)
gets file=that path and classname=its dotted module (`tests.unit.test_x`); a task of a
task file gets the file and its stem (`ci` for ci.toml); anything else the classname
`fanout`. The failing tests are read from the tails of stdout and stderr that the
report already holds (a few kilobytes): pytest's short summary (`FAILED x.py::t -
...`, `ERROR ...`), unittest (`FAIL: test_x (mod.Class.test_x)`), Jest (its `●`
lines), go test (`--- FAIL: TestX (0.00s)`) and cargo test (`test a::b ... FAILED`)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

MAX_NAMES = 50  # named in the failure's text; its message names the first few
_IN_MESSAGE = 3
_PATTERNS = (
    re.compile(r"^(?:FAILED|ERROR) (?!\()(.+?)(?: - .*)?$", re.MULTILINE),  # pytest -r summary
    re.compile(r"^(?:FAIL|ERROR): (\w+) \(([\w.]+)\)", re.MULTILINE),  # unittest
    re.compile(r"^ *● (?!Test suite failed to run|Console)(.+?) *$", re.MULTILINE),  # Jest
    re.compile(r"^ *--- FAIL: (\S+)", re.MULTILINE),  # go test, subtests indented
    re.compile(r"^test (\S+) \.\.\. FAILED$", re.MULTILINE),  # cargo test
)
_UNITTEST = _PATTERNS[1]
_PATH = re.compile(r"[^\s:]*(?:/[^\s:]*|\.[A-Za-z0-9]{1,8})(?:::\S*)?")
_ORIGIN_FILE_LINE = re.compile(r"(.+):([0-9]+)")
_PSEUDO_ORIGINS = frozenset({"stdin", "::"})  # `stdin:17`, `:::2` (see fanout_cli/sources)


def failing_tests(*texts: str) -> list[str]:
    """The tests the texts (a task's output tails) name as failed, each once, at most
    MAX_NAMES, in the order each runner's pattern finds them."""
    found: dict[str, None] = {}
    for text in texts:
        for pattern in _PATTERNS:
            for match in pattern.finditer(text):
                found.setdefault(_name_of(pattern, match), None)
                if len(found) >= MAX_NAMES:
                    return list(found)
    return list(found)


def _name_of(pattern: re.Pattern[str], match: re.Match[str]) -> str:
    if pattern is not _UNITTEST:
        return match.group(1)
    test, where = match.group(1), match.group(2)  # 3.11: (mod.Class.test); before: (mod.Class)
    return where if where.endswith("." + test) else f"{where}.{test}"


def failure_message(names: list[str]) -> str:
    """`failed: a, b, c and 4 more`."""
    shown = ", ".join(names[:_IN_MESSAGE])
    more = len(names) - _IN_MESSAGE
    return f"failed: {shown}" + (f" and {more} more" if more > 0 else "")


def case_place(row: Mapping[str, Any]) -> tuple[str, str | None]:
    """The classname and file of a task's own testcase."""
    value = row.get("input")
    if isinstance(value, str) and "://" not in value and _PATH.fullmatch(value):
        path = posixpath.normpath(value.partition("::")[0])
        if path not in (".", "/"):
            return _dotted(path), path
    origin = origin_file(row.get("origin"))
    if origin is not None:
        return posixpath.splitext(posixpath.basename(origin))[0] or "fanout", origin
    return "fanout", None


def _dotted(path: str) -> str:
    """`tests/unit/test_x.py` -> `tests.unit.test_x`; `../a/b` -> `a.b`."""
    parts = [part for part in path.split("/") if part not in ("", ".", "..")]
    if parts:
        parts[-1] = posixpath.splitext(parts[-1])[0] or parts[-1]
    return ".".join(parts) or path


def origin_file(origin: object) -> str | None:
    """`tasks.toml` for an origin `tasks.toml:12`; None for `stdin:3`, `:::2`, `glob:x`."""
    if not isinstance(origin, str):
        return None
    match = _ORIGIN_FILE_LINE.fullmatch(origin)
    if match is None or match.group(1) in _PSEUDO_ORIGINS:
        return None
    return match.group(1)
