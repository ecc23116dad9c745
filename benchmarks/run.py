"""fanout against xargs -P and GNU parallel, side by side, as ratios.

    python benchmarks/run.py                 # every workload, 5 rounds
    python benchmarks/run.py --rounds 3 --only tmpfs,disk,startup

Installs nothing: it uses the `fanout` next to this Python, and `xargs` and
`parallel` from PATH (apt-get install parallel hyperfine) when present. Commands of
one workload alternate round by round and the medians are compared, because the
machine is shared and noisy. Prints a table and writes benchmarks/results/<time>.json.
Output folders of earlier rounds are deleted only at the end: on ext4, creating files
right after deleting many is slow, and that would be measured instead of the tools.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FANOUT = str(Path(sys.executable).with_name("fanout"))
JOBS = 4


@dataclass
class Result:
    workload: str
    measure: str
    target: str
    fanout: float | None = None
    peer: float | None = None
    peer_name: str = ""
    ratio: float | None = None
    passed: bool | None = None
    note: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)


def timed(command: list[str], stdin_path: str | None = None, env: dict[str, str] | None = None,
          cwd: str | None = None) -> float:
    """Wall time of one command, its output thrown away."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        started = time.perf_counter()
        subprocess.run(command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=env, cwd=cwd, check=False)
        return time.perf_counter() - started
    finally:
        if stdin_path:
            stdin.close()  # type: ignore[union-attr]


