"""End to end: `fanout merge` proves that the shard runs it merges covered the plan's
tasks exactly once, from the plan record (plan.json) each shard run writes.

The first test is the issue's scenario on examples/ci-sharding (real pytest): shard
1 planned without timings, shards 2-4 with them, so one test file never ran and one
ran twice. The others use `echo` tasks and fixed timings files, for speed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    Completed,
    fanout_in_background,
    run_fanout,
    wait_until,
)
from tests.test_sharding import run_all

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Fixed durations: with them, shard 1 of 4 on 2 slots holds test_auth.py and
# test_api.py, and test_config.py is in shard 2; planned by count (no timings), shard 1
# holds test_api.py and test_config.py.
EXAMPLE_SECONDS = {"auth": 9.0, "config": 8.0, "billing": 7.0, "cli": 6.0, "api": 5.0,
                   "models": 3.0, "search": 2.0, "utils": 1.0}  # fmt: skip


def timings_file(path: Path, seconds: Mapping[str, float]) -> Path:
    tasks = {task: {"durations": [value], "last_status": "success"}
             for task, value in seconds.items()}  # fmt: skip
    path.write_text(json.dumps({"fanout_timings_version": 1, "tasks": tasks}))
    return path


def problem_lines(completed: Completed) -> list[str]:
    """The lines of a human merge between the `merged ...` lines and the verdict."""
    return [line for line in completed.stdout.splitlines()[:-1] if not line.startswith("merged ")]


@pytest.mark.slow
def test_the_issue_scenario_fails_naming_the_missing_and_twice_run_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's commands: a shard that got no timings plans another split than the
    rest. Merge used to pass (7 of 7 succeeded); now its verdict fails and says why."""
    example = tmp_path / "ci-sharding"
    shutil.copytree(EXAMPLES / "ci-sharding", example)
    monkeypatch.chdir(example)
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    timings = timings_file(example / "timings.json",
                           {f"tests/test_{name}.py": s for name, s in EXAMPLE_SECONDS.items()})
    calls = [(["run", "tasks.toml", "--shard", "1/4", "--output-dir", "now/1", "-q"], None, env)]
    calls += [(["run", "tasks.toml", "--shard", f"{i}/4", "--timings", str(timings),
                "--output-dir", f"now/{i}", "-q"], None, env) for i in (2, 3, 4)]  # fmt: skip
    assert [completed.returncode for completed in run_all(calls)] == [0, 0, 0, 0]

    merged = run_fanout("merge", "now/", env=env)
    assert merged.returncode == 1, merged.stdout + merged.stderr
    verdict = merged.stdout.splitlines()[-1]
    assert verdict.startswith("FAIL all-succeed: 7 of 7 succeeded; coverage not proven: "
                              "shards planned differently, 1 task never ran, "
                              "1 task ran in two shards · "), verdict  # fmt: skip
    lines = problem_lines(merged)
    assert "never ran: tests/test_auth.py" in lines
    assert "ran in two shards: tests/test_config.py (1/4, 2/4)" in lines
    plans = [line for line in lines if line.startswith("plans differ: ")]
    assert len(plans) == 1, lines
    assert "shard 1/4 planned from sha256:" in plans[0]
    assert "shards 2/4, 3/4, 4/4 from sha256:" in plans[0]
    assert "different estimates (7 of 8 tasks" in plans[0]
    assert "1/4 knew the durations of 0 of 8 tasks, 2/4 of 8" in plans[0]


# --- echo tasks -------------------------------------------------------------------------


def echo_tasks(path: Path, ids: Sequence[str]) -> Path:
    lines = [f'[[task]]\nid = "{task}"\ncmd = ["echo", "{task}"]\n' for task in ids]
    path.write_text("\n".join(lines))
    return path


def shard_call(tasks: Path, index: int, total: int, *options: str) -> list[str]:
    return ["run", str(tasks), "-q", "--shard", f"{index}/{total}",
            "--output-dir", f"runs/{index}", *options]  # fmt: skip


def run_shards(
    tasks: Path, total: int, options: Mapping[int, Sequence[str]] | None = None
) -> list[Completed]:
    calls = [(shard_call(tasks, index, total, *(options or {}).get(index, ())), None, None)
             for index in range(1, total + 1)]  # fmt: skip
    completed = run_all(calls)
    for shard in completed:
        assert shard.returncode == 0, shard.stderr
    return completed


def merge_json(*names: str) -> tuple[Completed, dict[str, Any]]:
    completed = run_fanout("merge", "--format", "json", *names)
    assert "Traceback" not in completed.stderr, completed.stderr
    document: dict[str, Any] = json.loads(completed.stdout)
    return completed, document


IDS = [f"t{number}" for number in range(1, 9)]


def test_shards_that_plan_alike_pass_and_their_merge_records_the_plan(tmp_path: Path) -> None:
    tasks = echo_tasks(tmp_path / "tasks.toml", IDS)
    even = timings_file(tmp_path / "even.json", dict.fromkeys(IDS, 1.0))
    run_shards(tasks, 4, {index: ["--timings", str(even)] for index in range(1, 5)})
    completed, document = merge_json("runs/")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stderr == ""
    assert document["verdict"]["reason"] == "8 of 8 succeeded"
    assert "problems" not in document["verdict"]
    merged = Path(document["details_dir"])
    plan = json.loads((merged / "plan.json").read_text())
    assert plan["shard"] is None and plan["shards"] == 4
    assert [unit["id"] for unit in plan["units"]] == IDS
    header = json.loads((merged / "manifest.json").read_text())
    assert header["plan"] == {"fingerprint": plan["fingerprint"], "shard": None, "units": 8}


