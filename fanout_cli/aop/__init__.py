"""The run folder `<output-dir>/<run-id>/`: the one package that names, writes and reads
its files (the Agent Output Protocol folder).

- this module: every name inside a run folder (`RunFolder`), the slug rules.
- `documents`: the JSON documents (details, task list, journal rows, manifest), built
  from the models and parsed back.
- `writer`: a run being written (`RunStore`), atomic replacement, new run folders.
- `reader`: runs as they lie on disk, including what a crash (kill -9) leaves behind.
- `files`: opening a file of a run folder without following what is planted there.
- `checks`: the shape a manifest, a task row or a saved task must have to be read.

The names come first because every other module of the package uses them."""


from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from fanout_cli.aop import files

if TYPE_CHECKING:
    from fanout_cli.models import TaskSpec

MANIFEST = "manifest.json"
JOURNAL = "journal.jsonl"
TASK_LIST = "tasks.jsonl"
LOCK = "lock"
TIMINGS = "timings.json"
PLAN = "plan.json"  # a shard run's plan (fanout_cli/shards/record.py)
REPORT = "report.html"  # `fanout report`'s page (fanout_cli/report/), when made
DETAILS_EXTENSION = ".json"
SLUG_LIMIT = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def slugify(task_id: str) -> str:
    """The task id reduced to [A-Za-z0-9._-], at most 64 characters; never empty."""
    return _UNSAFE.sub("_", task_id)[:SLUG_LIMIT] or "_"


def seq_prefix(seq: int) -> str:
    """The seq as file names start with it, so that they sort in input order at any
    count (sorted(), byte order, `ls` and shell globs in C and UTF-8 locales): four
    digits up to 9999 (`0001`); beyond, the digits after a letter that says how many
    there are, `a` for five (`a10000`), `b` for six (`b100000`), and so on. Digits
    sort before letters, and a longer number gets a later letter."""
    if seq < 10_000:
        return f"{seq:04d}"
    digits = str(seq)
    return chr(ord("a") + len(digits) - 5) + digits


def task_basename(spec: TaskSpec) -> str:
    """`<seq>-<slug>`: the seq prefix keeps ids that slugify alike apart."""
    return _basename(spec.seq, spec.task_id)


@functools.lru_cache(maxsize=1024)
def _basename(seq: int, task_id: str) -> str:
    # Each running task's files are named several times as it runs and ends.
    return f"{seq_prefix(seq)}-{slugify(task_id)}"


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
    """The paths inside one run folder, and the only way its files are opened: relative
    to a descriptor on the folder, never through a link planted in it (aop.files). The
    per-task paths are plain strings: they are made for every task, and pathlib costs
    more than the rest of that work.

    A run being written holds a descriptor on its folder (`hold`, until `release`);
    otherwise each open opens the folder for as long as it takes."""

    __slots__ = ("_held", "path", "root")

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.root = str(path)
        self._held: int | None = None

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

    @property
    def plan(self) -> Path:
        return self.path / PLAN

    def member(self, name: str) -> str:
        """A file of the folder that a record names (`details_file`, an output's `path`);
        UnsafeFile when `name` is not a plain name of the folder (`/`, `..`)."""
        if not files.is_plain_name(name):
            raise files.UnsafeFile(self.root, f"{name!r}: {files.NOT_A_NAME}")
        return os.path.join(self.root, name)

    def details(self, spec: TaskSpec) -> str:
        return os.path.join(self.root, details_name(spec))

    def outputs(self, spec: TaskSpec, attempt: int | None = None) -> tuple[str, str]:
        """The stdout and stderr files of a task; earlier attempts keep a `.aN` suffix."""
        suffix = f".a{attempt}" if attempt else ""
        base = os.path.join(self.root, task_basename(spec) + suffix)
        return f"{base}.stdout", f"{base}.stderr"

    # --- opening its files --------------------------------------------------------

    def hold(self) -> None:
        """Keep a descriptor on the folder until `release`: a run writes many files, and
        the folder it writes stays the one it opened."""
        if self._held is None:
            self._held = files.open_folder(self.root)
            _HELD[self.root] = self._held

    def release(self) -> None:
        if self._held is not None:
            _HELD.pop(self.root, None)
            os.close(self._held)
            self._held = None

    def open(self, name: str, flags: int = files.READ, mode: int = 0o600) -> int:
        """A descriptor on `name` (files.READ: for reading); UnsafeFile for a link, a
        FIFO or a device, or a name that is not a plain name of the folder."""
        with files.folder_descriptor(self.root, self._held) as folder:
            return files.open_at(folder, name, flags, self.member(name), mode)

    @contextlib.contextmanager
    def replacing(self, name: str, mode: int = 0o600) -> Iterator[int]:
        """A temporary file of the folder renamed over `name` when the block ends well."""
        self.member(name)
        with (
            files.folder_descriptor(self.root, self._held) as folder,
            files.replacing_at(folder, name, mode) as descriptor,
        ):
            yield descriptor

    def write_whole(self, name: str, data: bytes) -> None:
        """`data` as the whole of `name`, atomically (files.write_whole_at)."""
        self.member(name)
        if self._held is not None:  # a run writing its folder: no context to enter
            files.write_whole_at(self._held, name, data)
            return
        with files.folder_descriptor(self.root) as folder:
            files.write_whole_at(folder, name, data)

    def rename(self, source: str, target: str) -> None:
        """Rename one file of the folder over another (a link is moved, not followed)."""
        with files.folder_descriptor(self.root, self._held) as folder:
            os.replace(source, target, src_dir_fd=folder, dst_dir_fd=folder)

    def stat(self, name: str) -> os.stat_result:
        """The status of `name` itself: a link planted there is not followed."""
        self.member(name)
        with files.folder_descriptor(self.root, self._held) as folder:
            return os.stat(name, dir_fd=folder, follow_symlinks=False)

    def remove(self, name: str) -> None:
        with files.folder_descriptor(self.root, self._held) as folder:
            os.unlink(name, dir_fd=folder)


# Folders held by a run in this process, by path: executors are handed output paths,
# and open them through the run's descriptor.
_HELD: dict[str, int] = {}


def open_output(path: str, *, append: bool = False) -> int:
    """A task's output file (a path RunFolder.outputs made), open for writing relative
    to its run folder: new and empty (files.create_at), or with `append` added to.
    UnsafeFile (an OSError) for a link planted at that name, which is left alone:
    only this task's attempt fails."""
    folder, name = os.path.split(path)
    with files.folder_descriptor(folder, _HELD.get(folder)) as descriptor:
        if append:
            return files.open_at(descriptor, name, files.APPEND, path)
        return files.create_at(descriptor, name, path)


def write_output(path: str, data: bytes, *, append: bool = False) -> None:
    """Write a task's output file whole (or add to it) from fanout itself (a Dask
    worker's outputs, an agent's reply). A link planted at that name is left alone and
    nothing is written: the task's reading of it then finds no output."""
    try:
        descriptor = open_output(path, append=append)
    except files.UnsafeFile:
        return
    with open(descriptor, "wb") as handle:
        handle.write(data)


def open_output_for_reading(path: str) -> int:
    """A task's output file, open for reading; UnsafeFile for a link, FIFO or device."""
    folder, name = os.path.split(path)
    with files.folder_descriptor(folder, _HELD.get(folder)) as descriptor:
        return files.open_at(descriptor, name, files.READ, path)
