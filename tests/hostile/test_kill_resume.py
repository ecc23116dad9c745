"""kill -9 at a random moment, then `--resume`, again and again: every task ends with
exactly one final result, its output whole, whatever moment the run was killed at."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import FANOUT, output_dir, read_manifest, run_fanout

TASKS = 24


def _start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(FANOUT), "run", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_at(process: subprocess.Popen[bytes], seconds: float) -> None:
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()


def _began(run_dir: Path) -> bool:
    """Whether a task of the run started (its journal says so)."""
    journal = run_dir / "journal.jsonl"
    return journal.is_file() and b'"event": "task_started"' in journal.read_bytes()


def _ended(run_dir: Path) -> dict[int, list[dict[str, object]]]:
    """task_ended events by seq; a torn last line (killed mid-write) is skipped, as
    every reader of the journal does."""
    ended: dict[int, list[dict[str, object]]] = {}
    for line in (run_dir / "journal.jsonl").read_bytes().splitlines(keepends=True):
        if not line.endswith(b"\n"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event["event"] == "task_ended":
            ended.setdefault(event["seq"], []).append(event)
    return ended


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kill_9_and_resume_until_done_gives_every_task_one_result(seed: int) -> None:
    chance = random.Random(seed)
    values = [f"{n}:{chance.choice(['0', '0.02', '0.05', '0.1'])}" for n in range(1, TASKS + 1)]
    # Words without a shell: the value reaches `sh -c` as $0, one argument.
    script = 'sleep "${0#*:}"; printf "%s\\n" "$0"'
    command = ["-j", "4", "--", "sh", "-c", script, "{}", ":::", *values]
    runs: list[Path] = []
    # Until a kill lands after a task began: one landing earlier leaves no run to resume
    # (an empty folder, or a task list not yet whole, which --resume RUN alone refuses).
    for earliest in (0.05, 0.3, 0.6, 1.0, 2.0):
        first = _start(*command)
        _kill_at(first, chance.uniform(earliest, earliest + 0.5))
        runs = [path for path in output_dir().glob("*") if _began(path)]
        if runs:
            break
    assert len(runs) == 1, runs
    run_dir = runs[0]
    for _ in range(6):  # resume, killed again at random, until a resume finishes
        resumed = _start("--resume", run_dir.name)
        _kill_at(resumed, chance.uniform(0.1, 0.8))
        if resumed.returncode == 0:
            break
        time.sleep(0.05)
    final = run_fanout("run", "--resume", run_dir.name, timeout=60)
    assert final.returncode == 0, final.stderr
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "finished"
    rows = manifest["tasks"]
    assert sorted(row["seq"] for row in rows) == list(range(1, TASKS + 1))
    assert all(row["status"] == "success" for row in rows), rows
    for row in rows:
        stdout = (run_dir / str(row["details_file"]).replace(".json", ".stdout")).read_text()
        assert stdout == values[row["seq"] - 1] + "\n", (row, stdout)
    # The journal: a success is final, so no task succeeded twice.
    for seq, events in _ended(run_dir).items():
        successes = [event for event in events if event["status"] == "success"]
        assert len(successes) <= 1, (seq, events)
