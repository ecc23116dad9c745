"""fanout's own cost per task (issue 20), for `benchmarks/run.py --only own-cpu,scaling`.

own-cpu: 10,000 x `true` at -j 4, output on tmpfs: fanout's own CPU (user + sys of
  its process, its threads included, its tasks not) divided by the tasks. fanout runs
  in a probe process (`python -c`, its `main()` called in it) that reads
  RUSAGE_SELF and RUSAGE_CHILDREN when it returns: a wait4 on a separate process would
  add the tasks' time to fanout's. The start (a one-task run, measured the same way)
  is taken off, so the figure is the cost of a task, not of starting. The same is
  done for FANOUT_SPAWN=loop (tasks started on the event loop, no launcher threads),
  so that the two ways are compared in one run.

scaling: the same per-task cost (wall and own CPU, the start taken off) at 1,000 and
  20,000 tasks, alternating; with --scaling-max 100000, the larger sizes too (minutes).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

PROBE = (
    "import resource, sys, time\n"
    "from fanout_cli.entry import main\n"
    "sys.argv = ['fanout', *sys.argv[1:]]\n"
    "began = time.perf_counter()\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
    "wall = time.perf_counter() - began\n"
    "me, tasks = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(wall, me.ru_utime + me.ru_stime, tasks.ru_utime + tasks.ru_stime, file=sys.stderr)\n"
)
JOBS = 4


def measure(count: int, out_dir: Path, values: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, fanout's own CPU seconds) of one run of `count` x true."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    with open(values, "rb") as stdin:
        probe = subprocess.run(
            [sys.executable, "-c", PROBE, "run", "-q", "-j", str(JOBS), "--output-dir", str(out_dir), "--", "true"],
            stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True,
            env={**os.environ, **(env or {})},
        )
    wall, own, _tasks = (float(word) for word in probe.stderr.split()[-3:])
    shutil.rmtree(out_dir, ignore_errors=True)
    return wall, own


def _values(scratch: Path, count: int) -> Path:
    path = scratch / f"values-{count}.txt"
    if not path.exists():
        path.write_text("".join(f"{n}\n" for n in range(1, count + 1)))
    return path


def per_task_costs(rounds: int, shm: Path, scratch: Path, sizes: list[int],
                   env: dict[str, str] | None = None) -> dict[int, tuple[float, float]]:
    """Median (wall ms, own CPU ms) per task at each size, the start taken off; the
    sizes alternate within each round."""
    samples: dict[int, list[tuple[float, float]]] = {size: [] for size in [1, *sizes]}
    for round_number in range(rounds):
        for size, taken in samples.items():
            taken.append(measure(size, shm / f"scale-{size}-{round_number}", _values(scratch, size), env))
    start_wall = statistics.median(wall for wall, _ in samples[1])
    start_cpu = statistics.median(own for _, own in samples[1])
    return {
        size: (
            statistics.median(wall for wall, _ in samples[size]) - start_wall,
            statistics.median(own for _, own in samples[size]) - start_cpu,
        )
        for size in sizes
    }


def own_cpu(rounds: int, shm: Path, scratch: Path) -> dict[str, Any]:
    count = 10_000
    threads = per_task_costs(max(1, rounds // 2), shm, scratch, [count])[count]
    loop = per_task_costs(max(1, rounds // 2), shm, scratch, [count], {"FANOUT_SPAWN": "loop"})[count]
    per_task = threads[1] / count * 1000
    return {
        "workload": "10,000 x true, tmpfs, -j 4: fanout's own CPU",
        "measure": "ms per task",
        "target": "<= 0.25 ms",
        "fanout": per_task,
        "passed": per_task <= 0.25,
        "note": (f"starts on the loop (FANOUT_SPAWN=loop): {loop[1] / count * 1000:.3f} ms; wall per task "
                 f"{threads[0] / count * 1000:.3f} ms with the launcher, {loop[0] / count * 1000:.3f} ms on the loop"),
    }


def scaling(rounds: int, shm: Path, scratch: Path, largest: int) -> dict[str, Any]:
    sizes = [1_000, 20_000] + [size for size in (50_000, 100_000) if size <= largest]
    costs = per_task_costs(max(1, rounds // 2), shm, scratch, sizes)
    per_task = {size: (wall / size * 1000, own / size * 1000) for size, (wall, own) in costs.items()}
    ratio = per_task[20_000][0] / per_task[1_000][0]
    return {
        "workload": "cost per task at 20,000 tasks against 1,000",
        "measure": "wall per task ratio",
        "target": "<= 1.2 x",
        "fanout": per_task[20_000][0],
        "peer": per_task[1_000][0],
        "peer_name": "at 1,000 tasks",
        "ratio": ratio,
        "passed": ratio <= 1.2,
        "note": "; ".join(f"{size:,}: {wall:.3f} ms wall, {own:.3f} ms own CPU a task"
                          for size, (wall, own) in per_task.items()),
    }
