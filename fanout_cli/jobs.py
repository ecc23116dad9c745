"""`-j`/`--jobs` and `[run] jobs`: a number, or GNU parallel's forms relative to the
machine, resolved to a number when the option is read.

- `N` (1-10000): N tasks at once.
- `N%` (N more than 0, with decimals: `50%`, `10.5%`): N percent of the CPU count,
  rounded up, so never below 1.
- `+N` / `-N`: the CPU count plus / minus N; `-N` below 1 runs 1 (as GNU parallel's
  manual says; its code of 2022 stops with "Cannot run any jobs" instead). `+0` and `-0`
  are the CPU count.
- `0`: as many as the limits allow: the tasks that fit the hard descriptor limit (the
  soft one is raised to it when the run starts, fanout_cli/limits.py), at most the
  process limit (RLIMIT_NPROC, where it is set) and 10000. GNU parallel also stops at
  the number of tasks; fanout's window needs no such bound.

In a task file a relative form is a string (`jobs = "+2"`, `jobs = "50%"`): TOML reads
`+2` as the number 2. The CPU count is `os.cpu_count()` of the machine fanout runs on,
also with `--executor dask://` (give a number for a cluster). The result must be at
most 10000; the manifest keeps the resolved number."""

from __future__ import annotations

import os
import re

from fanout_cli.values import MAX_JOBS, parse_jobs, shown

_FORMS = "N (1-10000), N%, +N, -N or 0"
_RELATIVE = re.compile(r"([+-])(\d{1,24})")
_PERCENT = re.compile(r"(\d{1,24})(?:\.(\d{1,24}))?%")


def cpu_count() -> int:
    return os.cpu_count() or 1


def parse_jobs_spec(value: object) -> int:
    """The number of tasks at once that `value` asks for (see the module's doc)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"expected {_FORMS}, got {value} (in TOML a relative form is "
                             f'a string: jobs = "{value}")')  # fmt: skip
        return jobs_allowed() if value == 0 else parse_jobs(value)
    text = value.strip() if isinstance(value, str) else None
    if text is None or not text:
        raise ValueError(f"expected {_FORMS}, got {shown(value)}")
    if text.isdecimal() and len(text) <= 24 and int(text) == 0:
        return jobs_allowed()
    relative, percent = _RELATIVE.fullmatch(text), _PERCENT.fullmatch(text)
    if relative is not None:
        sign, number = relative.groups()
        cpus = cpu_count()
        return _checked(cpus + int(number) if sign == "+" else max(1, cpus - int(number)), value)
    if percent is not None:
        whole, fraction = percent.groups()
        return _checked(_share_of_cpus(whole, fraction, value), value)
    if text.isdecimal():
        return parse_jobs(text)
    raise ValueError(f"expected {_FORMS}, got {shown(value)}")


def _share_of_cpus(whole: str, fraction: str | None, value: object) -> int:
    """ceil(CPUs x whole.fraction / 100), in whole numbers (no float rounding)."""
    digits: int = int(whole + (fraction or ""))
    if digits == 0:
        raise ValueError(f"expected a share of the CPUs above 0%, got {shown(value)}")
    scale: int = 100 * 10 ** len(fraction or "")
    return -(-cpu_count() * digits // scale)


def _checked(jobs: int, value: object) -> int:
    if jobs > MAX_JOBS:
        raise ValueError(f"expected at most {MAX_JOBS} tasks at once, got {shown(value)} = "
                         f"{jobs} on {cpu_count()} CPUs")  # fmt: skip
    return jobs


def jobs_allowed() -> int:
    """`-j 0`: the tasks that fit the hard descriptor limit, at most the process limit
    (where one is set) and MAX_JOBS."""
    import resource  # only for -j 0

    from fanout_cli.limits import jobs_that_fit

    fitting = MAX_JOBS
    _, hard_files = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard_files != resource.RLIM_INFINITY:
        fitting = min(fitting, jobs_that_fit(hard_files))
    processes, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if processes != resource.RLIM_INFINITY:
        fitting = min(fitting, max(1, processes))
    return fitting
