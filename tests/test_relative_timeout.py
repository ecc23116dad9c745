"""--timeout P% (P percent of the median duration of the run's successes, once three
have; it moves, and holds attempts already running to it) and 0 as no limit for
--timeout, --deadline and a task's timeout (issue 19)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from fanout_cli.errors import TaskFileError
from fanout_cli.executors import AttemptPlan, TimeLimit
from fanout_cli.executors.process import timeout_reason
from fanout_cli.layers import OptionError, build_config
from fanout_cli.models import Attempt, TaskStatus
from fanout_cli.relative_limit import MedianLimit, RelativeTimeout, parse_percent
from fanout_cli.resume import kept_duration
from fanout_cli.sources.taskfile import parse_task_file
from tests import test_agent_unit as agent_unit
from tests.helpers import PARALLEL, Completed, needs_parallel, run_fanout, write_tasks

QUICK = "0.2"  # seconds a quick task sleeps
WELL_BEFORE = 10.0  # a task sleeping 30 s that a relative limit ends ends well before this


def details(run_dir: Path, seq: int) -> dict[str, Any]:
    [path] = run_dir.glob(f"{seq:04d}-*.json")
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def only_run() -> Path:
    [run_dir] = (Path("out")).iterdir()
    return run_dir


def run_timed(*args: str) -> tuple[Completed, float]:
    began = time.monotonic()
    completed = run_fanout("run", *args)
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed, time.monotonic() - began


# --- reading the value -----------------------------------------------------------------


@pytest.mark.parametrize(("text", "percent"), [("200%", 200.0), ("150.5%", 150.5),
                                               (" 300 % ", 300.0), ("100000%", 100000.0),
                                               (".5%", 0.5)])  # fmt: skip
def test_a_percentage_is_read(text: str, percent: float) -> None:
    assert parse_percent(text) == RelativeTimeout(percent)


@pytest.mark.parametrize("text", ["0%", "0.0%", "100001%", "-5%", "abc%", "1e3%", "%", "5%%"])
def test_a_bad_percentage_is_refused_with_the_range(text: str) -> None:
    with pytest.raises(ValueError, match=r"percentage") as caught:
        parse_percent(text)
    assert "\n" not in str(caught.value)


def test_the_manifest_keeps_a_percentage_that_a_resumed_run_reads_back() -> None:
    config = build_config({"timeout": "300%"})
    assert config.policy.timeout == RelativeTimeout(300.0)
    kept = config.document()["timeout"]
    assert kept == "300%"
    assert build_config({"timeout": json.loads(json.dumps(kept))}) == config


def test_a_fixed_timeout_stays_a_number_in_the_manifest() -> None:
    assert build_config({"timeout": "1m"}).document()["timeout"] == 60.0
    assert build_config({"timeout": "0"}).document()["timeout"] is None


def test_zero_on_the_command_line_lifts_the_task_files_run_limits() -> None:
    config = build_config({"timeout": "5m", "deadline": "1h"}, {"timeout": "0", "deadline": 0})
    assert (config.policy.timeout, config.policy.deadline) == (None, None)


def test_zero_percent_is_refused_by_name() -> None:
    with pytest.raises(OptionError, match=r"more than 0%") as caught:
        build_config({"timeout": "0%"})
    assert caught.value.name == "timeout"


# --- task files --------------------------------------------------------------------------


@pytest.mark.parametrize(("table", "line"), [("[defaults]\n", 4), ("[[task]]\ncmd = 'true'\n", 5)])
def test_a_percentage_in_a_tasks_timeout_is_refused_at_its_line(table: str, line: int) -> None:
    text = f"[run]\njobs = 2\n{table}timeout = '200%'\n"
    if table.startswith("[defaults]"):
        text += "[[task]]\ncmd = 'true'\n"
    with pytest.raises(TaskFileError) as caught:
        parse_task_file(text, "t.toml")
    message = str(caught.value)
    assert message.startswith(f"t.toml:{line}: "), message
    assert "whole run" in message and "[run]" in message and "--timeout" in message, message


def test_a_percentage_in_run_is_the_runs_timeout() -> None:
    parsed = parse_task_file("[run]\ntimeout = '250%'\n[[task]]\ncmd = 'true'\n", "t.toml")
    assert build_config(parsed.run_options).policy.timeout == RelativeTimeout(250.0)


def test_a_tasks_timeout_of_zero_lifts_the_defaults() -> None:
    parsed = parse_task_file(
        "[defaults]\ntimeout = '5s'\n[[task]]\nid = 'free'\ncmd = 'true'\ntimeout = 0\n"
        "[[task]]\nid = 'held'\ncmd = 'true'\n", "t.toml"
    )
    assert [(spec.task_id, spec.timeout) for spec in parsed.specs] == [("free", 0.0),
                                                                        ("held", 5.0)]


# --- the median and the scopes it moves ---------------------------------------------------


def test_the_median_is_none_until_three_succeed_then_exact() -> None:
    limit = MedianLimit(RelativeTimeout(200.0))
    seen = []
    for duration in (5.0, 1.0, 3.0, 10.0, 0.5):
        limit.add(duration)
        seen.append((limit.median(), limit.seconds()))
    assert seen == [(None, None), (None, None), (3.0, 6.0), (4.0, 8.0), (3.0, 6.0)]
    assert limit.rule() == {"percent": 200.0, "median": 3.0, "successes": 5}
    assert limit.describe() == "200% of the median"


def test_the_median_of_many_successes_is_the_sorted_middle() -> None:
    limit = MedianLimit(RelativeTimeout(100.0))
    durations = [(index * 7919) % 1009 / 100 for index in range(1, 2002)]
    for duration in durations:
        limit.add(duration)
    assert limit.median() == sorted(durations)[1000]


def test_a_held_scope_gets_the_limit_when_it_becomes_known_and_as_it_moves() -> None:
    async def main() -> list[float]:
        limit = MedianLimit(RelativeTimeout(300.0))
        deadlines = []
        with anyio.CancelScope() as scope:
            limit.hold(scope, 100.0)
            deadlines.append(scope.deadline)
            for duration in (1.0, 2.0, 3.0, 5.0, 7.0):
                limit.add(duration)
                deadlines.append(scope.deadline)
            limit.release(scope)
            limit.add(50.0)
            deadlines.append(scope.deadline)  # released: no longer moved
        return deadlines

    assert anyio.run(main) == [math.inf, math.inf, math.inf, 106.0, 107.5, 109.0, 109.0]


def test_a_straggler_started_first_is_ended_once_the_limit_is_known() -> None:
    """Its deadline is counted from its own start, so it is already past: at once."""

    async def main() -> tuple[bool, float]:
        limit = MedianLimit(RelativeTimeout(300.0))
        plan = AttemptPlan(1, 1, "out", "err", None, 1.0, frozenset({0}), limit=limit)
        began = anyio.current_time()
        async with anyio.create_task_group() as group:

            async def succeed_three() -> None:
                await anyio.sleep(0.1)
                for _ in range(3):
                    limit.add(0.01)

            group.start_soon(succeed_three)
            with TimeLimit(plan) as timer:
                timer.start()
                await anyio.sleep(30)
        return timer.expired, anyio.current_time() - began

    expired, took = anyio.run(main)
    assert expired and took < 5


def test_a_dask_timer_leaves_a_fixed_limit_to_the_worker() -> None:
    async def main() -> float:
        plan = AttemptPlan(1, 1, "out", "err", 5.0, 1.0, frozenset({0}))
        with TimeLimit(plan, fixed=False) as timer:
            timer.start()
        return timer.scope.deadline

    assert anyio.run(main) == math.inf


def test_an_agent_call_in_flight_is_held_to_the_limit_once_it_is_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent executor's timer (the first request on) moves with the median."""
    monkeypatch.setenv("FANOUT_TEST_KEY", agent_unit.KEY)
    server = agent_unit.Server(agent_unit.Reply(body=agent_unit.openai_body(), delay=30))
    limit = MedianLimit(RelativeTimeout(300.0))
    plan = replace(agent_unit.plan_of(tmp_path), limit=limit)

    async def main() -> Attempt:
        async with anyio.create_task_group() as group:

            async def succeed_three_once_asked() -> None:
                while not server.requests:
                    await anyio.sleep(0.01)
                for _ in range(3):
                    limit.add(0.1)

            group.start_soon(succeed_three_once_asked)
            [attempt] = await agent_unit._run_many(agent_unit.settings(), server,
                                                   [agent_unit.spec_of()], [plan])  # fmt: skip
        return attempt

    began = time.monotonic()
    attempt = anyio.run(main)
    assert time.monotonic() - began < 5
    assert attempt.status is TaskStatus.TIMEOUT
    assert attempt.reason == "timed out after 300ms (300% of the median)"
    assert (attempt.timeout, attempt.timeout_rule) == (0.3, limit.rule())


