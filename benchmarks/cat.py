"""`fanout cat` over a run of many small outputs, beside cat(1) over the same files in
glob order: wall time and peak RSS, as ratios.

    python benchmarks/cat.py                       # 100,000 and 10,000 tasks, 3 rounds
    python benchmarks/cat.py --tasks 20000 --rounds 1
    python benchmarks/cat.py --build run           # make the run with `fanout run` (slow)

The run is made once per size, by fanout's own writer (RunStore: the files, journal and
manifest a run writes, task by task, without starting 100,000 processes; `--build run`
runs `fanout run -- echo` instead). Each task's stdout is its number and a newline.
Then, alternating round by round:

    fanout cat RUN > /dev/null
    find RUN -name '*.stdout' | LC_ALL=C sort | xargs cat > /dev/null   (the peer)
    fanout cat --tag RUN > /dev/null                                    (reads details files)

Every output is checked once against the expected bytes (and the peer's, which is the
same concatenation: the file names sort in input order). Target: `fanout cat` of
100,000 outputs under 5 s, with a peak RSS that does not grow with the task count
(10,000 against 100,000). Run folders go to /dev/shm when there is one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

FANOUT = str(Path(sys.executable).with_name("fanout"))
PEER = "find . -name '*.stdout' | LC_ALL=C sort | xargs cat"
TARGET_SECONDS = 5.0
# Runs the command given after it (in the folder given first); prints its peak RSS
# (KiB, of the largest process: getrusage of the children) and its wall seconds.
_PROBE = (
    "import resource, subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[2:], cwd=sys.argv[1], stdout=subprocess.DEVNULL,\n"
    "                      stderr=subprocess.PIPE)\n"
    "took = time.perf_counter() - started\n"
    "if done.returncode: sys.exit(done.stderr.decode()[-2000:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, took)\n"
)


def measure(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one command, in a fresh wrapper process."""
    output = subprocess.run([sys.executable, "-c", _PROBE, str(cwd), *command],
                            capture_output=True, text=True, check=False)  # fmt: skip
    if output.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {output.stderr}")
    rss_kib, seconds = output.stdout.split()
    return float(seconds), int(rss_kib) / 1024


def build_with_writer(output_dir: Path, count: int) -> Path:
    """A finished run of `count` tasks written by fanout's RunStore, as a run writes
    it: each task's stdout and stderr, details file and journal row, then the manifest."""
    from fanout_cli.aop import write_output
    from fanout_cli.aop.documents import journal_row, manifest_header
    from fanout_cli.aop.writer import RowIndex, RunStore
    from fanout_cli.models import (
        Attempt,
        OutputInfo,
        RunReport,
        TaskResult,
        TaskSpec,
        TaskStatus,
        Verdict,
    )

    store = RunStore(str(output_dir), None)
    index = RowIndex()
    now = time.time()
    header = manifest_header(run_id=store.run_id, argv=["fanout", "run", "--", "echo"],
                             options={}, started_at=now)  # fmt: skip
    store.write_manifest(header, None, "running")
    for seq in range(1, count + 1):
        spec = TaskSpec(seq=seq, task_id=str(seq), command=("echo", str(seq)),
                        origin=f"stdin:{seq}", input=str(seq))  # fmt: skip
        stdout, stderr = store.output_paths(spec)
        data = f"{seq}\n".encode()
        write_output(stdout, data)
        write_output(stderr, b"")
        attempt = Attempt(1, now, now, TaskStatus.SUCCESS, 0, None, "",
                          os.path.basename(stdout), os.path.basename(stderr))  # fmt: skip
        result = TaskResult(spec, TaskStatus.SUCCESS, str(seq), (attempt,), exit_code=0,
                            started_at=now, finished_at=now,
                            stdout=OutputInfo(os.path.basename(stdout), len(data), str(seq), False),
                            stderr=OutputInfo(os.path.basename(stderr), 0, "", False))  # fmt: skip
        result = replace(result, details_file=store.write_details(result, store.run_id))
        index.add(seq, store.journal("task_ended", **journal_row(result)))
    verdict = Verdict(True, "all-succeed", f"{count} of {count} succeeded",
                      {"tasks": count, "success": count})  # fmt: skip
    report = RunReport(store.run_id, str(store.run_dir), str(store.manifest_path), verdict,
                       lambda: store.rows(index), now, time.time(), "benchmark")  # fmt: skip
    store.write_manifest(header, report, "finished")
    store.close()
    return store.run_dir


