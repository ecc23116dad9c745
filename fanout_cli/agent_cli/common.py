"""What every agent CLI preset shares: the reply record, the preset record, and readers
of the JSON and numbers tools print. A tool's output is untrusted text: nothing here
raises on it."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class CliReply:
    """What an agent CLI said, read from its stdout."""

    text: str  # the agent's final answer ("" when none found)
    model: str | None
    # Token counts as the tool reported them: input_tokens and output_tokens (None when
    # the tool left one out) and any tool-specific counts. None when it reported none.
    usage: dict[str, int | None] | None
    cost_usd: float | None
    is_error: bool  # the tool itself said the run failed
    error: str | None  # its message when is_error
    session_id: str | None


@dataclass(frozen=True)
class Preset:
    """One agent CLI: how to run it headless, and how to read what it printed."""

    name: str
    description: str  # one line for the man page and the README; ARGS are the task's
    command: Callable[[str, str | None, str | None, tuple[str, ...]], tuple[str, ...]]
    parse: Callable[[str], CliReply]  # never raises, whatever the tool printed
    # --attach PATH becomes `OPTION=PATH` before ARGS; None: the tool has no such option,
    # and `no_attach` says why (one line, after "--attach: ").
    attach_option: str | None = None
    no_attach: str = ""
    # Run once, alone, before the first of several parallel runs: sets up state every run
    # would otherwise set up at the same time (llm migrates its log database in each run).
    prepare: tuple[str, ...] = ()
    # The variables that say where that state lives: runs that agree on them share it.
    state_variables: tuple[str, ...] = ()


# A single bare word: the only shape a subcommand name can have.
BARE_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def with_system(prompt: str, system: str | None) -> str:
    """For tools without a system-prompt option: the system text goes first, then a blank line."""
    return prompt if system is None else f"{system}\n\n{prompt}"


def plain_reply(stdout: str) -> CliReply:
    return CliReply(
        text=stdout.strip(), model=None, usage=None, cost_usd=None,
        is_error=False, error=None, session_id=None,
    )


def load_json(text: str) -> object:
    """The JSON value in text, or None when it is not JSON (deep nesting included)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def json_objects(lines: str) -> Iterator[dict[str, object]]:
    """The JSON objects of a JSON Lines text; other lines (torn, plain text) are skipped."""
    for line in lines.splitlines():
        if line.lstrip().startswith("{"):
            value = load_json(line)
            if isinstance(value, dict):
                yield value


def text_of(value: object) -> str | None:
    return value if isinstance(value, str) else None


def finite_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None


def token_counts(value: object) -> dict[str, int | None] | None:
    """The integer counts of a usage object, input_tokens and output_tokens first."""
    if not isinstance(value, dict):
        return None
    counts = {
        key: count
        for key, count in value.items()
        if isinstance(key, str) and isinstance(count, int) and not isinstance(count, bool)
    }
    if not counts:
        return None
    usage: dict[str, int | None] = {
        "input_tokens": counts.pop("input_tokens", None),
        "output_tokens": counts.pop("output_tokens", None),
    }
    usage.update(counts)
    return usage