def test_the_reason_says_the_limit_and_its_rule() -> None:
    limit = MedianLimit(RelativeTimeout(200.0))
    for duration in (6.0, 6.25, 7.0):
        limit.add(duration)
    plan = AttemptPlan(1, 1, "out", "err", None, 1.0, frozenset({0}), limit=limit)
    assert timeout_reason(plan) == "timed out after 12.5s (200% of the median)"
    fixed = AttemptPlan(1, 1, "out", "err", 30.0, 1.0, frozenset({0}))
    assert timeout_reason(fixed) == "timed out after 30s"


# --- real runs -----------------------------------------------------------------------------


def test_three_quick_successes_then_a_long_task_times_out_well_before_it_ends() -> None:
    completed, took = run_timed("--timeout", "300%", "-j", "1", "--", "sleep", ":::",
                                QUICK, QUICK, QUICK, "30")  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert took < WELL_BEFORE, completed.stdout
    slow = details(only_run(), 4)
    assert slow["status"] == "timeout"
    assert slow["reason"].startswith("timed out after ") and slow["reason"].endswith(
        " (300% of the median)"), slow["reason"]  # fmt: skip
    [attempt] = slow["attempts"]
    rule = attempt["timeout_rule"]
    assert rule["percent"] == 300 and rule["successes"] == 3 and rule["median"] >= 0.2
    assert attempt["timeout"] == pytest.approx(3 * rule["median"], abs=0.002)
    assert attempt["duration_ms"] >= 600


