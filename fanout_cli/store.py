"""The AOP folder of one run: streamed outputs, details files, journal, manifest.

Every file that is read back later (details, manifest) is written to a temporary name
and renamed into place, so a crash never leaves a half-written record behind."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import json
import os
import re
import secrets
import time
from array import array
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fanout_cli.errors import StoreError
from fanout_cli.models import AgentCall, Attempt, OutputInfo, RunReport, TaskResult, TaskSpec

AOP_VERSION = "1.0.0"
TASK_LIST = "tasks.jsonl"  # the tasks as read, for --resume with no source given
MANIFEST_VERSION = 1
SLUG_LIMIT = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
REDACTED = "***"


def slugify(task_id: str) -> str:
    """The task id reduced to [A-Za-z0-9._-], at most 64 characters; never empty."""
    return _UNSAFE.sub("_", task_id)[:SLUG_LIMIT] or "_"


def task_basename(spec: TaskSpec) -> str:
    """`<seq>-<slug>`: the seq prefix keeps ids that slugify alike apart."""
    return f"{spec.seq:04d}-{slugify(spec.task_id)}"


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    return {name: REDACTED if _SECRET_NAME.search(name) else value for name, value in env.items()}


def iso_time(epoch: float | None) -> str | None:
    """2026-11-22T10:15:30.123Z (UTC, milliseconds)."""
    if epoch is None:
        return None
    seconds = int(epoch)
    return f"{_iso_seconds(seconds)}.{int((epoch - seconds) * 1000):03d}Z"


@functools.lru_cache(maxsize=4)
def _iso_seconds(seconds: int) -> str:
    # Thousands of stamps a second share this part; formatting it once saves real time.
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def new_run_id() -> str:
    """Time-based, sortable and unique: 20261122T101530-3f9a."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def json_bytes(document: object, indent: int | None = None) -> bytes:
    """UTF-8 JSON. Values from input that are not valid UTF-8 (held as surrogates so
    commands get the exact bytes) are written as \\udcXX escapes, which Python reads
    back to the same bytes, instead of making the file invalid UTF-8."""
    text = json.dumps(document, indent=indent, ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(document, indent=indent, ensure_ascii=True).encode("ascii")


@contextlib.contextmanager
def replacing(path: Path | str, mode: int = 0o600) -> Iterator[int]:
    """A descriptor on a temporary file beside `path`, renamed over `path` when the
    block ends well and removed when it does not: readers never see half a file."""
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            yield descriptor
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_atomic(path: Path | str, chunks: Iterable[bytes]) -> None:
    """Write to a temporary name in the same folder, then rename over `path`."""
    with replacing(path) as descriptor:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(descriptor, view) :]


def write_json_atomic(path: Path, document: object) -> None:
    write_atomic(path, [json_bytes(document, indent=2), b"\n"])


class RowIndex:
    """Where each task's `task_ended` line starts in the journal, by seq: eight bytes a
    task, so a run of a million tasks need not keep its results in memory."""

    def __init__(self) -> None:
        self._offsets = array("q")

    def add(self, seq: int, offset: int) -> None:
        if len(self._offsets) < seq:
            self._offsets.extend([-1] * (seq - len(self._offsets)))
        self._offsets[seq - 1] = offset

    def __len__(self) -> int:
        return sum(1 for offset in self._offsets if offset >= 0)

    def offsets(self) -> Iterator[int]:
        return (offset for offset in self._offsets if offset >= 0)


