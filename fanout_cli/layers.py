"""The layers of `[run]` options (defaults, a resumed run's saved options, a task
file's `[run]` table, the command line) merged into one RunConfig, and the checks that
look at several options at once. The options themselves are in options.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fanout_cli.options import RunConfig, flag_of, parser


class OptionError(ValueError):
    """An option's value is not valid; `name` says which option."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(problem)
        self.name = name
        self.problem = problem


# Options that exclude each other: a later layer's choice replaces the earlier one's.
_EITHER_OR = (("min_successes", "min_success_ratio"), ("score", "scorer"),
              ("reduce", "reduce_prompt"), ("termseq", "grace"))


def build_config(*layers: Mapping[str, object]) -> RunConfig:
    """Apply option layers, lowest precedence first ([run] table, then the command
    line); None means not given. Raises OptionError naming the invalid option."""
    changes: dict[str, Any] = {}
    for layer in layers:
        given = {name: raw for name, raw in layer.items() if raw is not None}
        for first, second in _EITHER_OR:
            if first in given and second in given:
                raise OptionError(second, f"give {flag_of(first)} or {flag_of(second)}, not both")
            if first in given:
                changes.pop(second, None)
            if second in given:
                changes.pop(first, None)
        for name, raw in given.items():
            try:
                changes[name] = parser(name)(raw)
            except ValueError as exc:
                raise OptionError(name, str(exc)) from None
    config = RunConfig.of(**changes)
    output = config.output
    if output.shows_outputs and output.format != "human":
        shown = next(name for name in _OUTPUT_MODES if getattr(output, name))
        raise OptionError(shown, f"prints the tasks' output on stdout, where --format "
                          f"{output.format} prints its own; give one of them (fanout cat RUN "
                          "prints a run's outputs afterwards)")  # fmt: skip
    return config


_OUTPUT_MODES = ("keep_order", "group", "line_buffer", "tag", "tagstring")
