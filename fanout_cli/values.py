"""Option values: how each kind of value a user writes is read (durations, exit codes,
rates, choices, ...). Each parser takes the command line's string or the TOML value and
returns the value, or raises ValueError saying what was expected."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fanout_cli.strategy_table import STRATEGY_NAMES

STRATEGIES = STRATEGY_NAMES  # the strategy table's names, in its order
FORMATS = ("human", "aop", "json", "jsonl")
ORDERS = ("input", "longest-first", "failed-first")
COLORS = ("auto", "always", "never")
DEFAULT_OUTPUT_DIR = ".cache/agent-outputs"

# The ranges every number is checked against (the man page's "Limits" lists them).
MAX_JOBS = 10_000
MAX_RETRIES = 100
MAX_SHARDS = 10_000
MAX_COUNT = 1_000_000_000  # --required-successes, --min-successes: counts of tasks
MAX_SUMMARY_CHARS = 100_000
MAX_LINES = 1_000_000
MAX_TOKENS = 1_000_000
MAX_RATE_COUNT = 1_000_000
MAX_HTTP_RETRIES = 20
MAX_RESOURCE = 1_000_000
MAX_DURATION = 30 * 86400.0  # 30d: a run's durations (timeouts, grace, delays, rate periods)
MAX_AGE = 3650 * 86400.0  # ten years: the age of a run (`clean --older-than`)
_MAX_DIGITS = 24  # longer digit strings are out of every range; never converted

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def default_output_dir(environ: Mapping[str, str] | None = None) -> str:
    """--output-dir when not given: FANOUT_OUTPUT_DIR, else .cache/agent-outputs."""
    environ = os.environ if environ is None else environ
    return environ.get("FANOUT_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR


def parse_duration(value: object, maximum: float = MAX_AGE) -> float:
    """`500ms`, `30s`, `5m`, `1h30m`, or a bare number of seconds -> seconds, from 0 to
    `maximum` (ten years: `clean --older-than`; a run's durations stop at 30d)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, got {value!r}")
    if isinstance(value, int | float):
        seconds = _as_number(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
                raise ValueError(
                    f"expected a duration such as 500ms, 30s, 5m or 1h, got {shown(value)}"
                ) from None
            seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    else:
        raise ValueError(f"expected a duration such as 30s, got {shown(value)}")
    if not math.isfinite(seconds) or not 0 <= seconds <= maximum:
        limit = f"{maximum / 86400:g}d"
        raise ValueError(f"expected a duration from 0 to {limit}, got {shown(value)}")
    return seconds


def parse_run_duration(value: object) -> float:
    """A duration of a run (--grace, --retry-delay, a rate's period): 0 to 30d."""
    return parse_duration(value, MAX_DURATION)


def parse_limit(value: object) -> float | None:
    """A time limit (--timeout, --deadline, a task's timeout): a duration of at most 30d;
    0 is no limit (None), as in GNU parallel, and lifts a limit a lower layer set."""
    return parse_duration(value, MAX_DURATION) or None


def shown(value: object, limit: int = 40) -> str:
    """A value as an error line quotes it: repr, cut to `limit` characters."""
    if isinstance(value, int) and value.bit_length() > 80:  # repr refuses > 4300 digits
        return f"a number of more than {_MAX_DIGITS} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


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
        raise ValueError(f"expected exit codes such as 0,1, got {shown(value)}")
    codes: set[int] = set()
    out_of_range = ValueError(f"exit codes are numbers from 0 to 255, got {shown(value)}")
    for item in items:
        if isinstance(item, str) and re.fullmatch(r"\d+-\d+", item):
            low, high = (_exit_code(x) for x in item.split("-"))
            if low is None or high is None:
                raise out_of_range  # checked before the range is expanded
            codes.update(range(low, high + 1))
        elif (isinstance(item, str) and item.isdigit()) or isinstance(item, int):
            code = _exit_code(item)
            if code is None:
                raise out_of_range
            codes.add(code)
        else:
            raise ValueError(f"expected exit codes such as 0,1, got {shown(item)}")
    if not codes:
        raise out_of_range
    return frozenset(codes)


def _exit_code(item: object) -> int | None:
    """An exit code written as digits or a number; None when outside 0-255."""
    if isinstance(item, bool):
        return None
    if isinstance(item, str):
        item = int(item) if len(item) <= 3 else None
    return item if isinstance(item, int) and 0 <= item <= 255 else None


def int_in_range(value: object, minimum: int, maximum: int) -> int:
    """A whole number (or its digits) from `minimum` to `maximum`."""
    number: object = value
    given = shown(value)
    if isinstance(value, str) and value.strip().isdecimal():
        digits = value.strip()
        number = int(digits) if len(digits) <= _MAX_DIGITS else maximum + 1
        given = digits if len(digits) <= 40 else digits[:36] + "..."
    if (not isinstance(number, int) or isinstance(number, bool)
            or not minimum <= number <= maximum):  # fmt: skip
        raise ValueError(f"expected a whole number from {minimum} to {maximum}, got {given}")
    return number


def _whole_numbers(minimum: int, maximum: int) -> Callable[[object], int]:
    def parse(value: object) -> int:
        return int_in_range(value, minimum, maximum)

    return parse


parse_jobs = _whole_numbers(1, MAX_JOBS)
parse_retries = _whole_numbers(0, MAX_RETRIES)
parse_http_retries = _whole_numbers(0, MAX_HTTP_RETRIES)
parse_count = _whole_numbers(1, MAX_COUNT)
parse_count_or_zero = _whole_numbers(0, MAX_COUNT)
parse_max_lines = _whole_numbers(1, MAX_LINES)
parse_max_tokens = _whole_numbers(1, MAX_TOKENS)
summary_chars = _whole_numbers(20, MAX_SUMMARY_CHARS)


def _as_number(value: object) -> float:
    """A number given as a number or as text; NaN for anything else (booleans too), so
    that every range check fails on it."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return float("nan")
    if isinstance(value, str) and len(value) > 400:
        return float("nan")  # no number in range is written with so many characters
    try:
        return float(value)
    except (ValueError, OverflowError):  # OverflowError: an int too large for a float
        return float("nan")


def parse_ratio(value: object) -> float:
    ratio = _as_number(value)
    if not 0 < ratio <= 1:
        raise ValueError(f"expected a ratio in (0, 1], got {shown(value)}")
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


def parse_tagstring(value: object) -> str:
    """--tagstring: a template of GNU parallel's replacement strings."""
    from fanout_cli.errors import UsageError
    from fanout_cli.replacements import Grammar

    text = parse_text(value)
    try:
        Grammar(positions=None).split(text, repr(text))
    except UsageError as exc:
        raise ValueError(exc.message) from None
    return text


def parse_header(value: object) -> str:
    text = parse_text(value)
    if text != ":":
        raise ValueError(f"expected : (the first value of each source names its columns), "
                         f"got {shown(text)}")
    return text


parse_max_chars = _whole_numbers(2, 2_097_152)


def parse_vote_on(value: object) -> str:
    text = parse_text(value)
    if text in ("stdout", "summary", "exit-code"):
        return text
    return parse_regex(text)


def parse_run_id(value: object) -> str:
    text = parse_text(value)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", text):
        raise ValueError(f"a run id is 1-128 characters of A-Z a-z 0-9 . _ - and starts with "
                         f"a letter or digit, got {text!r}")  # fmt: skip
    return text


_RATE_UNITS = {
    "s": 1.0, "sec": 1.0, "second": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0,
    "h": 3600.0, "hour": 3600.0,
    "d": 86400.0, "day": 86400.0,
}  # fmt: skip


@dataclass(frozen=True)
class Rate:
    """`count` starts per `period` seconds, evenly spaced; `burst` of them at once."""

    count: int
    period: float
    text: str  # as given, normalised: "60/min", "5/10s:2"
    burst: int = 1

    def __str__(self) -> str:
        return self.text


def parse_rate(value: object) -> Rate:
    """`60/min`, `5/s`, `1000/h`, `10/30s`, with `:BURST` (`5/10s:2`) -> Rate."""
    if isinstance(value, Rate):
        return value
    text = value.strip().lower().replace(" ", "") if isinstance(value, str) else ""
    text, colon, burst_text = text.partition(":")
    count_text, slash, period_text = text.partition("/")
    problem = f"expected a rate such as 60/min, 5/s or 10/30s, got {shown(value)}"
    if not slash or not count_text.isdigit():
        raise ValueError(problem)
    try:
        count = int_in_range(count_text, 1, MAX_RATE_COUNT)
    except ValueError:
        raise ValueError(f"a rate's count is from 1 to {MAX_RATE_COUNT}, "
                         f"got {shown(value)}") from None  # fmt: skip
    period = _RATE_UNITS.get(period_text.removesuffix("s") if len(period_text) > 3 else period_text)
    if period is None:
        try:
            period = parse_run_duration(period_text)
        except ValueError:
            raise ValueError(problem + " (a period is at most 30d)") from None
    if period <= 0:
        raise ValueError(f"the period of a rate must be longer than 0, got {shown(value)}")
    burst = int(burst_text) if burst_text.isdecimal() and len(burst_text) < 8 else 1 - len(colon)
    if not 1 <= burst <= count:  # ":" with no whole number after it is 0
        raise ValueError(f"a rate's burst (after :) is from 1 to its count, got {shown(value)}")
    return Rate(count, period, text if burst == 1 else f"{text}:{burst}", burst)


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
        raise ValueError(f"expected I/N such as 2/4 (shard I of N, 1-based), got {shown(value)}")
    return shard_of(index, total, shown(value))


def shard_of(index: str, total: str, given: str) -> Shard:
    """Shard `index` of `total` (1-based digits), range-checked; `given` is how the
    value was written, for the message."""
    try:
        count = int_in_range(total, 1, MAX_SHARDS)
    except ValueError:
        raise ValueError(f"the number of shards is from 1 to {MAX_SHARDS}, got {given}") from None
    try:
        number = int_in_range(index, 1, count)
    except ValueError:
        raise ValueError(f"the shard number must be from 1 to {count}, got {given}") from None
    return Shard(number, count)


def parse_shard_text(value: object) -> str:
    """`2/4` -> "2/4", checked (shard I of N, 1-based)."""
    return str(parse_shard(value))


def parse_paths(value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) and i for i in items):
        shown = value[0] if isinstance(value, tuple) and len(value) == 1 else value
        raise ValueError(f"expected a file name or a list of them, got {shown!r}")
    return tuple(items)


def parse_executor(value: object) -> str:
    """`local`, `dask://HOST:PORT`, ...: one of the executor table's forms."""
    from fanout_cli.executors import parse_executor_url  # only when given

    return parse_executor_url(parse_text(value))


def parse_resources(value: object) -> tuple[str, ...]:
    items = parse_paths(value)
    for item in items:
        name, equals, amount = item.partition("=")
        number = _as_number(amount)
        if not equals or not name or not 0 < number <= MAX_RESOURCE:
            raise ValueError(f"expected NAME=AMOUNT such as GPU=1 (an amount more than 0 "
                             f"and at most {MAX_RESOURCE}), got {shown(item)}")  # fmt: skip
    return items


def parse_temperature(value: object) -> float:
    number = _as_number(value)
    if not 0 <= number <= 2:
        raise ValueError(f"expected a temperature from 0 to 2, got {shown(value)}")
    return number


def is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) > 8


def parse_url(value: object) -> str:
    if not is_url(value):
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    return str(value)
