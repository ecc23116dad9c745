"""Voting and scoring over a huge stdout: wall time and peak RSS of `fanout run`.

    python benchmarks/vote.py                         # 200 MiB, both shapes, 3 rounds
    python benchmarks/vote.py --mib 50 --rounds 1 --shape word

Each measured run has one task that prints MIB mebibytes and is voted on
(`--strategy majority-vote`, key: the whole stdout, whitespace-normalised) or scored
(`--strategy best-of-n --score REGEX`, the last match in the whole stdout). Two shapes
of output: `word`, one word without whitespace (what a key built by splitting words
handles worst), and `lines`, "y" lines (the most words). Output folders go to
/dev/shm when there is one, so that the disk is not what is measured. Prints the
median wall time and peak RSS (the largest process of the run: fanout) of each case.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FANOUT = str(Path(sys.executable).with_name("fanout"))
SHAPES = {
    "word": "head -c {size} /dev/zero | tr '\\0' x",
    "lines": "yes | head -c {size}",
}
CASES = {
    "majority-vote": ("--strategy", "majority-vote"),
    "score": ("--strategy", "best-of-n", "--score", r"score=(\d+)"),
}
# Runs the command given after it; prints its peak RSS (KiB, from getrusage of the
# children, which the task's small processes do not top) and its wall seconds.
_PROBE = (
    "import resource, subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "took = time.perf_counter() - started\n"
    "if done.returncode: sys.exit(done.stderr.decode()[-2000:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, took)\n"
)


def measure(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one command, in a fresh wrapper process."""
    output = subprocess.run(
        [sys.executable, "-c", _PROBE, *command], capture_output=True, text=True, check=False
    )
    if output.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {output.stderr}")
    rss_kib, seconds = output.stdout.split()
    return float(seconds), int(rss_kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=200, help="stdout size per task")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shape", choices=[*SHAPES, "all"], default="all")
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    options = parser.parse_args()
    shapes = list(SHAPES) if options.shape == "all" else [options.shape]
    cases = list(CASES) if options.case == "all" else [options.case]
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    scratch = Path(tempfile.mkdtemp(prefix="fanout-vote-bench-", dir=base))
    print(f"{'case':<14} {'shape':<6} {'MiB':>5} {'wall s':>8} {'peak RSS MiB':>13}")
    try:
        for case in cases:
            for shape in shapes:
                task = SHAPES[shape].format(size=options.mib << 20) + "; echo; echo score=7 # {}"
                samples = []
                for round_number in range(options.rounds):
                    output_dir = scratch / f"{case}-{shape}-{round_number}"
                    command = [FANOUT, "run", "-q", "--output-dir", str(output_dir),
                               *CASES[case], "--", task, ":::", "1"]  # fmt: skip
                    samples.append(measure(command))
                    shutil.rmtree(output_dir, ignore_errors=True)
                wall = statistics.median(sample[0] for sample in samples)
                rss = statistics.median(sample[1] for sample in samples)
                print(f"{case:<14} {shape:<6} {options.mib:>5} {wall:>8.2f} {rss:>13.1f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
