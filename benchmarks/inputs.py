"""Issue 15's input model against xargs and GNU parallel, side by side, in one run.

    python benchmarks/inputs.py                     # both workloads, 5 rounds
    python benchmarks/inputs.py --rounds 3 --only batch
    python benchmarks/inputs.py --profile           # and where fanout's time goes (cProfile)

batch: 10,000 values (stdin lines) through `fanout run -X -j 4 -- true`,
`xargs -P4 -n 5000 true` and `parallel -X -j4 true`; the median wall times and their
ratios to xargs (target: fanout within 1.2 x of xargs). Beside them fanout with one
value, to tell its fixed cost from its cost per value. fanout's output folder is on
tmpfs, so that the disk is not what is measured.

work: the same values through a command that works on each (a shell loop), where the
work, not the start, is what takes the time: the same ratio and target.

product: the peak RSS of `fanout run --dry-run -- echo {1} {2} ::: 1..1000 ::: 1..1000`
(1,000,000 commands) > /dev/null (target: under 50 MiB), beside 1,000,000 stdin lines
--dry-run, and GNU parallel's --dry-run of a SAMPLE of the same product (100 x 10 by
default, --gnu-sample): GNU parallel needs milliseconds a command here, hours for the
whole product, so its wall time is scaled to 1,000,000 commands and marked as such.

Compiles fanout's modules to bytecode first (an installed fanout has it; without it,
each run compiles them again). Uses the helpers of run.py (same folder). Prints a
table, with --profile the functions fanout's time goes to, and writes
benchmarks/results/inputs-<time>.json.
"""

from __future__ import annotations

import argparse
import compileall
import json
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from run import FANOUT, JOBS, ROOT, alternate, peak_rss_mib, timed

VALUES = 10_000
WORK_LOOPS = 800
_WORK = f'for v do i=0; while [ $i -lt {WORK_LOOPS} ]; do i=$((i+1)); done; done'
SIDE = 1000  # the product is SIDE x SIDE


@dataclass
class Row:
    workload: str
    tool: str
    measure: str
    value: float | None = None
    ratio: float | None = None  # to the row the workload compares with
    target: str = ""
    passed: bool | None = None
    note: str = ""
    samples: list[float] = field(default_factory=list)


