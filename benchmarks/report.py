"""The HTML report (issue 21), for `benchmarks/run.py --only report`.

A run of 10,000 tasks at -j 8 (each prints a pytest-like line, named by a short
value), made once; then, in alternating rounds, the time to write its report
(`fanout report RUN -o FILE`) beside the time to print its table (`fanout show RUN`,
the other command that reads a whole run folder). Reported: the report's time as a
ratio of show's, as a share of the run's own wall time, and the page's size, whose
target is under 2 MiB with a bar and a row for every attempt (not aggregated).

The report only reads the folder after the run, so the run itself pays nothing for
it but the slot number in each task_started line of its journal.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from run import FANOUT

TASKS = 10_000
LIMIT = 2 * 1024 * 1024


def _timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)  # fmt: skip
    return time.perf_counter() - started


def report_costs(rounds: int, scratch: Path) -> list[dict[str, Any]]:
    folder = scratch / "report"
    folder.mkdir()
    values = [str(n) for n in range(1, TASKS + 1)]
    run = [FANOUT, "run", "-q", "-j", "8", "--run-id", "big", "--output-dir", "out", "--",
           "echo", "tests/test_{}.py: 12 passed in 0.04s", ":::", *values]  # fmt: skip
    run_wall = _timed(run, folder)
    page = folder / "report.html"
    commands = {
        "fanout report": [FANOUT, "report", "big", "--output-dir", "out", "-o", str(page)],
        "fanout show": [FANOUT, "show", "big", "--output-dir", "out"],
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            samples[name].append(_timed(command, folder))
    report, show = (statistics.median(samples[name]) for name in commands)
    size = page.stat().st_size
    aggregated = 'data-mode="aggregate"' in page.read_text()
    return [
        {"workload": f"report of {TASKS:,} tasks", "measure": "seconds, beside fanout show",
         "target": "reads the folder afterwards; a few % of the run", "fanout": report,
         "peer": show, "peer_name": "fanout show", "ratio": report / show,
         "passed": report < 0.1 * run_wall,
         "note": f"{100 * report / run_wall:.1f}% of the run's {run_wall:.1f} s",
         "samples": samples},
        {"workload": f"report of {TASKS:,} tasks", "measure": "page size, MiB",
         "target": "< 2 MiB, a bar and a row per attempt", "fanout": size / 1048576,
         "passed": size < LIMIT and not aggregated,
         "note": "aggregated" if aggregated else "every attempt drawn and listed"},
    ]  # fmt: skip
