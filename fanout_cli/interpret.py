"""Reading a finished task's outputs into its result: the summary, the markers it
printed (status, score, metrics), its score and its vote key.

The runner decides when a task ends and with which status; this module says what
the task's outputs mean. Outputs can be gigabytes, so the summary and the AOP markers
come from their tails (`TAIL_BYTES`), which is where a task prints them; a vote key
and a --score or --vote-on regex read the whole stdout as a stream (scan.py).
An agent's reply is what its summary, score and vote come from (for an agent CLI, the
answer parsed out of the tool's JSON, not the JSON)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import anyio

from fanout_cli.aop import details_name, open_output_for_reading
from fanout_cli.aop.files import UnsafeFile
from fanout_cli.aop.writer import RunStore
from fanout_cli.models import Attempt, OutputInfo, TaskResult, TaskSpec, TaskStatus
from fanout_cli.options import VerdictOptions
from fanout_cli.strategies import uses_votes

T = TypeVar("T")
TAIL_BYTES = 256 << 10
EXCERPT_BYTES = 4096
_MARKER = re.compile(r"^[ \t]*\[AOP:([A-Z_]+)\][ \t]*(.*?)\r?$", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*(?:\x07|\x1b\\)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Markers:
    """The AOP lines a task printed on stdout."""

    summary: str | None = None
    status: str | None = None
    score: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def read_tail(path: str, limit: int = TAIL_BYTES) -> tuple[bytes, int]:
    """The last `limit` bytes of a file and its full size (0, b"" when it is missing)."""
    try:
        if not os.lstat(path).st_size:
            return b"", 0  # most outputs are empty: no need to open them
        with open(open_output_for_reading(path), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                handle.seek(size - limit)
            return handle.read(limit), size
    except (FileNotFoundError, UnsafeFile):  # a link planted there is not read
        return b"", 0


def decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def clean_line(text: str) -> str:
    """One display line: no colour codes, no control characters, no surrounding space."""
    return _CONTROL.sub("", _ANSI.sub("", text)).strip()


def last_line(text: str) -> str:
    """The last line with something printable on it (scanned from the end, no split)."""
    end = len(text)
    while end > 0:
        start = text.rfind("\n", 0, end) + 1
        cleaned = clean_line(text[start:end])
        if cleaned:
            return cleaned
        end = start - 1
    return ""


def opening_lines(text: str, limit: int) -> str:
    """The first meaningful lines of a reply, joined with " / ", up to about `limit`
    characters: models often open with the answer and then explain."""
    taken: list[str] = []
    size = 0
    for raw in text.splitlines():
        line = clean_line(raw)
        if not line:
            continue
        taken.append(line)
        size += len(line) + 3
        if size >= limit:
            break
    return " / ".join(taken)


def parse_markers(text: str) -> Markers:
    """Read `[AOP:SUMMARY]`, `[AOP:STATUS]`, `[AOP:SCORE]` and `[AOP:METRICS] k: v, ...`.

    A summary is the rest of its marker line or, when that is empty, the block of lines
    up to the next marker. The last occurrence of each marker wins. Only marker lines
    are visited, so a large plain output costs no more than its size once."""
    summary: str | None = None
    status: str | None = None
    score: float | None = None
    metrics: dict[str, Any] = {}
    found = list(_MARKER.finditer(text))
    for index, match in enumerate(found):
        name, rest = match.group(1), match.group(2).strip()
        if name == "SUMMARY" and rest:
            summary = clean_line(rest)
        elif name == "SUMMARY":
            block_end = found[index + 1].start() if index + 1 < len(found) else len(text)
            summary = _join_block(text[match.end() : block_end]) or summary
        elif name == "STATUS" and rest:
            status = rest.split()[0].lower()
        elif name == "SCORE":
            score = parse_number(rest)
        elif name == "METRICS":
            metrics.update(parse_metrics(rest))
    return Markers(summary=summary, status=status, score=score, metrics=metrics)


def _join_block(block: str) -> str:
    """A multi-line summary block becomes one line: its lines joined by '; '."""
    parts = [clean_line(line) for line in block.splitlines()]
    return "; ".join(part for part in parts if part)


def parse_number(text: str) -> float | None:
    match = _NUMBER.search(text)
    if match is None:
        return None
    value = float(match.group(0))
    return value if math.isfinite(value) else None


def parse_metrics(text: str) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for item in text.split(","):
        key, sep, value = item.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            continue
        number = _NUMBER.fullmatch(value)
        if number:
            as_float = float(value)
            metrics[key] = int(as_float) if as_float.is_integer() and "." not in value else as_float
        else:
            metrics[key] = value
    return metrics


def cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def build_summary(
    succeeded: bool,
    stdout_text: str,
    stderr_text: str,
    reason: str,
    markers: Markers,
    limit: int,
    *,
    first_lines: bool = False,
) -> str:
    """The task's own [AOP:SUMMARY]; else its last meaningful line (with `first_lines`,
    for an agent's reply: its opening lines), with the reason on failure."""
    if markers.summary:
        text = markers.summary
        if not succeeded and reason:
            text = f"{text} ({reason})"
        return cap(text, limit)
    if succeeded and first_lines:
        return cap(opening_lines(stdout_text, limit) or "(empty reply)", limit)
    if succeeded:
        return cap(last_line(stdout_text) or last_line(stderr_text) or "(no output)", limit)
    line = last_line(stderr_text) or last_line(stdout_text)
    if not line or not reason or reason in line:  # the line may already say why
        return cap(line or reason or "failed", limit)
    suffix = f" ({reason})"
    room = limit - len(suffix)
    return cap(line, room) + suffix if room >= 10 else cap(reason, limit)