def peak_rss_mib(command: list[str], stdin_path: str | None = None, cwd: str | None = None) -> tuple[float, float]:
    """(peak RSS of the command's largest process in MiB, wall seconds), measured in a
    fresh wrapper so that nothing this script ran before is counted."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "stdin = open(sys.argv[1], 'rb') if sys.argv[1] else subprocess.DEVNULL\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[2:], stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, stdin_path or "", *command], cwd=cwd,
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]) / 1024, float(out[1])


def alternate(rounds: int, commands: dict[str, Callable[[int], float]]) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for round_number in range(rounds):
        for name, run in commands.items():
            samples[name].append(run(round_number))
    return samples


def compare(result: Result, samples: dict[str, list[float]], peer: str, limit: float) -> Result:
    result.samples = samples
    result.fanout = statistics.median(samples["fanout"])
    result.peer = statistics.median(samples[peer])
    result.peer_name = peer
    result.ratio = result.fanout / result.peer
    result.passed = result.ratio <= limit
    return result


class Bench:
    def __init__(self, rounds: int, scratch: Path) -> None:
        self.rounds = rounds
        self.scratch = scratch
        self.scaling_max = 20_000
        self.shm = Path(tempfile.mkdtemp(prefix="fanout-bench-", dir="/dev/shm")) if Path("/dev/shm").is_dir() else scratch
        self.lines_2000 = str(scratch / "2000.txt")
        Path(self.lines_2000).write_text("".join(f"{n}\n" for n in range(1, 2001)))
        self.parallel = shutil.which("parallel")
        self.xargs = shutil.which("xargs")

    def cleanup(self) -> None:
        shutil.rmtree(self.shm, ignore_errors=True)

    def fanout_run(self, output_dir: Path, *args: str) -> list[str]:
        return [FANOUT, "run", "-q", "-j", str(JOBS), "--output-dir", str(output_dir), *args]

    def tmpfs(self) -> Result:
        result = Result("2,000 x true from stdin, output on tmpfs", "wall", "<= 1.3 x xargs -P4 -n1")
        if not self.xargs:
            result.note = "xargs not found"
            return result
        samples = alternate(self.rounds, {
            "fanout": lambda n: timed(self.fanout_run(self.shm / f"tmpfs-{n}", "--", "true"), self.lines_2000),
            "xargs": lambda n: timed([self.xargs, "-P4", "-n1", "true"], self.lines_2000),
        })
        return compare(result, samples, "xargs", 1.3)

    def disk(self) -> Result:
        result = Result("2,000 x true from stdin, output on disk", "wall", "<= 0.30 x parallel --results")
        if not self.parallel:
            result.note = "GNU parallel not found (apt-get install parallel)"
            return result
        disk = self.scratch / "disk"
        samples = alternate(self.rounds, {
            "fanout": lambda n: timed(self.fanout_run(disk / f"fanout-{n}", "--", "true"), self.lines_2000),
            "parallel": lambda n: timed([self.parallel, "-j4", "--results", str(disk / f"parallel-{n}"), "true"], self.lines_2000),
        })
        return compare(result, samples, "parallel", 0.30)

    def keep_order(self) -> Result:
        """-k: every task's output printed in input order, against GNU parallel's -k
        (both print the same bytes; checked once before timing)."""
        result = Result("-k: 2,000 x echo from stdin, outputs in order", "wall", "<= 0.5 x parallel -k")
        if not self.parallel:
            result.note = "GNU parallel not found (apt-get install parallel)"
            return result
        parallel = [self.parallel, "-k", "-j4", "echo", "line"]
        ours = [*self.fanout_run(self.shm / "keep-order-check", "-k", "--", "echo", "line")]
        with open(self.lines_2000, "rb") as one, open(self.lines_2000, "rb") as two:
            expected = subprocess.run(parallel, stdin=one, capture_output=True, check=True).stdout
            printed = subprocess.run(ours, stdin=two, capture_output=True, check=True).stdout
        if printed != expected:
            result.note = "fanout -k printed other bytes than parallel -k"
            return result
        samples = alternate(self.rounds, {
            "fanout": lambda n: timed(self.fanout_run(self.shm / f"keep-order-{n}", "-k", "--", "echo", "line"), self.lines_2000),
            "parallel": lambda n: timed(parallel, self.lines_2000),
        })
        return compare(result, samples, "parallel", 0.5)

    def startup(self) -> Result:
        """One `true` task from a regular (non-editable) install of this checkout (see
        install.py), beside `fanout --help` and the bare `python -c pass` of that venv."""
        from install import regular_install

        result = Result("startup: one true task, regular install", "wall", "<= 1.2 x parallel true ::: 1")
        if not self.parallel:
            result.note = "GNU parallel not found"
            return result
        fanout = str(regular_install(self.scratch / "install"))
        python = str(Path(fanout).with_name("python"))
        out_dir = str(self.scratch / "startup")
        samples = alternate(max(self.rounds, 10), {
            "fanout": lambda n: timed([fanout, "run", "-q", "--output-dir", out_dir, "--", "true", ":::", "1"]),
            "parallel": lambda n: timed([self.parallel, "true", ":::", "1"]),
            "fanout --help": lambda n: timed([fanout, "--help"]),
            "python -c pass": lambda n: timed([python, "-c", "pass"]),
        })
        compare(result, samples, "parallel", 1.2)
        help_wall, floor = (statistics.median(samples[name]) for name in ("fanout --help", "python -c pass"))
        result.note = f"fanout --help {help_wall:.3f}s; python -c pass {floor:.3f}s (that venv's floor)"
        return result

    def big_output(self) -> Result:
        result = Result("4 tasks x 256 MiB to stdout", "peak RSS MiB", "<= 40 MiB, every byte kept")
        size = 256 << 20
        writer = ("import sys\nblock = bytes(range(256)) * 4096\nout = sys.stdout.buffer\n"
                  f"for _ in range({size} // len(block)): out.write(block)\n")
        out_dir = self.scratch / "big"
        rss, wall = peak_rss_mib(self.fanout_run(out_dir, "--", sys.executable, "-c", writer, ":::", "1", "2", "3", "4"))
        expected = hashlib.sha256(bytes(range(256)) * 4096 * (size // (256 * 4096))).hexdigest()
        stdout_files = sorted(out_dir.glob("*/*.stdout"))
        exact = len(stdout_files) == 4 and all(_sha256(path) == expected for path in stdout_files)
        result.fanout, result.passed = rss, rss <= 40 and exact
        result.note = f"{len(stdout_files)} stdout files, byte-exact: {exact}; wall {wall:.1f}s"
        shutil.rmtree(out_dir, ignore_errors=True)
        return result

    def dry_run(self) -> Result:
        result = Result("1,000,000 stdin lines, --dry-run", "peak RSS MiB; wall s", "<= 50 MiB; <= 4 s")
        million = self.scratch / "million.txt"
        million.write_text("".join(f"{n}\n" for n in range(1, 1_000_001)))
        rss, wall = peak_rss_mib([FANOUT, "run", "--dry-run", "--", "echo", "{}"], str(million))
        result.fanout, result.passed = rss, rss <= 50 and wall <= 4
        result.note = f"wall {wall:.2f}s"
        if self.parallel:
            small = self.scratch / "dry-1000.txt"
            small.write_text("".join(f"{n}\n" for n in range(1, 1001)))
            seconds = timed([self.parallel, "--dry-run", "echo", "{}"], str(small))
            result.note += f"; GNU parallel --dry-run: {seconds:.2f}s for 1,000 lines"
        return result

    def mixed_sleeps(self) -> Result:
        result = Result("40 tasks, sleeps 0.1-1.0 s mixed", "makespan / greedy", "<= 1.03")
        durations = [round(0.1 + (n * 37 % 10) / 10 * 0.9, 2) for n in range(40)]
        values = self.scratch / "sleeps.txt"
        values.write_text("".join(f"{d}\n" for d in durations))
        out_dir = self.scratch / "sleeps"
        subprocess.run(self.fanout_run(out_dir, "--", "sleep"), stdin=open(values, "rb"), check=False,
                       stdout=subprocess.DEVNULL)
        run_dir = next(out_dir.iterdir())
        events = [json.loads(line) for line in (run_dir / "journal.jsonl").read_bytes().splitlines()]
        starts = [_epoch(e["time"]) for e in events if e["event"] == "task_started"]
        ends = [_epoch(e["time"]) for e in events if e["event"] == "task_ended"]
        measured = [row["duration_ms"] / 1000 for row in json.loads((run_dir / "manifest.json").read_bytes())["tasks"]]
        makespan = max(ends) - min(starts)
        greedy = _greedy_makespan(measured, JOBS)
        result.fanout, result.peer, result.peer_name = makespan, greedy, "greedy list scheduler"
        result.ratio = makespan / greedy
        result.passed = result.ratio <= 1.03
        return result

    def early_exit(self) -> Result:
        result = Result("first-n-succeed N=1: 0.2 s win, nine 30 s sleepers", "win -> exit s", "<= 0.3 s, no leftovers")
        out_dir = self.scratch / "early"
        pids = self.scratch / "early-pids"
        pids.mkdir()
        sleeper = f"echo $$ > {pids}/$1; exec sleep 30"
        values = ["win"] + [f"s{n}" for n in range(9)]
        command = self.fanout_run(out_dir, "--strategy", "first-n-succeed", "-j", "10", "--",
                                  "sh", "-c", f'if [ "$1" = win ]; then sleep 0.2; else {sleeper}; fi', "sh", "{}", ":::", *values)
        subprocess.run(command, stdout=subprocess.DEVNULL, check=False)
        exited = time.time()
        run_dir = next(out_dir.iterdir())
        events = [json.loads(line) for line in (run_dir / "journal.jsonl").read_bytes().splitlines()]
        win = next(_epoch(e["time"]) for e in events if e["event"] == "task_ended" and e.get("status") == "success")
        leftovers = [p.name for p in pids.iterdir() if _alive(int(p.read_text()))]
        result.fanout = exited - win
        result.passed = result.fanout <= 0.3 and not leftovers
        result.note = f"leftover processes: {len(leftovers)}"
        return result


    def own_cpu(self) -> Result:
        """fanout's own CPU per task over 10,000 tasks (per_task.py)."""
        from per_task import own_cpu

        return Result(**own_cpu(self.rounds, self.shm, self.scratch))

    def scaling(self) -> Result:
        """The cost per task at 20,000 tasks against 1,000 (per_task.py)."""
        from per_task import scaling

        return Result(**scaling(self.rounds, self.shm, self.scratch, self.scaling_max))

    def halt(self) -> list[Result]:
        """Early ends: first-n-succeed's win and --halt now,fail=1, beside GNU parallel's."""
        from halt import early_ends

        return [Result(**found) for found in early_ends(self.rounds, self.scratch, self.parallel)]

    def report(self) -> list[Result]:
        """The HTML report of 10,000 tasks: its time beside fanout show's, and its size."""
        from report import report_costs

        return [Result(**found) for found in report_costs(self.rounds, self.scratch)]

    def sharding(self) -> list[Result]:
        """Per task (below), then per test (sharding.py), side by side."""
        from sharding import per_test

        return [self.sharding_per_task(), Result(**per_test(min(self.rounds, 3), self.scratch))]

    def sharding_per_task(self) -> Result:
        result = Result("200 skewed tasks in 4 shards", "slowest shard / ideal",
                        "<= 1.10 x ideal with accurate timings")
        shards, durations = 4, _skewed_durations(200, 40.0)
        ideal = sum(durations) / shards
        values = self.scratch / "shard-values.txt"
        values.write_text("".join(f"{d}\n" for d in durations))
        timings = self.scratch / "shard-timings.json"
        timings.write_text(json.dumps({"fanout_timings_version": 1, "tasks": {
            str(d): {"durations": [d], "last_status": "success"} for d in durations}}))
        by_time = [FANOUT, "run", "-q", "-j", "1", "--timings", str(timings), "--output-dir",
                   str(self.scratch / "shard-time"), "--", "sleep"]
        by_count = [FANOUT, "run", "-q", "-j", "1", "--output-dir", str(self.scratch / "shard-count"),
                    "--", "sleep"]
        plan = subprocess.run([*by_time[:2], "--shard", f"1/{shards}", "--dry-run", *by_time[2:]],
                              stdin=open(values, "rb"), capture_output=True, text=True, check=True).stdout
        estimated = max(float(line.rsplit("estimated ", 1)[1].split("s")[0])
                        for line in plan.splitlines() if line.startswith("# shard "))
        time_walls = _shard_walls(by_time, shards, values)
        count_walls = _shard_walls(by_count, shards, values)
        counted = [sum(float(row["task_id"]) for row in json.loads((run / "manifest.json").read_bytes())["tasks"])
                   for run in (self.scratch / "shard-count").iterdir()]
        result.fanout = max(time_walls)
        result.peer, result.peer_name = ideal, f"ideal: total/{shards}"
        result.ratio = result.fanout / ideal
        result.passed = result.ratio <= 1.10
        result.samples = {"by time": time_walls, "by count": count_walls}
        result.note = (f"timing-based: estimated {estimated:.2f}s ({estimated / ideal:.2f} x), measured "
                       f"{max(time_walls):.2f}s; count-based: estimated about {max(counted):.2f}s "
                       f"({max(counted) / ideal:.2f} x), measured {max(count_walls):.2f}s "
                       f"({max(count_walls) / ideal:.2f} x)")
        return result

    def agent_calls(self) -> list[Result]:
        """Agent calls against a local server: fanout, an asyncio baseline, the ideal (agents.py)."""
        from agents import agent_calls

        return [Result(**found) for found in agent_calls(self.rounds, self.scratch, self.xargs)]


