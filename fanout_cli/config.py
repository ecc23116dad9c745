"""RunConfig: every run option, parsed once from the command line and the task file's [run]."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

STRATEGIES = ("all-succeed", "first-n-succeed", "best-of-n", "majority-vote", "partial-success")
FORMATS = ("human", "aop", "json", "jsonl")
ORDERS = ("input", "longest-first", "failed-first")
COLORS = ("auto", "always", "never")
DEFAULT_OUTPUT_DIR = ".cache/agent-outputs"

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def default_output_dir() -> str:
    """--output-dir when not given: FANOUT_OUTPUT_DIR, else .cache/agent-outputs."""
    return os.environ.get("FANOUT_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR


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


def _positive_int(value: object) -> int:
    return int_at_least(value, 1)


def _non_negative_int(value: object) -> int:
    return int_at_least(value, 0)


def int_at_least(value: object, minimum: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"expected a whole number >= {minimum}, got {value!r}")
    return value


def _ratio(value: object) -> float:
    try:
        ratio = float(value) if isinstance(value, str | int | float) else float("nan")
    except ValueError:
        ratio = float("nan")
    if isinstance(value, bool) or not 0 < ratio <= 1:
        raise ValueError(f"expected a ratio in (0, 1], got {value!r}")
    return ratio


def _choice(choices: tuple[str, ...]) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return parse


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def parse_text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _regex(value: object) -> str:
    text = parse_text(value)
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc}): {text!r}") from None
    return text


def _vote_on(value: object) -> str:
    text = parse_text(value)
    if text in ("stdout", "summary", "exit-code"):
        return text
    return _regex(text)


def _run_id(value: object) -> str:
    text = parse_text(value)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", text):
        raise ValueError(
            f"a run id is 1-128 characters of A-Z a-z 0-9 . _ - and starts with a "
            f"letter or digit, got {text!r}"
        )
    return text


def _optional_duration(value: object) -> float:
    return parse_duration(value)


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


def _shard(value: object) -> object:
    from fanout_cli.timings import parse_shard

    return parse_shard(value)


def _paths(value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) and i for i in items):
        raise ValueError(f"expected a file name or a list of them, got {value!r}")
    return tuple(items)


def _executor(value: object) -> str:
    text = parse_text(value)
    if text == "local":
        return text
    match = re.fullmatch(r"(?:dask|tcp)://([^:/\s]+):(\d{1,5})/?", text)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"expected local or dask://HOST:PORT, got {value!r}")
    return f"dask://{match.group(1)}:{int(match.group(2))}"


def _resources(value: object) -> tuple[str, ...]:
    items = _paths(value)
    for item in items:
        name, equals, amount = item.partition("=")
        try:
            number = float(amount)
        except ValueError:
            number = float("nan")
        if not equals or not name or not math.isfinite(number) or number <= 0:
            raise ValueError(f"expected NAME=AMOUNT such as GPU=1, got {item!r}")
    return items


@dataclass(frozen=True)
class RunConfig:
    """Every option of `fanout run`, after the command line and [run] table are merged."""

    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    timeout: float | None = None
    grace: float = 5.0
    deadline: float | None = None
    ok_exit: frozenset[int] = frozenset({0})
    retries: int = 0
    retry_delay: float = 1.0
    strategy: str = "all-succeed"
    fail_fast: bool = False
    required_successes: int = 1
    min_successes: int | None = None
    min_success_ratio: float | None = None
    score: str | None = None
    scorer: str | None = None
    vote_on: str = "stdout"
    output_dir: str = field(default_factory=default_output_dir)
    run_id: str | None = None
    format: str = "human"
    summary_chars: int = 500
    max_lines: int = 50
    quiet: bool = False
    rate: Rate | None = None
    shard: str | None = None  # "2/4": run only shard 2 of 4
    timings: tuple[str, ...] = ()  # files of recorded durations, for --shard and --order
    order: str = "input"
    junit: str | None = None  # write JUnit XML of the run here
    progress: bool | None = None  # live progress on stderr; None: when it is a terminal
    color: str = "auto"  # never, always, auto (NO_COLOR and FORCE_COLOR respected)
    executor: str = "local"  # or dask://HOST:PORT: process tasks run on a Dask cluster
    resources: tuple[str, ...] = ()  # NAME=AMOUNT worker resources each task needs (Dask)


# Each option's parser accepts either the command line's string or the TOML value.
OPTION_PARSERS: Mapping[str, Callable[[object], Any]] = {
    "jobs": _positive_int,
    "timeout": _optional_duration,
    "grace": parse_duration,
    "deadline": _optional_duration,
    "ok_exit": parse_exit_codes,
    "retries": _non_negative_int,
    "retry_delay": parse_duration,
    "strategy": _choice(STRATEGIES),
    "fail_fast": _flag,
    "required_successes": _positive_int,
    "min_successes": _non_negative_int,
    "min_success_ratio": _ratio,
    "score": _regex,
    "scorer": parse_text,
    "vote_on": _vote_on,
    "output_dir": parse_text,
    "run_id": _run_id,
    "format": _choice(FORMATS),
    "summary_chars": lambda value: int_at_least(value, 20),
    "max_lines": _positive_int,
    "quiet": _flag,
    "rate": parse_rate,
    "shard": lambda value: str(_shard(value)),
    "timings": _paths,
    "order": _choice(ORDERS),
    "junit": parse_text,
    "progress": _flag,
    "color": _choice(COLORS),
    "executor": _executor,
    "resources": _resources,
}

assert set(OPTION_PARSERS) == {f.name for f in fields(RunConfig)}


class OptionError(ValueError):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(problem)
        self.name = name
        self.problem = problem


def build_config(*layers: Mapping[str, object]) -> RunConfig:
    """Apply option layers, lowest precedence first ([run] table, then the command line).

    Raises OptionError naming the option whose value is invalid."""
    changes: dict[str, Any] = {}
    for layer in layers:
        given = {name: raw for name, raw in layer.items() if raw is not None}
        for first, second in _EITHER_OR:
            if first in given and second in given:
                raise OptionError(second, f"give --{_flag_name(first)} or "
                                  f"--{_flag_name(second)}, not both")
            # A later layer's choice replaces the earlier layer's alternative.
            if first in given:
                changes.pop(second, None)
            if second in given:
                changes.pop(first, None)
        for name, raw in given.items():
            try:
                changes[name] = OPTION_PARSERS[name](raw)
            except ValueError as exc:
                raise OptionError(name, str(exc)) from None
    return replace(RunConfig(), **changes)


_EITHER_OR = (("min_successes", "min_success_ratio"), ("score", "scorer"))


def _flag_name(name: str) -> str:
    return name.replace("_", "-")