THREAD_ANALYSIS_BYTES = 4 << 20  # a larger stdout is scanned off the event loop
_REPORTED_FAILURE = ("failure", "failed", "error")


@dataclass(frozen=True)
class Ending:
    """How the scheduler saw the task end: its status and why."""

    status: TaskStatus
    reason: str
    interrupted: bool = False  # a signal stopped the run while the task was running


@dataclass(frozen=True)
class _Outputs:
    """The ends of a task's stdout and stderr, and the text its verdict is read from."""

    stdout_path: str
    stderr_path: str
    stdout: OutputInfo
    stderr: OutputInfo
    text: str  # the end of stdout, or the agent's reply
    stderr_text: str
    reply: str | None  # an agent's reply text


def _read_outputs(store: RunStore, spec: TaskSpec, last: Attempt) -> _Outputs:
    stdout_path, stderr_path = store.output_paths(spec)
    stdout_tail, stdout_size = read_tail(stdout_path)
    stderr_tail, stderr_size = read_tail(stderr_path)
    text = decode(stdout_tail)
    reply = last.agent.get("text") if last.agent else None
    if isinstance(reply, str):
        text = reply[-TAIL_BYTES :]
    stdout = store.describe_output(stdout_path, stdout_tail, stdout_size)
    stderr = store.describe_output(stderr_path, stderr_tail, stderr_size)
    return _Outputs(
        stdout_path=stdout_path,
        stderr_path=stderr_path,
        stdout=stdout,
        stderr=stderr,
        text=text,
        stderr_text=decode(stderr_tail),
        reply=reply if isinstance(reply, str) else None,
    )


async def _counted(path: str, info: OutputInfo) -> OutputInfo:
    """The stream's line count, read from its file when the tail was not all of it:
    once, a block at a time, off the event loop when the file is large."""
    if info.lines is not None:
        return info
    from fanout_cli.scan import count_lines

    return replace(info, lines=await _off_the_loop_when_large(path, count_lines, path))


