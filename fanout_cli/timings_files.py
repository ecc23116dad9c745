"""What `--timings` values stand for, and the durations read from them (`fanout run`,
`fanout merge`, `fanout timings export`).

Each value is a file, a glob, or several of those separated by commas:
`--timings old.json,reports/*.xml`. A value that names an existing file as a whole is
that file, whatever commas or glob characters its name has. fanout expands a glob
itself (so a quoted one works, and in a task file too), sorted by name, to the files it
matches (`**` goes into subfolders; names starting with a dot only when the pattern
says so, as in a shell). Files are read in the order given, each once: a later file's
durations count as newer. A name that is no file, or a glob that matches none, is a
warning (a first CI pipeline has no timings yet); a file that cannot be read as
timings is a usage error."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fanout_cli.errors import UsageError
from fanout_cli.timings import Timings, load_timings

FLAG = "--timings"


@dataclass(frozen=True)
class ExpandedTimings:
    files: tuple[str, ...]  # in the order given, each once
    missing: tuple[str, ...]  # `NAME: no such file`, `GLOB: no file matches`


def expand_timings(values: Iterable[str]) -> ExpandedTimings:
    """The files the values name; UsageError for an empty name between commas."""
    files: dict[str, str] = {}  # real path -> the name first given for it
    missing: list[str] = []
    for value in values:
        for part in _parts(value):
            found = _matches(part)
            if not found:
                reason = "no file matches" if glob.has_magic(part) else "no such file"
                missing.append(f"{part}: {reason}")
            for name in found:
                files.setdefault(os.path.realpath(name), name)
    return ExpandedTimings(tuple(files.values()), tuple(dict.fromkeys(missing)))


def _parts(value: str) -> list[str]:
    if os.path.exists(value):
        return [value]
    parts = value.split(",")
    if not all(parts):
        raise UsageError(f"{FLAG} {value}: an empty file name between commas")
    return parts


def _matches(part: str) -> list[str]:
    """The part itself when it exists (or is no glob), else the files its glob matches."""
    if os.path.exists(part):
        return [part]
    if not glob.has_magic(part):
        return []
    return sorted(name for name in glob.glob(part, recursive=True) if os.path.isfile(name))


def read_timings(values: Sequence[str], note: str = "") -> Timings:
    """The durations of every file the values name, oldest first: a warning (with
    `note` after it) for each name that is no file, UsageError for a file that is not
    timings (a fanout timings file, a manifest.json, JUnit XML)."""
    from fanout_cli.render.console import warn

    expanded = expand_timings(values)
    for problem in expanded.missing:
        warn(f"{FLAG} {problem}{'; ' + note if note else ''}")
    timings = Timings()
    for path in expanded.files:
        try:
            timings.merge(load_timings(path))
        except ValueError as exc:
            raise UsageError(f"{FLAG} {exc}") from None
    return timings