def test_the_details_record_no_limit_until_three_have_succeeded() -> None:
    completed, _ = run_timed("--timeout", "1000%", "-j", "1", "--", "sleep", ":::",
                             "0.05", "0.05", "0.05", "0.05")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    run_dir = only_run()
    attempts = [details(run_dir, seq)["attempts"][0] for seq in (1, 2, 3, 4)]
    assert [a["timeout"] is None for a in attempts] == [True, True, True, False]
    assert [a["timeout_rule"]["successes"] for a in attempts] == [0, 1, 2, 3]
    assert attempts[0]["timeout_rule"] == {"percent": 1000, "median": None, "successes": 0}


def test_a_straggler_started_first_is_caught_once_three_others_succeeded() -> None:
    completed, took = run_timed("--timeout", "300%", "-j", "4", "--", "sleep", ":::",
                                "30", QUICK, QUICK, QUICK)  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert took < WELL_BEFORE, completed.stdout
    first = details(only_run(), 1)
    assert first["status"] == "timeout" and "(300% of the median)" in first["reason"]
    assert [details(only_run(), seq)["status"] for seq in (2, 3, 4)] == ["success"] * 3


def test_a_fixed_timeout_records_its_limit_and_no_rule() -> None:
    completed, _ = run_timed("--timeout", "200ms", "--", "sleep", ":::", "5")
    assert completed.returncode == 1
    [attempt] = details(only_run(), 1)["attempts"]
    assert (attempt["timeout"], attempt["timeout_rule"]) == (0.2, None)
    assert attempt["reason"] == "timed out after 200ms"


LIMITED = """\
[run]
timeout = "200ms"
deadline = "300ms"

[[task]]
id = "naps"
cmd = "sleep 0.6"
"""