def even_timings(tmp_path: Path, ids: Sequence[str] = IDS) -> list[str]:
    return ["--timings", str(timings_file(tmp_path / "even.json", dict.fromkeys(ids, 1.0)))]


def run_dir_of(shard: int) -> Path:
    (found,) = (Path("runs") / str(shard)).iterdir()
    return found.absolute()


def test_a_shard_run_again_is_not_two_shards_and_merged_runs_merge_again(tmp_path: Path) -> None:
    """A CI job run again: the newest run of the shard counts. Merges of half the
    shards (each failing: shards missing, no task named) merge again into a whole."""
    tasks = echo_tasks(tmp_path / "tasks.toml", IDS)
    timings = even_timings(tmp_path)
    run_shards(tasks, 4, dict.fromkeys(range(1, 5), timings))
    again = run_fanout(*shard_call(tasks, 2, 4, *timings))
    assert again.returncode == 0, again.stderr
    completed, document = merge_json("runs/")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert document["verdict"]["reason"] == "8 of 8 succeeded"

    halves = []
    for shards in ((1, 2), (3, 4)):
        half, merged = merge_json(*(f"runs/{index}" for index in shards))
        assert half.returncode == 1
        assert merged["verdict"]["reason"].endswith(
            f"shards {shards[1] % 4 + 1}/4, {(shards[1] + 1) % 4 + 1}/4 missing"
        ), merged["verdict"]
        assert "problems" not in merged["verdict"]  # their tasks are the missing shards'
        halves.append(merged["details_dir"])
    whole, merged = merge_json(*halves)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert merged["verdict"]["reason"] == "8 of 8 succeeded"
    assert whole.stderr == ""


def test_an_edited_list_and_another_j_are_told_apart(tmp_path: Path) -> None:
    tasks = echo_tasks(tmp_path / "tasks.toml", IDS)
    longer = echo_tasks(tmp_path / "longer.toml", [*IDS, "t9"])
    timings = even_timings(tmp_path, [*IDS, "t9"])
    calls = [(shard_call(tasks, 1, 2, *timings), None, None),
             (shard_call(longer, 2, 2, *timings), None, None)]  # fmt: skip
    assert [shard.returncode for shard in run_all(calls)] == [0, 0]
    completed = run_fanout("merge", "runs/")
    assert completed.returncode == 1
    (plans,) = [line for line in problem_lines(completed) if line.startswith("plans differ")]
    assert plans.endswith(": a different task list (8 vs 9 tasks; only in 2/2's: t9)"), plans

    shutil.rmtree("runs")
    calls = [(shard_call(tasks, 1, 2, *timings, "-j", "1"), None, None),
             (shard_call(tasks, 2, 2, *timings, "-j", "2"), None, None)]  # fmt: skip
    assert [shard.returncode for shard in run_all(calls)] == [0, 0]
    completed = run_fanout("merge", "runs/")
    assert completed.returncode == 1
    (plans,) = [line for line in problem_lines(completed) if line.startswith("plans differ")]
    assert plans.startswith("plans differ: shard 1/2 planned from sha256:")
    assert plans.endswith(": a different -j (1 vs 2)"), plans
    # The merged run keeps each shard's fingerprint: merged again, it still fails.
    merged = next(line for line in completed.stdout.splitlines() if line.startswith("FAIL"))
    again = run_fanout("merge", merged.rsplit(" · ", 1)[1].rsplit("/", 1)[0])
    assert again.returncode == 1, again.stdout + again.stderr
    assert again.stderr == ""
    (plans,) = [line for line in problem_lines(again) if line.startswith("plans differ")]
    assert plans.endswith(": as a merged run's record says"), plans


def test_an_interrupted_shard_names_the_tasks_that_never_ran(tmp_path: Path) -> None:
    """Planned by count, shard 1 of 2 holds a and c; on one slot it starts a (which
    sleeps) and is stopped before c starts."""
    tasks = tmp_path / "tasks.toml"
    tasks.write_text("".join(f'[[task]]\nid = "{task}"\ncmd = "{command}"\n'
                             for task, command in (("a", "sleep 30"), ("b", "true"),
                                                   ("c", "true"), ("d", "true"))))  # fmt: skip
    with fanout_in_background(*shard_call(tasks, 1, 2, "-j", "1")) as busy:
        wait_until(lambda: "task_started" in "".join(
            path.read_text() for path in Path("runs/1").glob("*/journal.jsonl")),
            "the long task to start", timeout=15)  # fmt: skip
        busy.send_signal(signal.SIGINT)
        assert busy.wait(timeout=10) == 130
    other = run_fanout(*shard_call(tasks, 2, 2, "-j", "1"))
    assert other.returncode == 0, other.stderr
    completed = run_fanout("merge", "runs/")
    assert completed.returncode == 1
    verdict = completed.stdout.splitlines()[-1]
    interrupted = f"run {run_dir_of(1).name} was interrupted"
    assert f"{interrupted}; coverage not proven: 1 task never ran · " in verdict
    assert "never ran: c" in problem_lines(completed)