def build_with_run(output_dir: Path, count: int) -> Path:
    values = "".join(f"{seq}\n" for seq in range(1, count + 1)).encode()
    command = [FANOUT, "run", "-q", "-j", "8", "--output-dir", str(output_dir), "--", "echo"]
    subprocess.run(command, input=values, stdout=subprocess.DEVNULL, check=True)
    (run_dir,) = output_dir.iterdir()
    return run_dir


def check(run_dir: Path, count: int) -> None:
    """fanout cat and the peer both print 1..count, one a line."""
    expected = "".join(f"{seq}\n" for seq in range(1, count + 1)).encode()
    ours = subprocess.run([FANOUT, "cat", str(run_dir)], capture_output=True, check=True).stdout
    peer = subprocess.run(PEER, shell=True, cwd=run_dir, capture_output=True, check=True).stdout
    if ours != expected or peer != expected:
        raise SystemExit(f"wrong output at {count} tasks: fanout {ours == expected}, "
                         f"peer {peer == expected}")  # fmt: skip


def bench(run_dir: Path, rounds: int) -> dict[str, tuple[float, float]]:
    """Median (wall seconds, peak RSS MiB) of each command, alternating round by round."""
    commands = {
        "fanout cat": [FANOUT, "cat", "."],
        "cat (peer)": ["sh", "-c", PEER],
        "fanout cat --tag": [FANOUT, "cat", "--tag", "."],
    }
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            samples[name].append(measure(command, run_dir))
    return {name: (statistics.median(s[0] for s in got), statistics.median(s[1] for s in got))
            for name, got in samples.items()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[100_000, 10_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--build", choices=["writer", "run"], default="writer")
    options = parser.parse_args()
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    scratch = Path(tempfile.mkdtemp(prefix="fanout-cat-bench-", dir=base))
    results: dict[int, dict[str, tuple[float, float]]] = {}
    try:
        for count in options.tasks:
            started = time.perf_counter()
            build = build_with_writer if options.build == "writer" else build_with_run
            run_dir = build(scratch / str(count), count)
            print(f"built {count} tasks in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            check(run_dir, count)
            results[count] = bench(run_dir, options.rounds)
            shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{'tasks':>7} {'command':<17} {'wall s':>7} {'x peer':>7} {'RSS MiB':>8} {'x peer':>7}")
    for count, measured in results.items():
        peer_wall, peer_rss = measured["cat (peer)"]
        for name, (wall, rss) in measured.items():
            ratios = ("-", "-") if name == "cat (peer)" else (f"{wall / peer_wall:.2f}",
                                                              f"{rss / peer_rss:.2f}")  # fmt: skip
            print(f"{count:>7} {name:<17} {wall:>7.2f} {ratios[0]:>7} {rss:>8.1f} {ratios[1]:>7}")
    _verdict(results)


def _verdict(results: dict[int, dict[str, tuple[float, float]]]) -> None:
    largest, smallest = max(results), min(results)
    wall, rss = results[largest]["fanout cat"]
    print(f"target: fanout cat of {largest} outputs under {TARGET_SECONDS:.0f}s: "
          f"{'PASS' if wall < TARGET_SECONDS else 'MISS'} ({wall:.2f}s)")  # fmt: skip
    if largest != smallest:
        small_rss = results[smallest]["fanout cat"][1]
        print(f"peak RSS at {smallest} tasks {small_rss:.1f} MiB, at {largest} {rss:.1f} MiB "
              f"(x{rss / small_rss:.2f}: flat when close to 1)")  # fmt: skip


if __name__ == "__main__":
    main()