class RunStore:
    """Owns `<output-dir>/<run-id>/`. All paths it hands out stay inside that folder."""

    def __init__(self, output_dir: str, run_id: str | None) -> None:
        self.output_dir = Path(output_dir).absolute()  # reports name it; cwd may differ
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{output_dir}: cannot create the output folder: {exc.strerror}"
            ) from None
        for _ in range(100):
            self.run_id = run_id or new_run_id()
            self.run_dir = self.output_dir / self.run_id
            try:
                self.run_dir.mkdir(mode=0o700)
                break
            except FileExistsError:
                if run_id:
                    raise StoreError(
                        f"{self.run_dir}: a run with this id already exists; "
                        "choose another --run-id"
                    ) from None
            except OSError as exc:
                raise StoreError(
                    f"{self.run_dir}: cannot create the run folder: {exc.strerror}"
                ) from None
        else:  # pragma: no cover - 100 collisions of a random suffix
            raise StoreError(f"{self.output_dir}: could not find a free run id")
        self.run_dir.chmod(0o700)  # mkdir's mode is filtered by the umask
        self._open()

    @classmethod
    def reopen(cls, run_dir: Path) -> RunStore:
        """An existing run folder, to add to it (--resume)."""
        store = cls.__new__(cls)
        store.run_dir = run_dir.absolute()
        store.output_dir = store.run_dir.parent
        store.run_id = run_dir.name
        store._open()
        return store

    def _open(self) -> None:
        # The lock says "a fanout is writing here": --resume and clean keep off. flock
        # is released by the kernel when the process dies, even by kill -9.
        self._lock = open(self.run_dir / "lock", "a+")  # noqa: SIM115 - closed in close()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "?"
            self._lock.close()
            raise StoreError(
                f"run {self.run_id} is in use by another fanout (pid {holder}); "
                "wait for it to end or stop it first"
            ) from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()
        self._journal = open(self.run_dir / "journal.jsonl", "ab")  # noqa: SIM115 - closed in close()
        self._journal.seek(0, os.SEEK_END)
        self._end_torn_line(self.run_dir / "journal.jsonl", self._journal)
        self._task_list = open(self.run_dir / TASK_LIST, "ab")  # noqa: SIM115 - closed in close()
        self._end_torn_line(self.run_dir / TASK_LIST, self._task_list)
        self._run_dir = str(self.run_dir)

    @staticmethod
    def _end_torn_line(path: Path, handle: Any) -> None:
        """A crash can leave a half-written last line; end it, so that what is
        appended now (a resume) starts on a line of its own. Readers skip the torn one."""
        if handle.tell() == 0:
            return
        with open(path, "rb") as reader:
            reader.seek(-1, os.SEEK_END)
            if reader.read(1) != b"\n":
                handle.write(b"\n")
                handle.flush()

    def close(self) -> None:
        self._journal.close()
        self._task_list.close()
        with contextlib.suppress(OSError):
            os.unlink(self.run_dir / "lock")
        self._lock.close()

    @property
    def manifest_path(self) -> Path:
        return self.run_dir / "manifest.json"

    # --- streams -----------------------------------------------------------------

    def output_paths(self, spec: TaskSpec, attempt: int | None = None) -> tuple[str, str]:
        """The stdout and stderr files of a task; earlier attempts keep a `.aN` suffix.
        (Plain strings: this runs for every task, and pathlib costs more than the rest.)"""
        suffix = f".a{attempt}" if attempt else ""
        base = os.path.join(self._run_dir, task_basename(spec) + suffix)
        return f"{base}.stdout", f"{base}.stderr"

    def set_aside_attempt(self, spec: TaskSpec, attempt: int) -> tuple[str, str]:
        """Before a retry, keep the previous attempt's outputs under `.aN` names."""
        current = self.output_paths(spec)
        kept = self.output_paths(spec, attempt)
        for source, target in zip(current, kept, strict=True):
            with contextlib.suppress(FileNotFoundError):
                os.replace(source, target)
        return os.path.basename(kept[0]), os.path.basename(kept[1])

    def describe_output(self, path: str, tail: bytes, size: int) -> OutputInfo:
        excerpt = tail[-4096:]
        return OutputInfo(
            path=os.path.basename(path),
            bytes=size,
            excerpt=excerpt.decode("utf-8", errors="replace"),
            truncated=size > len(excerpt),
        )

    # --- records -----------------------------------------------------------------

    def journal(self, event: str, **fields: object) -> int:
        """Append one event line and flush it; return the offset where it starts."""
        record = {"event": event, "time": iso_time(time.time()), **fields}
        offset = self._journal.tell()
        self._journal.write(json_bytes(record) + b"\n")
        self._journal.flush()
        return offset

    def rows(self, index: RowIndex) -> Iterator[dict[str, Any]]:
        """The task rows of the journal, in input order."""
        with open(self.run_dir / "journal.jsonl", "rb") as journal:
            for offset in index.offsets():
                journal.seek(offset)
                row: dict[str, Any] = json.loads(journal.readline())
                del row["event"], row["time"]
                yield row

    def save_specs(self, specs: Iterable[TaskSpec]) -> None:
        """Append tasks to the run's saved task list (secrets redacted), flushed so
        that a task never starts before it is on the list."""
        for spec in specs:
            self._task_list.write(json_bytes(spec_document(spec)) + b"\n")
        self._task_list.flush()

    def replace_task_list(self, specs: Iterable[TaskSpec]) -> None:
        """Make `specs` the saved task list (atomically), and append to it from now on."""
        path = self.run_dir / TASK_LIST
        write_atomic(path, (json_bytes(spec_document(spec)) + b"\n" for spec in specs))
        self._task_list.close()
        self._task_list = open(path, "ab")  # noqa: SIM115 - closed in close()

    def write_details(self, result: TaskResult, run_id: str) -> str:
        """One compact JSON line (the C encoder: indenting costs ten times as much);
        `fanout show` prints it readably."""
        name = task_basename(result.spec) + ".json"
        path = os.path.join(self._run_dir, name)
        write_atomic(path, [json_bytes(details_document(result, run_id)), b"\n"])
        return name

    def write_manifest(
        self, header: Mapping[str, Any], report: RunReport | None, status: str
    ) -> None:
        write_atomic(self.manifest_path, manifest_chunks(header, report, status))


