"""RunConfig: every run option, parsed once from the command line and the task file's [run].

The options themselves (flags, parsers, help) are declared in options.py."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from fanout_cli.options import RUN_KEYS, flag_of, parser
from fanout_cli.values import (  # re-exported for the modules that read values from here
    COLORS,
    FORMATS,
    ORDERS,
    STRATEGIES,
    Rate,
    default_output_dir,
    format_duration,
    int_at_least,
    parse_duration,
    parse_exit_codes,
    parse_rate,
    parse_text,
)

__all__ = [
    "COLORS", "FORMATS", "ORDERS", "STRATEGIES", "OptionError", "Rate", "RunConfig",
    "build_config", "default_output_dir", "format_duration", "int_at_least", "parse_duration",
    "parse_exit_codes", "parse_rate", "parse_text",
]  # fmt: skip


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
OPTION_PARSERS: Mapping[str, Callable[[object], Any]] = {name: parser(name) for name in RUN_KEYS}
# The table and the record must name the same options (tests/test_options.py checks more).
assert set(RUN_KEYS) == {f.name for f in fields(RunConfig)}


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
                raise OptionError(second, f"give {flag_of(first)} or {flag_of(second)}, not both")
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

