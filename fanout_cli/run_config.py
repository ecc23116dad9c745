"""The settings of a run after its layers are merged: `RunConfig`, one frozen record
per group of options (policy, verdict, output, sharding), so that a stage is handed
only its group. The options themselves (flags, `[run]` keys, parsers, help) are the
table in fanout_cli/options.py, which checks that the table and these records agree."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from fanout_cli.values import Rate, default_output_dir

if TYPE_CHECKING:
    from fanout_cli.halting import HaltSpec
    from fanout_cli.reaper import TermSeq
    from fanout_cli.relative_limit import RelativeTimeout


@dataclass(frozen=True)
class PolicyOptions:
    """How tasks run: the window, limits, retries, pacing, and where (the executor)."""

    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    timeout: float | RelativeTimeout | None = None  # seconds, or P% of the median
    grace: float = 5.0
    termseq: TermSeq | None = None  # how a task is ended; None: TERM, grace, KILL
    deadline: float | None = None
    ok_exit: frozenset[int] = frozenset({0})
    retries: int = 0
    retry_delay: float = 1.0
    rate: Rate | None = None
    executor: str = "local"  # or dask://HOST:PORT: process tasks run on a Dask cluster
    resources: tuple[str, ...] = ()  # NAME=AMOUNT worker resources each task needs (Dask)
    halt: HaltSpec | None = None  # --halt: when the run ends early, and how (halting.py)
    memfree: int | None = None  # bytes: start only while this much memory is available
    load: str | None = None  # start only while the load is below this ("4", "100%")
    delay: float = 0.0  # seconds at least between two starts
    nice: int | None = None  # the tasks' niceness (--nice); None: fanout's own

    @property
    def stop_sequence(self) -> TermSeq:
        """How a task is ended: --termseq, else TERM, --grace, KILL."""
        from fanout_cli.reaper import TermSeq  # loaded by every run that runs a task

        return self.termseq or TermSeq.default(self.grace)


@dataclass(frozen=True)
class VerdictOptions:
    """How the results become one verdict: the strategy and what it reads."""

    strategy: str = "all-succeed"
    fail_fast: bool = False
    required_successes: int = 1
    min_successes: int | None = None
    min_success_ratio: float | None = None
    score: str | None = None
    scorer: str | None = None
    vote_on: str = "stdout"
    reduce: Any = None  # a command (str: sh -c; tuple: exec) or a [reduce] table (reduce/spec.py)
    reduce_prompt: str | None = None
    reduce_when: str = "pass"


@dataclass(frozen=True)
class OutputOptions:
    """Where the run is kept and how it is printed."""

    output_dir: str = field(default_factory=default_output_dir)
    run_id: str | None = None
    format: str = "human"
    summary_chars: int = 500
    max_lines: int = 50
    progress: bool | None = None  # live progress on stderr; None: when it is a terminal
    color: str = "auto"  # never, always, auto (NO_COLOR and FORCE_COLOR respected)
    quiet: bool = False
    junit: str | None = None  # write JUnit XML of the run here
    task_junit: str | None = None  # where each task's test runner writes JUnit (a template)
    joblog: str | None = None  # write GNU parallel's job log here, as tasks end
    # The tasks' own output on fanout's stdout and stderr (render.outputs):
    group: bool = False
    keep_order: bool = False
    line_buffer: bool = False
    tag: bool = False
    tagstring: str | None = None

    @property
    def shows_outputs(self) -> bool:
        """The tasks' output is printed: fanout's own lines go to stderr."""
        return self.group or self.keep_order or self.line_buffer or self.tag or bool(
            self.tagstring)  # fmt: skip


@dataclass(frozen=True)
class ShardOptions:
    """Which part of the task list this run is, and in which order it runs."""

    shard: str | None = None  # "2/4": run only shard 2 of 4
    timings: tuple[str, ...] = ()  # files of recorded durations, for --shard and --order
    order: str | None = None  # None: longest-first for a shard, else input
    shuf: int | None = None  # --shuf: the seed of a random order (True until one is drawn)

    @property
    def run_order(self) -> str:
        """The order the tasks start in: --order, else longest first for a shard (its
        slots then end together), else the input order (--shuf then shuffles it)."""
        return self.order or ("longest-first" if self.shard and self.shuf is None else "input")


GROUPS = {"policy": PolicyOptions, "verdict": VerdictOptions, "output": OutputOptions,
          "sharding": ShardOptions}  # fmt: skip
GROUP_OF = {f.name: group for group, record in GROUPS.items() for f in fields(record)}


@dataclass(frozen=True)
class RunConfig:
    """Every `[run]` option of `fanout run`, after the layers are merged, by group."""

    policy: PolicyOptions = field(default_factory=PolicyOptions)
    verdict: VerdictOptions = field(default_factory=VerdictOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    sharding: ShardOptions = field(default_factory=ShardOptions)

    @classmethod
    def of(cls, **values: Any) -> RunConfig:
        """A config from option values by name (already parsed): RunConfig.of(jobs=2)."""
        return cls().replaced(**values)

    def replaced(self, **values: Any) -> RunConfig:
        """This config with some options (by name) changed."""
        groups = {
            group: replace(getattr(self, group),
                           **{n: value for n, value in values.items() if GROUP_OF[n] == group})
            for group in GROUPS
        }  # fmt: skip
        return RunConfig(**groups)

    def values(self) -> dict[str, Any]:
        """Every option's value by name, group after group (the manifest's options)."""
        return {f.name: getattr(getattr(self, group), f.name)
                for group, record in GROUPS.items() for f in fields(record)}  # fmt: skip

    def document(self) -> dict[str, Any]:
        """The options as the manifest keeps them, as JSON values each option's parser
        reads back (--resume): a set sorted, a parsed value (a rate, a --halt rule) as
        the text it was read from. The stop sequence is kept whole as `termseq`
        (`grace` null: both given would be refused on --resume)."""
        document = {name: _json_value(value) for name, value in self.values().items()}
        return document | {"grace": None, "termseq": str(self.policy.stop_sequence)}


def _json_value(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str | dict | tuple):
        return list(value) if isinstance(value, tuple) else value
    if isinstance(value, frozenset):
        return sorted(value)
    return str(value)
