"""--pipe over a large stdin: wall time and peak RSS of fanout beside GNU parallel.

    python benchmarks/pipe.py                      # 200 MiB, --block 1M -j 2, 3 rounds
    python benchmarks/pipe.py --mib 50 --rounds 1

Both cut the same input (lines of 100 bytes, in a file on /dev/shm when there is one)
into 1 MiB blocks and run `wc -c` on each, two at a time:

    fanout run -q --pipe --block 1M -j 2 -- wc -c < input
    parallel --pipe --block 1M -j 2 wc -c < input

Runs alternate, and each is checked: the blocks' byte counts add up to the input.
Prints the median wall time and peak RSS (the largest process of the run: fanout or
parallel itself, from getrusage of the children) of each, and fanout's ratios.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FANOUT = str(Path(sys.executable).with_name("fanout"))
# Runs the command given after it with stdin from a file; prints its peak RSS (KiB)
# and its wall seconds, and its stdout goes to a file beside the input.
_PROBE = (
    "import resource, subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "with open(sys.argv[1], 'rb') as stdin, open(sys.argv[2], 'wb') as stdout:\n"
    "    done = subprocess.run(sys.argv[3:], stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)\n"
    "took = time.perf_counter() - started\n"
    "if done.returncode: sys.exit(done.stderr.decode()[-2000:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, took)\n"
)


def measure(command: list[str], stdin: Path, stdout: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one command, in a fresh wrapper process."""
    output = subprocess.run([sys.executable, "-c", _PROBE, str(stdin), str(stdout), *command],
                            capture_output=True, text=True, check=False)  # fmt: skip
    if output.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {output.stderr}")
    rss_kib, seconds = output.stdout.split()
    return float(seconds), int(rss_kib) / 1024


def fanout_total(output_dir: Path) -> int:
    """The bytes every block's `wc -c` counted, from the run folder."""
    (run,) = [path for path in output_dir.iterdir() if path.is_dir()]
    manifest = json.loads((run / "manifest.json").read_text())
    return sum(int((run / row["details_file"]).with_suffix(".stdout").read_text())
               for row in manifest["tasks"])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=200, help="size of stdin")
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    parallel = shutil.which("parallel")
    if parallel is None:
        raise SystemExit("GNU parallel is not installed: nothing to compare with")
    shm = Path("/dev/shm")
    scratch = Path(tempfile.mkdtemp(prefix="fanout-bench-pipe-", dir=shm if shm.is_dir() else None))
    try:
        stdin = scratch / "input"
        mebibyte = (b"x" * 99 + b"\n") * 10486  # lines of 100 bytes, cut at 1 MiB
        with stdin.open("wb") as handle:
            for _ in range(arguments.mib):
                handle.write(mebibyte[: 1 << 20])
        size = stdin.stat().st_size
        samples: dict[str, list[tuple[float, float]]] = {"fanout": [], "parallel": []}
        for round_number in range(arguments.rounds):
            output_dir = scratch / f"runs{round_number}"
            command = [FANOUT, "run", "-q", "--output-dir", str(output_dir), "--pipe",
                       "--block", "1M", "-j", "2", "--", "wc", "-c"]  # fmt: skip
            samples["fanout"].append(measure(command, stdin, scratch / "fanout.out"))
            assert fanout_total(output_dir) == size, "fanout's blocks do not add up to stdin"
            shutil.rmtree(output_dir)
            command = [parallel, "--pipe", "--block", "1M", "-j", "2", "wc", "-c"]
            samples["parallel"].append(measure(command, stdin, scratch / "parallel.out"))
            counts = (scratch / "parallel.out").read_text().split()
            assert sum(map(int, counts)) == size, "parallel's blocks do not add up to stdin"
        print(f"--pipe --block 1M -j 2 wc -c, {arguments.mib} MiB of stdin, "
              f"median of {arguments.rounds}:")  # fmt: skip
        medians = {}
        for name, runs in samples.items():
            wall = statistics.median(seconds for seconds, _ in runs)
            rss = statistics.median(mib for _, mib in runs)
            medians[name] = (wall, rss)
            print(f"  {name:<8}  wall {wall:6.2f} s   peak RSS {rss:6.1f} MiB")
        (fanout_wall, fanout_rss), (gnu_wall, gnu_rss) = medians["fanout"], medians["parallel"]
        print(f"  fanout / parallel: wall x{fanout_wall / gnu_wall:.2f}, "
              f"peak RSS x{fanout_rss / gnu_rss:.2f}")  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