def details_document(result: TaskResult, run_id: str) -> dict[str, Any]:
    spec = result.spec
    command: dict[str, Any]
    if spec.kind == "agent":
        command = {"prompt": spec.display_command()}
    elif isinstance(spec.command, str):
        command = {"command": spec.command, "shell": True}
    else:
        command = {"command": list(spec.command), "shell": False}
    if spec.kind == "agent-cli":
        assert spec.agent is not None
        command["prompt"] = spec.agent.prompt
    last = result.attempts[-1] if result.attempts else None
    return {
        "aop_version": AOP_VERSION,
        "agent_id": spec.task_id,
        "task": spec.display_command()[:200],
        "timestamp": iso_time(result.finished_at or time.time()),
        "duration_ms": round(result.duration * 1000),
        "run_id": run_id,
        "task_id": spec.task_id,
        "seq": spec.seq,
        "kind": spec.kind,
        **command,
        "cwd": spec.cwd,
        "env": redact_env(spec.env),
        "input": spec.input,
        "origin": spec.origin,
        "status": str(result.status),
        "reason": result.reason,
        "exit_code": result.exit_code,
        "signal": result.signal,
        "attempts": [attempt_document(attempt) for attempt in result.attempts],
        "started_at": iso_time(result.started_at),
        "finished_at": iso_time(result.finished_at),
        "summary": result.summary,
        "reported_status": result.reported_status,
        "metrics": dict(result.metrics),
        "score": result.score,
        "vote_key": result.vote_key,
        "stdout": output_document(result.stdout),
        "stderr": output_document(result.stderr),
        "agent": None if last is None or last.agent is None else dict(last.agent),
        "error": result.reason if result.status == "error" else None,
    }


def spec_document(spec: TaskSpec) -> dict[str, Any]:
    template = spec.template
    return {
        "seq": spec.seq,
        "task_id": spec.task_id,
        "key": spec.key,
        "command": spec.command if isinstance(spec.command, str) else list(spec.command),
        "cwd": spec.cwd,
        "env": redact_env(spec.env),
        "timeout": spec.timeout,
        "retries": spec.retries,
        "ok_exit": None if spec.ok_exit is None else sorted(spec.ok_exit),
        "input": spec.input,
        "origin": spec.origin,
        "template": None if template is None else {"words": list(template.words),
                                                    "shell": template.shell},
        "agent": None if spec.agent is None else agent_call_document(spec.agent),
    }


def agent_call_document(call: AgentCall) -> dict[str, Any]:
    document = dataclasses.asdict(call)
    document["attach"] = list(call.attach)
    document["args"] = list(call.args)
    return document


