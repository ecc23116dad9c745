"""Per-test sharding (issue 18, part 2), for `benchmarks/run.py --only sharding`.

A suite of 300 "tests" in 20 files with skewed durations (8 s in all), run by a small
Python runner that pays a fixed start-up (0.5 s of sleep, like pytest collecting), then
sleeps each test's duration and writes JUnit. Timed once in one process (JUnit; the
start-up learnt as that run's wall less its tests, as `fanout merge` records it), then
split 4 ways, each shard alone, -j 2, in alternating rounds:

    per file:  fanout run --shard I/4 -j 2 --timings ... -- runner {}       (files on stdin)
    per test:  fanout run --shard I/4 -j 2 -X --timings ... -- runner {}    (ids on stdin)
    ideal:     the one-process wall / 4

reported as the medians of each round's slowest shard, and their ratios. When
pytest-split is importable, the same durations as a real pytest suite: fanout per test
(the README's recipe, collection included) against `pytest --splits 4 --group I`.
Everything sleeps, so the shared machine's load matters less than it would to CPU work.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import statistics
import sys
from pathlib import Path
from typing import Any

from run import FANOUT, timed

TESTS, FILES, SECONDS, STARTUP = 300, 20, 8.0, 0.5
SHARDS, JOBS = 4, 2
RUNNER = '''import json, os, sys, time
started = time.perf_counter()
suite = json.load(open(os.environ["BENCH_SUITE"]))
time.sleep(suite["startup"])
args = sys.argv[1:]
junit = args.pop(0)[len("--junit="):] if args and args[0].startswith("--junit=") else None
ids = [test for arg in args for test in suite["files"].get(arg, [arg])]
cases = []
for test in ids:
    begun = time.perf_counter()
    time.sleep(suite["tests"][test])
    cases.append((test, time.perf_counter() - begun))
if junit:
    with open(junit, "w") as out:
        out.write('<testsuite name="bench">')
        for test, seconds in cases:
            path, name = test.split("::")
            out.write(f'<testcase classname="{path[:-3].replace("/", ".")}" name="{name}" '
                      f'time="{seconds:.4f}"/>')
        out.write("</testsuite>")
'''


def suite(scratch: Path) -> dict[str, Any]:
    """Tests with durations drawn as r**4 (most a few ms, a few near 0.1 s), the files
    skewed too (file f holds tests of every weight, and its share grows with f)."""
    rng = random.Random(18)
    weights = [rng.random() ** 4 * (1 + index % FILES) for index in range(TESTS)]
    scale = SECONDS / sum(weights)
    tests, files = {}, {}
    for index, weight in enumerate(weights):
        path = f"tests/test_f{index % FILES:02}.py"
        test = f"{path}::test_{index}"
        tests[test] = round(weight * scale, 4)
        files.setdefault(path, []).append(test)
    document = {"startup": STARTUP, "tests": tests, "files": files}
    (scratch / "suite.json").write_text(json.dumps(document))
    (scratch / "runner.py").write_text(RUNNER)
    return document


def _environ(scratch: Path) -> dict[str, str]:
    environ = {**os.environ, "BENCH_SUITE": str(scratch / "suite.json")}
    for name in ("FANOUT_SHARD", "CI_NODE_INDEX", "CI_NODE_TOTAL", "PYTHONDONTWRITEBYTECODE"):
        environ.pop(name, None)
    return environ


def _slowest(command: list[str], values: Path, environ: dict[str, str], cwd: Path) -> float:
    """The slowest of the shards, each run alone."""
    return max(timed([*command[:2], "--shard", f"{i}/{SHARDS}", *command[2:]], str(values),
                     env=environ, cwd=str(cwd)) for i in range(1, SHARDS + 1))  # fmt: skip


def per_test(rounds: int, scratch: Path) -> dict[str, Any]:
    """The per-test workload: per-file vs per-test planning vs ideal (and pytest-split)."""
    scratch = scratch / "per-test"
    scratch.mkdir()
    document = suite(scratch)
    environ = _environ(scratch)
    runner = [sys.executable, str(scratch / "runner.py")]
    one = timed([*runner, f"--junit={scratch / 'all.xml'}", *document["tests"]], env=environ)
    learnt = max(0.0, one - _junit_total(scratch / "all.xml"))
    (scratch / "startup.json").write_text(json.dumps({"fanout_timings_version": 1, "tasks": {},
        "startup": {os.path.basename(sys.executable): [round(learnt, 3)]}}))  # fmt: skip
    (scratch / "files.txt").write_text("".join(f"{path}\n" for path in document["files"]))
    (scratch / "ids.txt").write_text("".join(f"{test}\n" for test in document["tests"]))
    timings = ["--timings", str(scratch / "all.xml"), "--timings", str(scratch / "startup.json")]

    def fanout(kind: str, number: int, *extra: str) -> list[str]:
        return [FANOUT, "run", "-q", "-j", str(JOBS), *extra, *timings, "--output-dir",
                str(scratch / f"{kind}-{number}"), "--", *runner, "{}"]  # fmt: skip

    walls: dict[str, list[float]] = {"per file": [], "per test": []}
    for number in range(rounds):
        order = ["per file", "per test"] if number % 2 == 0 else ["per test", "per file"]
        for kind in order:
            command = fanout(kind, number, *(["-X"] if kind == "per test" else []))
            values = scratch / ("ids.txt" if kind == "per test" else "files.txt")
            walls[kind].append(_slowest(command, values, environ, scratch))
    ideal = one / SHARDS
    file_wall, test_wall = (statistics.median(walls[kind]) for kind in ("per file", "per test"))
    note = (f"one process {one:.2f}s (start-up learnt {learnt:.2f}s), ideal {ideal:.2f}s; slowest "
            f"shard per file {file_wall:.2f}s ({file_wall / ideal:.2f} x ideal), per test "
            f"{test_wall:.2f}s ({test_wall / ideal:.2f} x); per test / per file "
            f"{test_wall / file_wall:.2f}")
    result = {"workload": f"{TESTS} tests in {FILES} files, {STARTUP}s start-up, 4 shards -j 2",
              "measure": "slowest shard / ideal", "target": "<= 1.15 x ideal, < per file",
              "fanout": test_wall, "peer": ideal, "peer_name": "ideal: one process / 4",
              "ratio": test_wall / ideal, "passed": test_wall <= 1.15 * ideal and
              test_wall < file_wall, "note": note, "samples": walls}  # fmt: skip
    if importlib.util.find_spec("pytest_split") is not None:
        result["note"] += "; " + _against_pytest_split(rounds, scratch, document, walls)
    return result


def _junit_total(path: Path) -> float:
    from xml.etree import ElementTree

    return sum(float(case.get("time") or 0) for case in ElementTree.parse(path).iter("testcase"))


def _against_pytest_split(rounds: int, scratch: Path, document: dict[str, Any],
                          walls: dict[str, list[float]]) -> str:  # fmt: skip
    """The same durations as a real pytest suite: fanout per test against pytest-split."""
    root = scratch / "pytest-suite"
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")  # not the repository's settings
    for path, tests in document["files"].items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        body = "".join(f"\ndef {test.split('::')[1]}():\n    time.sleep({document['tests'][test]})\n"
                       for test in tests)  # fmt: skip
        (root / path).write_text("import time\n" + body)
    environ = {**_environ(scratch), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
               "PATH": f"{Path(FANOUT).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    pytest = f"{sys.executable} -m pytest -p no:cacheprovider -q"
    split = f"{pytest} -p pytest_split.plugin --durations-path durations.json"

    def shell(line: str) -> float:
        return timed(["sh", "-c", line], env=environ, cwd=str(root))

    one = shell(f"{split} --junitxml=all.xml --store-durations")
    recipe = (f"{pytest} --collect-only | grep '::' | {FANOUT} run -q --shard {{i}}/{SHARDS} "
              f"-j {JOBS} -X --timings all.xml --output-dir out -- {pytest} {{{{}}}}")
    walls["pytest: fanout per test"], walls["pytest-split"] = [], []
    for number in range(rounds):  # alternating: each round the other tool goes first
        fanout, peer = [], []
        for i in range(1, SHARDS + 1):
            if number % 2:
                peer.append(shell(f"{split} --splits {SHARDS} --group {i}"))
            fanout.append(shell(recipe.format(i=i)))
            if not number % 2:
                peer.append(shell(f"{split} --splits {SHARDS} --group {i}"))
        walls["pytest: fanout per test"].append(max(fanout))
        walls["pytest-split"].append(max(peer))
    ours = statistics.median(walls["pytest: fanout per test"])
    theirs = statistics.median(walls["pytest-split"])
    return (f"real pytest (one process {one:.2f}s, ideal {one / SHARDS:.2f}s): fanout per test "
            f"{ours:.2f}s ({ours / (one / SHARDS):.2f} x ideal), pytest-split {theirs:.2f}s "
            f"({theirs / (one / SHARDS):.2f} x); fanout / pytest-split {ours / theirs:.2f}")
