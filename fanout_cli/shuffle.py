"""--shuf: the tasks run in a random order, from a seed the manifest keeps. Here: the
option's value and the seed; the order itself is fanout_cli/shards/shuffled.py's.

`[run] shuf = N` is that seed; `shuf = true` and the command line's `--shuf` ask for a
new one, except when resuming a run whose saved options hold a seed: that seed stays,
so `fanout run --resume RUN` continues the same order. The manifest's options keep the
seed as `shuf` (an int). `--no-shuf` turns off a task file's or a resumed run's."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fanout_cli.run_config import RunConfig

MAX_SEED = 2**63 - 1  # TOML's integers are 64-bit
CONTRADICTING_ORDERS = ("longest-first", "failed-first")


def parse_shuf(value: object) -> int | bool | None:
    """true: a new seed (or the resumed run's); false: input order; N: this seed."""
    if isinstance(value, bool):
        return True if value else None
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 19:
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value <= MAX_SEED:
        return value
    from fanout_cli.values import shown

    raise ValueError(f"expected true, false or a seed from 0 to {MAX_SEED}, got {shown(value)}")


def new_seed() -> int:
    """A seed short enough to read and type: 32 random bits from the system."""
    return int.from_bytes(os.urandom(4), "big")


def seeded(config: RunConfig, saved: object) -> RunConfig:
    """`config` with --shuf's seed chosen: a new one for `true`, unless the resumed run's
    saved options hold one (`saved`), which stays."""
    if config.sharding.shuf is not True:
        return config
    keep = isinstance(saved, int) and not isinstance(saved, bool) and saved >= 0
    return config.replaced(shuf=saved if keep else new_seed())


def contradiction(config: RunConfig) -> str | None:
    """Why --shuf cannot be given with this --order, or None."""
    order = config.sharding.order
    if config.sharding.shuf is None or order not in CONTRADICTING_ORDERS:
        return None
    return (f"--shuf runs the tasks in a random order and --order {order} in another: give "
            "one (--no-shuf turns off a [run] or resumed shuf)")  # fmt: skip