def attempt_document(attempt: Attempt) -> dict[str, Any]:
    return {
        "attempt": attempt.number,
        "status": str(attempt.status),
        "exit_code": attempt.exit_code,
        "signal": attempt.signal,
        "reason": attempt.reason,
        "started_at": iso_time(attempt.started_at),
        "finished_at": iso_time(attempt.finished_at),
        "duration_ms": round(attempt.duration * 1000),
        "stdout": attempt.stdout_path,
        "stderr": attempt.stderr_path,
        **(
            {"exchanges": attempt.agent.get("exchanges")}
            if attempt.agent and "exchanges" in attempt.agent
            else {}
        ),
    }


def output_document(info: OutputInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "path": info.path,
        "bytes": info.bytes,
        "excerpt": info.excerpt,
        "excerpt_truncated": info.truncated,
    }


REPORT_ROW_KEYS = (
    "task_id", "seq", "status", "exit_code", "duration_ms", "attempts", "summary", "details_file",
)  # fmt: skip


def journal_row(result: TaskResult) -> dict[str, Any]:
    """One ended task as the journal keeps it; the manifest and reports read it back."""
    return {
        "task_id": result.task_id,
        "seq": result.seq,
        "kind": result.spec.kind,
        "status": str(result.status),
        "exit_code": result.exit_code,
        "duration_ms": round(result.duration * 1000),
        "attempts": len(result.attempts),
        "summary": result.summary,
        "details_file": result.details_file,
        "key": result.spec.key,
        "origin": result.spec.origin,
        "reason": result.reason,
        "score": result.score,
        "vote_key": result.vote_key,
        "interrupted": result.interrupted,
    }


def report_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a task that the JSON result envelope promises."""
    return {key: row.get(key) for key in REPORT_ROW_KEYS}


def manifest_header(
    *, run_id: str, argv: list[str], options: Mapping[str, Any], started_at: float
) -> dict[str, Any]:
    return {
        "fanout_manifest_version": MANIFEST_VERSION,
        "run_id": run_id,
        "status": "running",  # then finished or interrupted
        "argv": argv,
        "cwd": os.getcwd(),
        "options": dict(options),
        "started_at": iso_time(started_at),
        "finished_at": None,
        "duration_ms": None,
        "verdict": None,
    }


def manifest_chunks(
    header: Mapping[str, Any], report: RunReport | None, status: str
) -> Iterator[bytes]:
    """manifest.json, its task list streamed one compact line a task."""
    document = {**header, "status": status}
    if report is not None:
        document["finished_at"] = iso_time(report.finished_at)
        document["duration_ms"] = round(report.duration * 1000)
        document["verdict"] = verdict_document(report)
    rows = report.rows() if report is not None else iter(())
    yield from json_with_tasks(
        document, ({**report_row(row), "origin": row.get("origin")} for row in rows)
    )


def json_with_tasks(head: Mapping[str, Any], tasks: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    """An indented JSON object ending in a "tasks" list that is streamed one compact
    line a task: a million tasks never sit in memory at once."""
    opening = json_bytes(head, indent=2)
    yield opening[: opening.rindex(b"}")].rstrip() + b',\n  "tasks": ['
    separator = b"\n    "
    for task in tasks:
        yield separator + json_bytes(task)
        separator = b",\n    "
    yield b"\n  ]\n}\n"


def verdict_document(report: RunReport) -> dict[str, Any]:
    verdict = report.verdict
    winner: dict[str, Any] | None = None
    if verdict.winner is not None and verdict.winner.vote_key is not None:
        winner = {
            "vote_key": verdict.winner.vote_key,
            "votes": verdict.winner.votes,
            "task_ids": list(verdict.winner.task_ids),
        }
    elif verdict.winner is not None:
        winner = {"task_id": verdict.winner.task_id, "score": verdict.winner.score}
    return {
        "passed": verdict.passed,
        "strategy": verdict.strategy,
        "reason": verdict.reason,
        "winner": winner,
        "counts": dict(verdict.counts),
    }