def _shard_walls(command: list[str], shards: int, values: Path) -> list[float]:
    """Each shard's wall time, run one after another: on CI every shard has a machine
    of its own, and four of them at once on this 2-core box would measure the box."""
    return [timed([*command[:2], "--shard", f"{i}/{shards}", *command[2:]], str(values))
            for i in range(1, shards + 1)]


def _skewed_durations(count: int, total: float) -> list[float]:
    """A test suite's shape: most tasks quick, a few long (Pareto-like), in an order
    that does not follow their length."""
    raw = [1.0 / ((n * 7919 % count) + 1) ** 0.8 for n in range(count)]
    scale = total / sum(raw)
    return [round(value * scale, 3) for value in raw]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def _greedy_makespan(durations: list[float], workers: int) -> float:
    """Each task, in input order, goes to the worker that frees up first."""
    free_at = [0.0] * workers
    for duration in durations:
        soonest = min(range(workers), key=free_at.__getitem__)
        free_at[soonest] += duration
    return max(free_at)


def _print_table(results: list[Result]) -> None:
    print(f"{'workload':<52} {'measure':<20} {'fanout':>9} {'peer':>9} {'ratio':>7}  target / result")
    for r in results:
        fanout = "-" if r.fanout is None else f"{r.fanout:.3f}"
        peer = "-" if r.peer is None else f"{r.peer:.3f}"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        verdict = {True: "PASS", False: "MISS", None: "n/a"}[r.passed]
        print(f"{r.workload:<52} {r.measure:<20} {fanout:>9} {peer:>9} {ratio:>7}  {r.target}: {verdict}"
              + (f"  ({r.peer_name})" if r.peer_name else "") + (f"  [{r.note}]" if r.note else ""))


