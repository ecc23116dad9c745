"""CI sharding: which part of a task list one machine runs, planned so that every
machine of a pipeline computes the same split and the parts end together.

This module is what every run needs (is a shard asked for?). The rest is loaded only
by a shard run: split.py plans the shards (from timings.py's recorded durations)."""

from __future__ import annotations

from collections.abc import Mapping

from fanout_cli.values import MAX_SHARDS, Shard, parse_shard

# (index variable, total variable, index of the first node): what CI systems set on
# each job of a parallel matrix. GitLab's `parallel:` keyword, CircleCI's
# `parallelism`, Buildkite's `parallelism`, Semaphore's `parallelism`.
CI_SHARD_VARIABLES = (
    ("CI_NODE_INDEX", "CI_NODE_TOTAL", 1),
    ("CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", 0),
    ("BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0),
    ("SEMAPHORE_JOB_INDEX", "SEMAPHORE_JOB_COUNT", 1),
)


def shard_from_environment(environ: Mapping[str, str]) -> tuple[Shard, str] | None:
    """The shard the environment asks for, and the variable(s) that said so:
    FANOUT_SHARD=I/N, else a CI system's node index and total (when total > 1)."""
    if environ.get("FANOUT_SHARD"):
        try:
            return parse_shard(environ["FANOUT_SHARD"]), "FANOUT_SHARD"
        except ValueError as exc:
            raise ValueError(f"FANOUT_SHARD: {exc}") from None
    for index_name, total_name, first in CI_SHARD_VARIABLES:
        index, total = environ.get(index_name, ""), environ.get(total_name, "")
        if index.isdecimal() and total.isdecimal() and total.lstrip("0") not in ("", "1"):
            if len(total) > 5 or int(total) > MAX_SHARDS:
                raise ValueError(f"{total_name}={_cut(total)}: the number of shards is from 1 "
                                 f"to {MAX_SHARDS}")  # fmt: skip
            number = int(index) if len(index) <= 5 else MAX_SHARDS + first  # out of range
            shard = Shard(number - first + 1, int(total))
            if not 1 <= shard.index <= shard.total:
                last = int(total) - 1 + first
                raise ValueError(f"{index_name}={_cut(index)} is outside {first}..{last} "
                                 f"({total_name}={total}, counting from {first})")
            return shard, f"{index_name}/{total_name}"
    return None


def _cut(digits: str) -> str:
    return digits if len(digits) <= 12 else digits[:12] + "..."


