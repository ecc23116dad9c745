"""Option values: how each kind of value a user writes is read (durations, exit codes,
rates, choices, ...). Each parser takes the command line's string or the TOML value and
returns the value, or raises ValueError saying what was expected."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fanout_cli.strategies import STRATEGY_NAMES

STRATEGIES = STRATEGY_NAMES  # the strategy table's names, in its order
FORMATS = ("human", "aop", "json", "jsonl")
ORDERS = ("input", "longest-first", "failed-first")
COLORS = ("auto", "always", "never")
DEFAULT_OUTPUT_DIR = ".cache/agent-outputs"

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def default_output_dir(environ: Mapping[str, str] | None = None) -> str:
    """--output-dir when not given: FANOUT_OUTPUT_DIR, else .cache/agent-outputs."""
    environ = os.environ if environ is None else environ
    return environ.get("FANOUT_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR


def parse_duration(value: object) -> float:
    """`500ms`, `30s`, `5m`, `1h30m`, or a bare number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
                raise ValueError(
                    f"expected a duration such as 500ms, 30s, 5m or 1h, got {value!r}"
                ) from None
            seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    else:
        raise ValueError(f"expected a duration such as 30s, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be a finite number >= 0, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The short human form used in reasons: 500ms, 30s, 1.5s, 5m, 1h2m."""
    if round(seconds * 1000) < 1000:
        return f"{seconds * 1000:.0f}ms"
    if round(seconds, 1) < 60:
        seconds = round(seconds, 1)
        return f"{seconds:.0f}s" if seconds == int(seconds) else f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m" if minutes else f"{hours}h"


def parse_exit_codes(value: object) -> frozenset[int]:
    """`0,1` or `[0, 1]` or `0-2` -> the set of exit codes that count as success."""
    items: list[object]
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list):
        items = list(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    else:
        raise ValueError(f"expected exit codes such as 0,1, got {value!r}")
    codes: set[int] = set()
    for item in items:
        if isinstance(item, str) and re.fullmatch(r"\d+-\d+", item):
            low, high = (int(x) for x in item.split("-"))
            codes.update(range(low, high + 1))
        elif isinstance(item, str) and item.isdigit():
            codes.add(int(item))
        elif isinstance(item, int) and not isinstance(item, bool):
            codes.add(item)
        else:
            raise ValueError(f"expected exit codes such as 0,1, got {item!r}")
    if not codes or any(not 0 <= code <= 255 for code in codes):
        raise ValueError(f"exit codes are numbers from 0 to 255, got {value!r}")
    return frozenset(codes)


def positive_int(value: object) -> int:
    return int_at_least(value, 1)


def non_negative_int(value: object) -> int:
    return int_at_least(value, 0)


def summary_chars(value: object) -> int:
    return int_at_least(value, 20)


def int_at_least(value: object, minimum: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"expected a whole number >= {minimum}, got {value!r}")
    return value


def _as_number(value: object) -> float:
    """A number given as a number or as text; NaN for anything else (booleans too), so
    that every range check fails on it."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return float("nan")
    try:
        return float(value)
    except ValueError:
        return float("nan")


def parse_ratio(value: object) -> float:
    ratio = _as_number(value)
    if not 0 < ratio <= 1:
        raise ValueError(f"expected a ratio in (0, 1], got {value!r}")
    return ratio


def choice(choices: tuple[str, ...]) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return parse


def parse_flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def parse_text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def parse_regex(value: object) -> str:
    text = parse_text(value)
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc}): {text!r}") from None
    return text


def parse_vote_on(value: object) -> str:
    text = parse_text(value)
    if text in ("stdout", "summary", "exit-code"):
        return text
    return parse_regex(text)


def parse_run_id(value: object) -> str:
    text = parse_text(value)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", text):
        raise ValueError(
            f"a run id is 1-128 characters of A-Z a-z 0-9 . _ - and starts with a "
            f"letter or digit, got {text!r}"
        )
    return text


_RATE_UNITS = {
    "s": 1.0, "sec": 1.0, "second": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0,
    "h": 3600.0, "hour": 3600.0,
    "d": 86400.0, "day": 86400.0,
}  # fmt: skip


@dataclass(frozen=True)
class Rate:
    """At most `count` starts in any window of `period` seconds."""

    count: int
    period: float
    text: str  # as given, normalised: "60/min"

    def __str__(self) -> str:
        return self.text


def parse_rate(value: object) -> Rate:
    """`60/min`, `5/s`, `1000/h`, `10/30s` -> Rate."""
    if isinstance(value, Rate):
        return value
    text = value.strip().lower().replace(" ", "") if isinstance(value, str) else ""
    count_text, slash, period_text = text.partition("/")
    problem = f"expected a rate such as 60/min, 5/s or 10/30s, got {value!r}"
    if not slash or not count_text.isdigit() or int(count_text) < 1:
        raise ValueError(problem)
    period = _RATE_UNITS.get(period_text.removesuffix("s") if len(period_text) > 3 else period_text)
    if period is None:
        try:
            period = parse_duration(period_text)
        except ValueError:
            raise ValueError(problem) from None
    if period <= 0:
        raise ValueError(f"the period of a rate must be longer than 0, got {value!r}")
    return Rate(int(count_text), period, text)


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(value: object) -> Shard:
    """`2/4` -> Shard(2, 4): shard 2 of 4, 1-based."""
    text = value.strip() if isinstance(value, str) else ""
    index, slash, total = text.partition("/")
    if not slash or not index.isdigit() or not total.isdigit():
        raise ValueError(f"expected I/N such as 2/4 (shard I of N, 1-based), got {value!r}")
    shard = Shard(int(index), int(total))
    if shard.total < 1:
        raise ValueError(f"the number of shards must be at least 1, got {value!r}")
    if not 1 <= shard.index <= shard.total:
        raise ValueError(f"the shard number must be from 1 to {shard.total}, got {value!r}")
    return shard


def parse_shard_text(value: object) -> str:
    """`2/4` -> "2/4", checked (shard I of N, 1-based)."""
    return str(parse_shard(value))


def parse_paths(value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) and i for i in items):
        raise ValueError(f"expected a file name or a list of them, got {value!r}")
    return tuple(items)


def parse_executor(value: object) -> str:
    """`local`, `dask://HOST:PORT`, ...: one of the executor table's forms."""
    from fanout_cli.executors import parse_executor_url  # only when given

    return parse_executor_url(parse_text(value))


def parse_resources(value: object) -> tuple[str, ...]:
    items = parse_paths(value)
    for item in items:
        name, equals, amount = item.partition("=")
        try:
            number = float(amount)
        except ValueError:
            number = float("nan")
        if not equals or not name or not math.isfinite(number) or number <= 0:
            raise ValueError(f"expected NAME=AMOUNT such as GPU=1, got {item!r}")
    return items


def parse_temperature(value: object) -> float:
    number = _as_number(value)
    if not 0 <= number <= 2:
        raise ValueError(f"expected a temperature from 0 to 2, got {value!r}")
    return number


def is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) > 8


def parse_url(value: object) -> str:
    if not is_url(value):
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    return str(value)