def test_timeout_0_and_deadline_0_lift_the_task_files_limits(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.toml", LIMITED)
    held, _ = run_timed(str(tasks))
    assert held.returncode == 1, held.stdout  # the control: the file's limits hold
    free, _ = run_timed(str(tasks), "--timeout", "0", "--deadline", "0", "--run-id", "free")
    assert free.returncode == 0, free.stdout + free.stderr
    [attempt] = details(Path("out/free"), 1)["attempts"]
    assert (attempt["status"], attempt["timeout"]) == ("success", None)


def test_a_tasks_timeout_0_lifts_the_runs_for_that_task(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.toml", """\
[defaults]
timeout = "200ms"

[[task]]
id = "free"
cmd = "sleep 0.6"
timeout = 0

[[task]]
id = "held"
cmd = "sleep 5"
""")
    completed, took = run_timed(str(tasks))
    assert completed.returncode == 1 and took < WELL_BEFORE
    run_dir = only_run()
    assert [details(run_dir, seq)["status"] for seq in (1, 2)] == ["success", "timeout"]


# --- --resume -------------------------------------------------------------------------------

GATED = "if [ {} = slow ]; then test -e go || exit 3; exec sleep 30; fi; sleep " + QUICK


def test_a_resumed_run_seeds_the_median_with_the_kept_successes() -> None:
    first, _ = run_timed("--timeout", "300%", "-j", "1", "--run-id", "r", "--", GATED,
                         ":::", "a", "b", "c", "slow")  # fmt: skip
    assert first.returncode == 1, first.stdout  # slow failed at once: no limit needed
    Path("go").touch()
    resumed, took = run_timed("--resume-failed", "r")  # the saved options: 300%
    assert took < WELL_BEFORE, resumed.stdout
    slow = details(Path("out/r"), 4)
    assert slow["status"] == "timeout", slow["reason"]
    assert slow["attempts"][-1]["timeout_rule"]["successes"] == 3


def test_a_kept_retried_success_counts_its_last_attempt_only() -> None:
    flaky = "test -e {}.once || { touch {}.once; exit 1; }; sleep " + QUICK
    completed, _ = run_timed("--retries", "1", "--retry-delay", "2s", "--run-id", "k", "--",
                             flaky, ":::", "a")  # fmt: skip
    assert completed.returncode == 0, completed.stdout
    [row] = json.loads(Path("out/k/manifest.json").read_text())["tasks"]
    assert row["attempts"] == 2 and row["duration_ms"] >= 1000  # the back-off counts there
    duration = kept_duration(row, Path("out/k"))
    assert duration is not None and 0.2 <= duration < 0.9
    assert kept_duration({"duration_ms": 1500, "attempts": 1}, Path("out/k")) == 1.5


# --- GNU parallel as the oracle ---------------------------------------------------------


def gnu_parallel(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    home = tmp_path / "gnu-home"
    home.mkdir(exist_ok=True)
    assert PARALLEL is not None
    began = time.monotonic()
    completed = subprocess.run([PARALLEL, *args], capture_output=True, text=True, timeout=60,
                               env={**os.environ, "HOME": str(home)}, check=False)  # fmt: skip
    return completed, time.monotonic() - began


@needs_parallel
def test_both_end_a_straggler_started_first_once_three_others_succeeded(tmp_path: Path) -> None:
    args = ("-j", "4", "--timeout", "300%", "sleep", ":::", "30", QUICK, QUICK, QUICK)
    gnu, gnu_took = gnu_parallel(tmp_path, *args)
    assert gnu.returncode == 1 and "timed out" in gnu.stderr and gnu_took < WELL_BEFORE
    ours, took = run_timed(*args[:4], "--", *args[4:])
    assert ours.returncode == 1 and took < WELL_BEFORE
    assert details(only_run(), 1)["status"] == "timeout"


@needs_parallel
def test_unlike_gnu_parallel_no_limit_applies_before_three_successes(tmp_path: Path) -> None:
    """GNU parallel's limit applies from the first success; issue 19 fixes three, so
    that one or two quick tasks do not time out every task of normal length."""
    args = ("-j", "3", "--timeout", "300%", "sleep", ":::", "1.5", QUICK, QUICK)
    gnu, _ = gnu_parallel(tmp_path, *args)
    assert gnu.returncode == 1 and "timed out" in gnu.stderr
    ours, _ = run_timed(*args[:4], "--", *args[4:])
    assert ours.returncode == 0, ours.stdout
