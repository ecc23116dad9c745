"""What the reduce is given, read back from the run folder in input order and streamed:
a command's JSON lines (one a task), an agent prompt's {results}, {outputs} and
{verdict}, and the fingerprint that tells --resume whether any of it changed.

Every file is opened through the run folder (aop.RunFolder: relative to it, never
through a planted link). Nothing here holds more than one task's line, or more than
`max_bytes` of output, at a time."""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from fanout_cli.aop import RunFolder, output_names_of
from fanout_cli.aop.documents import json_bytes, parse_json
from fanout_cli.models import Verdict

Rows = Callable[[], Iterator[dict[str, Any]]]
LINE_KEYS = ("task_id", "seq", "status", "exit_code", "summary", "score", "vote_key", "input",
             "details_file", "stdout_file")  # fmt: skip
CHUNK_BYTES = 64 << 10
_DETAILS_LIMIT = 16 << 20


def task_line(folder: RunFolder, row: Mapping[str, Any]) -> dict[str, Any]:
    """A task as a reduce command reads it; file names are relative to the run folder
    ($FANOUT_RUN_DIR)."""
    details = row.get("details_file")
    names = output_names_of(details) if isinstance(details, str) else None
    line = {key: row.get(key) for key in LINE_KEYS[:7]}
    line["input"] = row["input"] if "input" in row else _recorded_input(folder, details)
    line["details_file"] = details
    line["stdout_file"] = None if names is None else names[0]
    return line


def _recorded_input(folder: RunFolder, details: object) -> Any:
    """A row written by a fanout that did not journal inputs: its details file says."""
    if not isinstance(details, str):
        return None
    try:
        with open(folder.open(details), "rb") as handle:
            document = parse_json(handle.read(_DETAILS_LIMIT))
    except (OSError, ValueError):
        return None
    return document.get("input") if isinstance(document, dict) else None


def line_chunks(folder: RunFolder, rows: Rows) -> Iterator[bytes]:
    """The JSON lines, in input order, a chunk of about CHUNK_BYTES at a time."""
    batch: list[bytes] = []
    size = 0
    for row in rows():
        encoded = json_bytes(task_line(folder, row)) + b"\n"
        batch.append(encoded)
        size += len(encoded)
        if size >= CHUNK_BYTES:
            yield b"".join(batch)
            batch.clear()
            size = 0
    if batch:
        yield b"".join(batch)


def fingerprint(step: Mapping[str, Any], verdict: str, folder: RunFolder, rows: Rows) -> str:
    """A digest of everything the reduce is given: what it is, the verdict, each task's
    line, and which record each task's result is (a task that ran again has a new
    details file, even when its line reads the same)."""
    digest = hashlib.sha256(json_bytes([step, verdict]))
    for row in rows():
        digest.update(json_bytes(task_line(folder, row)))
        digest.update(_record_identity(folder, row.get("details_file")).encode())
    return digest.hexdigest()


def _record_identity(folder: RunFolder, details: object) -> str:
    if not isinstance(details, str):
        return "-"
    try:
        stat = folder.stat(details)
    except OSError:
        return "?"
    return f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"


def verdict_text(verdict: Verdict) -> str:
    """{verdict}: `pass (all-succeed: 3 of 3 succeeded)`."""
    return f"{'pass' if verdict.passed else 'fail'} ({verdict.strategy}: {verdict.reason})"


def results_text(rows: Rows, limit: int) -> str:
    """{results}: one line a task (status, id, summary), in input order, at most
    `limit` bytes; a last line says how many were left out."""
    lines: list[str] = []
    used = 0
    left_out = 0
    for row in rows():
        task_id, summary = _one_line(row.get("task_id")), _one_line(row.get("summary"))
        line = f"- {row.get('status')} {task_id}: {summary}"
        size = len(line.encode("utf-8", "surrogateescape")) + 1
        if left_out or used + size > limit:
            left_out += 1
            continue
        lines.append(line)
        used += size
    if left_out:
        lines.append(f"[fanout: {left_out} more task{'s' * (left_out != 1)} left out: "
                     f"{{results}} is capped at max_bytes = {limit}]")  # fmt: skip
    return "\n".join(lines)


def _one_line(value: object) -> str:
    return str(value).replace("\r", "\\r").replace("\n", "\\n")


def outputs_text(folder: RunFolder, rows: Rows, limit: int) -> str:
    """{outputs}: the stdout of each task that succeeded, in input order, each within
    <output task="ID"> ... </output>, at most `limit` bytes of output in all; a last
    line says what was cut and what was left out."""
    parts: list[str] = []
    budget = limit
    cut: str | None = None
    left_out = left_out_bytes = 0
    for row in rows():
        if row.get("status") != "success":
            continue
        name = _stdout_name(row)
        data, size = _read_start(folder, name, budget) if name else (b"", 0)
        if budget <= 0 and size:
            left_out += 1
            left_out_bytes += size
            continue
        if len(data) < size:
            cut = f"{_one_line(row.get('task_id'))} cut after {len(data)} of {size} bytes"
        budget -= len(data)
        text = _decoded(data, whole=len(data) == size).rstrip("\n")
        parts.append(f"<output task={json.dumps(str(row.get('task_id')), ensure_ascii=False)}>\n"
                     f"{text}\n</output>")  # fmt: skip
    notes = [cut] if cut else []
    if left_out:
        notes.append(f"{left_out} more output{'s' * (left_out != 1)} ({left_out_bytes} bytes) "
                     "left out")
    if notes:
        parts.append(f"[fanout: {{outputs}} is capped at max_bytes = {limit}: "
                     f"{'; '.join(notes)}]")
    return "\n".join(parts)


def _stdout_name(row: Mapping[str, Any]) -> str | None:
    details = row.get("details_file")
    names = output_names_of(details) if isinstance(details, str) else None
    return None if names is None else names[0]


def _read_start(folder: RunFolder, name: str, budget: int) -> tuple[bytes, int]:
    """The first `budget` bytes of a file of the folder and its size; a link planted
    there, or a missing file, reads as empty."""
    try:
        descriptor = folder.open(name)
    except OSError:
        return b"", 0
    with open(descriptor, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        return (handle.read(budget) if budget > 0 else b""), size


def _decoded(data: bytes, *, whole: bool) -> str:
    """UTF-8 text; a character cut in two at the end of a capped part is dropped."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    return decoder.decode(data, final=whole)


def prompt_values(
    template: str, verdict: Verdict, folder: RunFolder, rows: Rows, limit: int
) -> dict[str, str]:
    """The placeholders' values; only those the template uses are read."""
    makers: dict[str, Callable[[], str]] = {
        "results": lambda: results_text(rows, limit),
        "outputs": lambda: outputs_text(folder, rows, limit),
        "verdict": lambda: verdict_text(verdict),
    }
    return {name: make() if "{" + name + "}" in template else "" for name, make in makers.items()}
