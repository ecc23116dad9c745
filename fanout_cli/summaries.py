"""What a task's output says about it: its summary, AOP markers, score and vote key.

Outputs can be gigabytes, so only their tails are read (`TAIL_BYTES`); AOP markers
are looked for there, which is where a task prints them."""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

TAIL_BYTES = 256 << 10
EXCERPT_BYTES = 4096
_VOTE_TEXT_LIMIT = 1000
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
        if not os.stat(path).st_size:
            return b"", 0  # most outputs are empty: no need to open them
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                handle.seek(size - limit)
            return handle.read(limit), size
    except FileNotFoundError:
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


def last_match_group(pattern: str, text: str) -> str | None:
    """Group 1 (or the whole match, when there is no group) of the last match."""
    last = None
    for last in re.finditer(pattern, text, re.MULTILINE):  # noqa: B007 - we want the last one
        pass
    if last is None:
        return None
    return last.group(1) if last.re.groups else last.group(0)


def score_from_regex(pattern: str, text: str) -> float | None:
    group = last_match_group(pattern, text)
    return None if group is None else parse_number(group)


def vote_from_regex(pattern: str, text: str) -> str | None:
    group = last_match_group(pattern, text)
    return None if group is None else " ".join(group.split())


def normalised_text_key(text: str) -> str:
    """`normalised_stdout_key` of a text held in memory (an agent's reply)."""
    words = " ".join(text.split())
    if len(words.encode("utf-8", "surrogateescape")) <= _VOTE_TEXT_LIMIT:
        return words
    return "sha256:" + hashlib.sha256(words.encode("utf-8", "surrogateescape")).hexdigest()


def normalised_stdout_key(path: str) -> str:
    """The whole stdout with whitespace runs collapsed: the text itself when short,
    else `sha256:<hex>` of it. Streams the file, so size does not matter."""
    digest = hashlib.sha256()
    head: list[bytes] = []
    head_size = 0
    carry = b""
    first = True
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                words = (carry + chunk).split()
                ends_in_word = not chunk[-1:].isspace()
                carry = words.pop() if words and ends_in_word else b""
                for word in words:
                    piece = word if first else b" " + word
                    first = False
                    digest.update(piece)
                    if head_size <= _VOTE_TEXT_LIMIT:
                        head.append(piece)
                        head_size += len(piece)
    except FileNotFoundError:
        return ""
    if carry:
        piece = carry if first else b" " + carry
        digest.update(piece)
        head.append(piece)
        head_size += len(piece)
    if head_size <= _VOTE_TEXT_LIMIT:
        return decode(b"".join(head))
    return f"sha256:{digest.hexdigest()}"