class Inputs:
    def __init__(self, rounds: int, scratch: Path, gnu_sample: tuple[int, int]) -> None:
        self.rounds = rounds
        self.scratch = scratch
        self.shm = Path(tempfile.mkdtemp(prefix="fanout-inputs-", dir="/dev/shm")) if Path("/dev/shm").is_dir() else scratch
        self.gnu_sample = gnu_sample
        self.parallel = shutil.which("parallel")
        self.xargs = shutil.which("xargs")
        self.values = scratch / "values.txt"
        self.values.write_text("".join(f"{n}\n" for n in range(1, VALUES + 1)))

    def cleanup(self) -> None:
        shutil.rmtree(self.shm, ignore_errors=True)

    def batch_commands(self) -> dict[str, list[str]]:
        commands = {
            "fanout -X": [FANOUT, "run", "-q", "-X", "-j", str(JOBS), "--output-dir", str(self.shm / "batch"), "--", "true"],
        }
        if self.xargs:
            commands["xargs -n 5000"] = [self.xargs, f"-P{JOBS}", "-n", "5000", "true"]
        if self.parallel:
            commands["parallel -X"] = [self.parallel, "-X", f"-j{JOBS}", "true"]
        return commands

    def batch(self) -> list[Row]:
        workload = f"{VALUES:,} values, -X -j {JOBS} true"
        commands = self.batch_commands()
        one_value = [FANOUT, "run", "-q", "-X", "-j", str(JOBS), "--output-dir", str(self.shm / "one"), "--", "true", ":::", "1"]
        runs: dict[str, Callable[[int], float]] = {name: _timer(command, str(self.values)) for name, command in commands.items()}
        runs["fanout, 1 value"] = _timer(one_value, None)
        samples = alternate(self.rounds, runs)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        base = medians.get("xargs -n 5000")
        rows = []
        for name, median in medians.items():
            row = Row(workload, name, "wall s (median)", median, samples=samples[name])
            if base:
                row.ratio = median / base
            rows.append(row)
        fanout_row = rows[0]
        fanout_row.target = "<= 1.2 x xargs"
        if fanout_row.ratio is not None:
            fanout_row.passed = fanout_row.ratio <= 1.2
        fanout_row.note = (f"fixed cost (1 value) {medians['fanout, 1 value']:.3f}s; per value "
                           f"{(medians['fanout -X'] - medians['fanout, 1 value']) / VALUES * 1e6:.1f} us")
        if not self.xargs:
            fanout_row.note += "; xargs not found"
        if not self.parallel:
            fanout_row.note += "; GNU parallel not found"
        return rows

    def work(self) -> list[Row]:
        """The same 10,000 values through a command that works on each value (a shell
        loop, about 0.5 ms of CPU a value): what batching is for. fanout's fixed cost
        counts for little beside the work, and how evenly the batches share the cores
        counts for much (xargs -n 5000 makes two batches; -X spreads over the -j slots)."""
        workload = f"{VALUES:,} values, -X -j {JOBS}, {WORK_LOOPS} shell loops a value"
        command = ["sh", "-c", _WORK, "sh"]
        runs: dict[str, Callable[[int], float]] = {
            "fanout -X": _timer([FANOUT, "run", "-q", "-X", "-j", str(JOBS), "--output-dir",
                                 str(self.shm / "work"), "--", *command], str(self.values)),
        }
        if self.xargs:
            runs["xargs -n 5000"] = _timer([self.xargs, f"-P{JOBS}", "-n", "5000", *command], str(self.values))
        if self.parallel:
            runs["parallel -X"] = _timer([self.parallel, "-q", "-X", f"-j{JOBS}", *command], str(self.values))
        samples = alternate(self.rounds, runs)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        base = medians.get("xargs -n 5000")
        rows = [Row(workload, name, "wall s (median)", median, median / base if base else None,
                    samples=samples[name]) for name, median in medians.items()]  # fmt: skip
        rows[0].target = "<= 1.2 x xargs"
        rows[0].passed = None if rows[0].ratio is None else rows[0].ratio <= 1.2
        return rows

    def product_command(self, side_a: int, side_b: int) -> list[str]:
        return ["echo", "{1}", "{2}", ":::", *map(str, range(1, side_a + 1)), ":::", *map(str, range(1, side_b + 1))]

    def product(self) -> list[Row]:
        rows = []
        rss, wall = peak_rss_mib([FANOUT, "run", "--dry-run", "--", *self.product_command(SIDE, SIDE)])
        rows.append(Row(f"{SIDE} x {SIDE} ::: product, --dry-run", "fanout", "peak RSS MiB", rss,
                        target="< 50 MiB", passed=rss < 50, note=f"wall {wall:.2f}s"))
        million = self.scratch / "million.txt"
        million.write_text("".join(f"{n}\n" for n in range(1, SIDE * SIDE + 1)))
        rss, wall = peak_rss_mib([FANOUT, "run", "--dry-run", "--", "echo", "{}"], str(million))
        rows.append(Row(f"{SIDE * SIDE:,} stdin lines, --dry-run", "fanout", "peak RSS MiB", rss,
                        target="< 50 MiB", passed=rss < 50, note=f"wall {wall:.2f}s"))
        if self.parallel:
            side_a, side_b = self.gnu_sample
            rss, wall = peak_rss_mib([self.parallel, "--dry-run", *self.product_command(side_a, side_b)])
            scaled = wall / (side_a * side_b) * SIDE * SIDE
            rows.append(Row(f"{side_a} x {side_b} ::: product, --dry-run (a sample)", "GNU parallel", "peak RSS MiB", rss,
                            note=f"wall {wall:.2f}s for {side_a * side_b:,} commands; scaled to {SIDE * SIDE:,}: "
                                 f"about {scaled / 60:.0f} min (RSS of the sample only)"))
        return rows

    def profile(self) -> list[str]:
        """cProfile of fanout's own process: the batch workload, and a 200 x 200 product
        --dry-run (the whole product takes minutes under the profiler)."""
        cases = {
            "batch": (self.batch_commands()["fanout -X"], str(self.values)),
            "200 x 200 product --dry-run": ([FANOUT, "run", "--dry-run", "--", *self.product_command(200, 200)], None),
        }
        reports = []
        for number, (name, (command, stdin)) in enumerate(cases.items()):
            stats_path = self.scratch / f"profile-{number}.prof"
            with open(stdin or "/dev/null", "rb") as handle:
                subprocess.run([sys.executable, "-c", _PROFILE, str(stats_path), *command[1:]], stdin=handle,
                               stdout=subprocess.DEVNULL, check=False)
            reports.append(_top_functions(name, stats_path))
        return reports