async def read_result(
    verdict: VerdictOptions,
    summary_chars: int,
    store: RunStore,
    spec: TaskSpec,
    attempts: list[Attempt],
    ending: Ending | None,
) -> TaskResult:
    """The result of a task that ran at least one attempt, read with the verdict's
    options (score, vote key) and the summary cap. `ending` is None when its last
    attempt ended by itself (the attempt's status stands)."""
    last = attempts[-1]
    status, reason = (ending.status, ending.reason) if ending else (last.status, last.reason)
    outputs = _read_outputs(store, spec, last)
    markers = parse_markers(outputs.text)
    if status is TaskStatus.SUCCESS and markers.status in _REPORTED_FAILURE:
        status, reason = TaskStatus.FAILURE, f"reported {markers.status}"
    succeeded = status is TaskStatus.SUCCESS
    summary = build_summary(
        succeeded,
        outputs.text,
        outputs.stderr_text,
        reason,
        markers,
        summary_chars,
        first_lines=outputs.reply is not None,
    )
    if succeeded and summary == "(no output)" and reason:
        summary = f"(no output, {reason})"
    vote_key = None
    if succeeded and uses_votes(verdict.strategy):
        vote_key = await vote_key_of(verdict.vote_on, summary, last, outputs)
    return TaskResult(
        spec=spec,
        status=status,
        summary=summary,
        attempts=tuple(attempts),
        exit_code=last.exit_code,
        signal=last.signal,
        reason=reason,
        started_at=attempts[0].started_at,
        finished_at=last.finished_at,
        stdout=await _counted(outputs.stdout_path, outputs.stdout),
        stderr=await _counted(outputs.stderr_path, outputs.stderr),
        score=await score_of(verdict.score, markers, outputs),
        vote_key=vote_key,
        metrics=markers.metrics,
        reported_status=markers.status,
        interrupted=ending is not None and ending.interrupted,
        details_file=details_name(spec),
    )


async def score_of(pattern: str | None, markers: Markers, outputs: _Outputs) -> float | None:
    """--score REGEX when given (its last match in the whole stdout, or the agent's
    reply), else the score the task printed (FANOUT_SCORE)."""
    if not pattern:
        return markers.score
    group = await _last_match(pattern, outputs)
    return None if group is None else parse_number(group)


async def vote_key_of(vote_on: str, summary: str, last: Attempt, outputs: _Outputs) -> str | None:
    """What a successful task votes for (--vote-on): its summary, exit code, whole
    stdout (normalised) or the first group of a regex's last match."""
    from fanout_cli import scan  # only runs that vote

    if vote_on == "summary":
        return summary
    if vote_on == "exit-code":
        return str(last.exit_code)
    if vote_on == "stdout" and outputs.reply is not None:
        return scan.normalised_text_key(outputs.reply)
    if vote_on == "stdout":
        path = outputs.stdout_path
        return await _off_the_loop_when_large(path, scan.normalised_stdout_key, path)
    group = await _last_match(vote_on, outputs)
    return None if group is None else scan.normalised_text_key(group)


async def _last_match(pattern: str, outputs: _Outputs) -> str | None:
    """Group 1 (or the whole match) of the last match of `pattern` in the reply, or
    in the whole stdout, read as a stream."""
    from fanout_cli import scan  # only runs that score or vote by a regex

    if outputs.reply is not None:
        return scan.last_match_group(pattern, outputs.reply)[1]
    path = outputs.stdout_path
    return await _off_the_loop_when_large(path, scan.last_match_in_file, pattern, path)


async def _off_the_loop_when_large(path: str, read: Callable[..., T], *args: Any) -> T:
    """`read(*args)`, in a worker thread when the file is large: the event loop (and
    the other tasks) go on meanwhile."""
    try:
        large = os.lstat(path).st_size > THREAD_ANALYSIS_BYTES
    except OSError:
        large = False
    if large:
        return await anyio.to_thread.run_sync(read, *args)
    return read(*args)