WORKLOADS = {
    "tmpfs": Bench.tmpfs, "disk": Bench.disk, "startup": Bench.startup, "keep-order": Bench.keep_order,
    "big-output": Bench.big_output, "dry-run": Bench.dry_run,
    "mixed-sleeps": Bench.mixed_sleeps, "early-exit": Bench.early_exit,
    "agent-calls": Bench.agent_calls, "sharding": Bench.sharding, "halt": Bench.halt,
    "own-cpu": Bench.own_cpu, "scaling": Bench.scaling, "report": Bench.report,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated: " + ", ".join(WORKLOADS))
    parser.add_argument("--scaling-max", type=int, default=20_000,
                        help="the largest run of the scaling workload (100000: minutes)")
    args = parser.parse_args()
    if not Path(FANOUT).exists():
        print(f"no fanout next to {sys.executable}: pip install -e . first", file=sys.stderr)
        return 2
    # On disk, next to the repository: /tmp may be a tmpfs on other machines.
    scratch = Path(tempfile.mkdtemp(prefix="bench-", dir=ROOT / "benchmarks"))
    bench = Bench(args.rounds, scratch)
    bench.scaling_max = args.scaling_max
    results = []
    try:
        for name in args.only.split(","):
            print(f"... {name}", file=sys.stderr, flush=True)
            got = WORKLOADS[name](bench)
            results.extend(got if isinstance(got, list) else [got])
    finally:
        bench.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)
    _print_table(results)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    path = out / time.strftime("%Y%m%dT%H%M%S.json")
    machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
               "parallel": bench.parallel, "xargs": bench.xargs}
    path.write_text(json.dumps({"machine": machine, "rounds": args.rounds,
                                "results": [asdict(r) for r in results]}, indent=2))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
