"""The run folder `<output-dir>/<run-id>/`: the one package that names, writes and reads
its files (the Agent Output Protocol folder).

- this module: every name inside a run folder (`RunFolder`), the slug rules.
- `documents`: the JSON documents (details, task list, journal rows, manifest), built
  from the models and parsed back.
- `writer`: a run being written (`RunStore`), atomic replacement, new run folders.
- `reader`: runs as they lie on disk, including what a crash (kill -9) leaves behind.

The names come first because every other module of the package uses them."""


from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fanout_cli.models import TaskSpec

MANIFEST = "manifest.json"
JOURNAL = "journal.jsonl"
TASK_LIST = "tasks.jsonl"
LOCK = "lock"
TIMINGS = "timings.json"
DETAILS_EXTENSION = ".json"
SLUG_LIMIT = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def slugify(task_id: str) -> str:
    """The task id reduced to [A-Za-z0-9._-], at most 64 characters; never empty."""
    return _UNSAFE.sub("_", task_id)[:SLUG_LIMIT] or "_"


def task_basename(spec: TaskSpec) -> str:
    """`<seq>-<slug>`: the seq prefix keeps ids that slugify alike apart."""
    return f"{spec.seq:04d}-{slugify(spec.task_id)}"


def details_name(spec: TaskSpec) -> str:
    """The name of a task's details document."""
    return task_basename(spec) + DETAILS_EXTENSION


def output_names_of(details_file: str) -> tuple[str, str] | None:
    """The names of the stdout and stderr files beside a details document, or None
    when `details_file` is not a details document's name."""
    stem, extension = os.path.splitext(os.path.basename(details_file))
    if extension != DETAILS_EXTENSION or not stem:
        return None
    return f"{stem}.stdout", f"{stem}.stderr"


class RunFolder:
    """The paths inside one run folder. The per-task paths are plain strings: they are
    made for every task, and pathlib costs more than the rest of that work."""

    __slots__ = ("path", "root")

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.root = str(path)

    @property
    def manifest(self) -> Path:
        return self.path / MANIFEST

    @property
    def journal(self) -> Path:
        return self.path / JOURNAL

    @property
    def task_list(self) -> Path:
        return self.path / TASK_LIST

    @property
    def lock(self) -> Path:
        return self.path / LOCK

    @property
    def timings(self) -> Path:
        return self.path / TIMINGS

    def member(self, name: str) -> str:
        """A file of the folder that a record names (`details_file`, an output's `path`)."""
        return os.path.join(self.root, name)

    def details(self, spec: TaskSpec) -> str:
        return os.path.join(self.root, details_name(spec))

    def outputs(self, spec: TaskSpec, attempt: int | None = None) -> tuple[str, str]:
        """The stdout and stderr files of a task; earlier attempts keep a `.aN` suffix."""
        suffix = f".a{attempt}" if attempt else ""
        base = os.path.join(self.root, task_basename(spec) + suffix)
        return f"{base}.stdout", f"{base}.stderr"