# Runs fanout's entry point under cProfile in this process: argv[1] is where the
# statistics go, the rest are fanout's arguments.
_PROFILE = (
    "import cProfile, sys\n"
    "from fanout_cli.entry import main\n"
    "stats_path, sys.argv = sys.argv[1], ['fanout', *sys.argv[2:]]\n"
    "profiler = cProfile.Profile()\n"
    "try:\n"
    "    profiler.runcall(main)\n"
    "except SystemExit:\n"
    "    pass\n"
    "profiler.dump_stats(stats_path)\n"
)


def _timer(command: list[str], stdin_path: str | None) -> Callable[[int], float]:
    return lambda _round: timed(command, stdin_path)


def _top_functions(name: str, stats_path: Path, count: int = 15) -> str:
    """The functions with the most own and cumulative time, as shares of the whole run.
    cProfile counts a recursive call's cumulative time once, so the cumulative time of
    importlib's _find_and_load is the time spent importing."""
    stats = pstats.Stats(str(stats_path))
    table = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]  # the sum of every function's own time
    imports = max((entry[3] for (_file, _line, func), entry in table.items() if func == "_find_and_load"), default=0.0)
    lines = [f"--- profile of fanout, {name}: {total:.3f}s in fanout's process, of which imports "
             f"{imports:.3f}s = {imports / total:.0%}"]
    for title, index in (("own time", 2), ("cumulative time, fanout's functions", 3)):
        lines.append(f"by {title}:")
        # Cumulative times of asyncio's frames count a coroutine's time more than once:
        # that ranking shows fanout's own functions only.
        entries = table.items() if index == 2 else [item for item in table.items() if "fanout_cli" in item[0][0]]
        ranked = sorted(entries, key=lambda item: item[1][index], reverse=True)[:count]
        for (file, line, func), (_cc, calls, own, cumulative, _callers) in ranked:
            where = f"{Path(file).name}:{line}" if line else file
            lines.append(f"  {own / total:6.1%} own {cumulative / total:6.1%} cum {calls:>9} calls  {func} ({where})")
    return "\n".join(lines)


def _print_table(rows: list[Row]) -> None:
    print(f"{'workload':<48} {'tool':<16} {'measure':<16} {'value':>9} {'ratio':>7}  target / result")
    for row in rows:
        value = "-" if row.value is None else f"{row.value:.3f}"
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        verdict = {True: "PASS", False: "MISS", None: ""}[row.passed]
        target = f"{row.target}: {verdict}" if row.target else ""
        print(f"{row.workload:<48} {row.tool:<16} {row.measure:<16} {value:>9} {ratio:>7}  {target}"
              + (f"  [{row.note}]" if row.note else ""))


WORKLOADS = {"batch": Inputs.batch, "work": Inputs.work, "product": Inputs.product}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated: " + ", ".join(WORKLOADS))
    parser.add_argument("--gnu-sample", default="100x10", help="the part of the product GNU parallel runs: AxB")
    parser.add_argument("--profile", action="store_true", help="also profile fanout's process (cProfile)")
    args = parser.parse_args()
    if not Path(FANOUT).exists():
        print(f"no fanout next to {sys.executable}: pip install -e . first", file=sys.stderr)
        return 2
    side_a, side_b = (int(part) for part in args.gnu_sample.split("x"))
    # Bytecode for fanout's modules, as an installed fanout has it: with
    # PYTHONDONTWRITEBYTECODE set, each run would compile them again (40 ms a run here).
    compileall.compile_dir(str(ROOT / "fanout_cli"), quiet=1)
    scratch = Path(tempfile.mkdtemp(prefix="bench-inputs-", dir=ROOT / "benchmarks"))
    bench = Inputs(args.rounds, scratch, (side_a, side_b))
    rows: list[Row] = []
    profiles: list[str] = []
    try:
        for name in args.only.split(","):
            print(f"... {name}", file=sys.stderr, flush=True)
            rows.extend(WORKLOADS[name](bench))
        if args.profile:
            profiles = bench.profile()
    finally:
        bench.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)
    _print_table(rows)
    for report in profiles:
        print(report)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    path = out / time.strftime("inputs-%Y%m%dT%H%M%S.json")
    machine = {"python": sys.version.split()[0], "parallel": bench.parallel, "xargs": bench.xargs}
    path.write_text(json.dumps({"machine": machine, "rounds": args.rounds, "rows": [asdict(row) for row in rows],
                                "profiles": profiles}, indent=2))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
