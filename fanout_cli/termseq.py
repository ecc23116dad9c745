"""--termseq, as text: `TERM,5s,INT,2s,KILL` -> a `reaper.TermSeq` (whose str() is
the text again, read back by --resume).

Signals by name (TERM, SIGTERM, int, ...) or number; between two signals one wait, in
fanout's units (200ms, 5s, 1m), where a BARE number is milliseconds, as in GNU
parallel (`TERM,200,TERM,100,TERM,50,KILL,25` is its default): unlike every other
duration of fanout, whose bare numbers are seconds. The sequence ends with KILL, the
one signal a process cannot catch: no descendant outlives its task. A wait after the
final KILL (GNU parallel's form) is accepted and ignored.

Imported only when --termseq (or `[run] termseq`) is given: the sequences themselves,
and fanout's default (TERM, --grace, KILL), are reaper.TermSeq."""

from __future__ import annotations

import re
import signal

from fanout_cli.reaper import TermSeq
from fanout_cli.values import MAX_DURATION, parse_duration, shown

MAX_SIGNALS = 100
_EXAMPLE = "e.g. TERM,5s,KILL"
_BARE_NUMBER = re.compile(r"(\d+(?:\.\d*)?|\.\d+)")
_WAIT = re.compile(r"[\d.]+\s*(ms|s|m|h|d)\b.*", re.IGNORECASE)


def parse_termseq(value: object) -> TermSeq:
    """The command line's or the TOML value -> the sequence; ValueError saying why not."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected signals and waits such as TERM,5s,KILL, got {shown(value)}")
    items = [item.strip() for item in value.split(",")]
    if len(items) > 2 * MAX_SIGNALS:
        raise ValueError(f"at most {MAX_SIGNALS} signals, got {len(items)} items")
    signals: list[int] = []
    waits: list[float] = []
    for index, item in enumerate(items):
        if not item:
            raise ValueError(f"an empty item: expected a signal or a wait between two "
                             f"commas, {_EXAMPLE}, got {shown(value)}")  # fmt: skip
        if index % 2 == 0:
            signals.append(_signal(item, items[index - 1] if index else None, value))
        else:
            waits.append(_wait(item, items[index - 1], value))
    if signals[-1] != signal.SIGKILL:
        raise ValueError(f"must end with KILL, {_EXAMPLE}, got {shown(value)}")
    if signal.SIGKILL in signals[:-1]:
        raise ValueError(f"KILL ends the sequence: only a wait may follow it, got {shown(value)}")
    steps = tuple(zip(signals, [*waits[: len(signals) - 1], 0.0], strict=True))
    sequence = TermSeq(steps)
    if sequence.total_wait > MAX_DURATION:
        raise ValueError(f"the waits add up to more than 30d, got {shown(value)}")
    return sequence


def _signal(item: str, before: str | None, whole: str) -> int:
    """A signal's place: a name (TERM, SIGTERM, any case) or a number."""
    if _BARE_NUMBER.fullmatch(item) and "." not in item:
        number = int(item)
        if 0 < number < signal.NSIG:
            return number
        problem = f"{item} is not a signal number (1-{signal.NSIG - 1})"
        if before is not None:
            problem = f"two waits in a row ({before}, {item}), or {problem}"
        raise ValueError(f"{problem}, got {shown(whole)}")
    named = _named_signal(item)
    if named is not None:
        return named
    if before is not None and _is_wait(item):
        raise ValueError(f"two waits in a row ({before}, {item}): one wait between two "
                         f"signals, {_EXAMPLE}, got {shown(whole)}")  # fmt: skip
    if before is None and _is_wait(item):
        raise ValueError(f"must start with a signal, {_EXAMPLE}, got {shown(whole)}")
    raise ValueError(f"{item!r} is not a signal (TERM, INT, HUP, KILL, ... or a number), "
                     f"got {shown(whole)}")  # fmt: skip


def _wait(item: str, before: str, whole: str) -> float:
    """A wait's place: a bare number of milliseconds, or a duration with its unit."""
    if _named_signal(item) is not None:
        raise ValueError(f"two signals in a row ({before}, {item}): give the wait between "
                         f"them, {_EXAMPLE}, got {shown(whole)}")  # fmt: skip
    try:
        if _BARE_NUMBER.fullmatch(item):
            seconds = parse_duration(f"{item}ms", MAX_DURATION)
        else:
            seconds = parse_duration(item, MAX_DURATION)
    except ValueError:
        raise ValueError(f"{item!r} is not a wait: expected milliseconds (200) or a duration "
                         f"(500ms, 5s, 1m) from 0 to 30d, got {shown(whole)}") from None
    return round(seconds * 1000) / 1000


def _named_signal(item: str) -> int | None:
    name = item.upper()
    try:
        return int(signal.Signals[name if name.startswith("SIG") else "SIG" + name])
    except KeyError:
        return None


def _is_wait(item: str) -> bool:
    return bool(_WAIT.fullmatch(item))

