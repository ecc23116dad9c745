"""The shard planner (fanout_cli/shards/split.py) and the estimates it plans from
(fanout_cli/timings.py): -j inside a shard, tasks never seen, start-up cost."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from fanout_cli.models import TaskSpec
from fanout_cli.shards.split import list_schedule, longest_first, plan_shards
from fanout_cli.timings import MIN_ESTIMATE, Timings, load_timings, program_of
from tests.helpers import one_error_line, run_fanout


def spec(seq: int, task_id: str, command: tuple[str, ...] = ("true",)) -> TaskSpec:
    return TaskSpec(seq, task_id, command, f"test:{seq}")


def specs_of(count: int) -> list[TaskSpec]:
    return [spec(n, f"t{n}") for n in range(1, count + 1)]


def test_a_list_schedule_is_a_sliding_window_not_a_sum() -> None:
    assert list_schedule([4.0, 1.0, 1.0, 1.0, 1.0], 2) == 4.0
    assert list_schedule([1.0, 1.0, 1.0, 1.0, 4.0], 2) == 6.0  # the long one starts last
    assert list_schedule([3.0, 3.0, 2.0], 1) == 8.0
    assert list_schedule([], 4) == 0.0
    assert list_schedule([5.0], 8) == 5.0


def test_a_shard_is_planned_on_its_slots() -> None:
    # 8 shards' worth of work on 2 shards of 4 slots: each shard's estimate is its
    # makespan on 4 slots, a quarter of its work, not the work itself.
    specs = specs_of(16)
    estimates = {s.task_id: 1.0 for s in specs}
    plans = plan_shards(specs, estimates, 2, slots=4)
    assert [len(plan.tasks) for plan in plans] == [8, 8]
    assert [plan.estimate for plan in plans] == [2.0, 2.0]
    assert [plan.work for plan in plans] == [8.0, 8.0]
    assert all(len(slot) == 2 for plan in plans for slot in plan.slots)


def test_slots_change_the_plan_where_a_sum_would_not() -> None:
    # One 6 s task and six 1 s tasks, 2 shards of 2 slots. By sums (slots=1) the long
    # task's shard gets nothing else: 6 s against 6 s of small ones. On 2 slots the
    # long task's shard also takes small tasks on its other slot; both end by 6 s
    # and the other shard ends at 2 s rather than 3 s.
    specs = [spec(1, "long"), *(spec(n, f"s{n}") for n in range(2, 8))]
    estimates = {"long": 6.0, **{f"s{n}": 1.0 for n in range(2, 8)}}
    by_sum = plan_shards(specs, estimates, 2, slots=1)
    assert sorted(len(p.tasks) for p in by_sum) == [1, 6]
    on_slots = plan_shards(specs, estimates, 2, slots=2)
    assert max(p.estimate for p in on_slots) == 6.0
    assert sorted(len(p.tasks) for p in on_slots) == [3, 4]
    assert min(p.estimate for p in on_slots) == 2.0


def test_equal_estimates_spread_over_the_shards_before_filling_one() -> None:
    specs = specs_of(10)
    plans = plan_shards(specs, {s.task_id: 1.0 for s in specs}, 2, slots=2)
    assert [len(p.tasks) for p in plans] == [5, 5]


def test_tasks_timed_at_zero_still_spread_by_count() -> None:
    # JUnit reports time many tests at 0.000 s: without a floor they all land on the
    # first slot (it stays least loaded).
    specs = specs_of(400)
    timings = Timings(junit={f"t{n}": 0.0 for n in range(1, 401)})
    estimates = timings.estimates(specs)
    assert min(estimates.values()) == MIN_ESTIMATE
    plans = plan_shards(specs, estimates, 4, slots=2)
    assert [len(p.tasks) for p in plans] == [100, 100, 100, 100]
    assert all(len(slot) == 50 for plan in plans for slot in plan.slots)


def test_a_task_never_seen_is_estimated_at_the_median_not_zero() -> None:
    timings = Timings()
    for task_id, seconds in (("a", 1.0), ("b", 3.0), ("c", 8.0)):
        timings.record(task_id, "success", seconds)
    estimates = timings.estimates([spec(1, "a"), spec(2, "b"), spec(3, "c"), spec(4, "new")])
    assert estimates["new"] == 3.0


def test_the_plan_does_not_depend_on_the_input_order() -> None:
    rng = random.Random(7)
    specs = specs_of(60)
    estimates = {s.task_id: rng.choice([0.1, 0.5, 2.0, 7.5]) for s in specs}
    plans = plan_shards(specs, estimates, 3, slots=2)
    shuffled = list(specs)
    rng.shuffle(shuffled)
    again = plan_shards(shuffled, estimates, 3, slots=2)
    assert [[t.task_id for t in p.tasks] for p in plans] == [
        [t.task_id for t in p.tasks] for p in again]  # fmt: skip


def test_skewed_shards_end_near_the_ideal() -> None:
    rng = random.Random(3)
    specs = specs_of(300)
    estimates = {s.task_id: rng.paretovariate(1.5) for s in specs}
    plans = plan_shards(specs, estimates, 4, slots=2)
    ideal = max(sum(estimates.values()) / 8, *estimates.values())
    assert max(p.estimate for p in plans) <= 1.05 * ideal
    assert sorted(t.seq for p in plans for t in p.tasks) == list(range(1, 301))


def test_an_estimate_in_the_plan_follows_the_order_the_shard_starts_in() -> None:
    specs = [spec(1, "a"), spec(2, "b"), spec(3, "c")]
    estimates = {"a": 1.0, "b": 1.0, "c": 4.0}
    longest = plan_shards(specs, estimates, 1, slots=2)
    as_given = plan_shards(specs, estimates, 1, slots=2,
                           order=lambda tasks: sorted(tasks, key=lambda t: t.seq))
    assert longest[0].estimate == 4.0 and as_given[0].estimate == 5.0
    assert [s.task_id for s in longest_first(specs, estimates)] == ["c", "a", "b"]


def test_junit_estimates_pay_their_programs_start_up() -> None:
    timings = Timings(junit={"tests/test_a.py": 2.0})
    timings.record_startup("pytest", 1.5)
    timings.record_startup("pytest", 2.5)
    timings.record_startup("pytest", 9.0)
    timings.record("tests/test_b.py", "success", 4.0)  # a fanout duration: wall time
    specs = [spec(1, "tests/test_a.py", ("pytest", "tests/test_a.py")),
             spec(2, "tests/test_b.py", ("pytest", "tests/test_b.py"))]  # fmt: skip
    assert timings.startup_estimate("pytest") == 2.5
    assert timings.estimates(specs) == {"tests/test_a.py": 4.5, "tests/test_b.py": 4.0}
    assert timings.estimates(specs, startup=False)["tests/test_a.py"] == 2.0


def test_a_test_history_kept_under_its_junit_name_is_found_by_node_id() -> None:
    timings = Timings()
    for seconds in (0.2, 0.4):
        timings.record("tests.test_x.TestA::test_b[1]", "success", seconds)
    assert timings.known("tests/test_x.py::TestA::test_b[1]") == 0.4


@pytest.mark.parametrize(("command", "program"), [
    (("pytest", "-q"), "pytest"), (("/usr/bin/python3", "-m", "pytest"), "python3"),
    ("go test ./... -run X", "go"), ("", ""), ((), ""),
])  # fmt: skip
def test_program_of(command: tuple[str, ...] | str, program: str) -> None:
    assert program_of(command) == program


def test_start_up_samples_survive_a_timings_file(tmp_path: Path) -> None:
    timings = Timings()
    timings.record("a", "success", 1.0)
    for seconds in range(25):
        timings.record_startup("pytest", float(seconds))
    path = tmp_path / "timings.json"
    path.write_text(json.dumps(timings.document()))
    again = load_timings(str(path))
    assert again.startup["pytest"] == [float(s) for s in range(5, 25)]  # the newest 20
    assert again.durations == {"a": [1.0]}
    merged = Timings()
    merged.merge(again)
    merged.merge(again)
    assert len(merged.startup["pytest"]) == 20


def test_an_empty_timings_value_is_named_as_given() -> None:
    completed = run_fanout("run", "--shard", "1/2", "--timings", "", "--", "true", ":::", "a")
    assert one_error_line(completed, no_run_folder=True) == (
        "fanout: error: --timings: expected a file name or a list of them, got ''")


REPORT = """<?xml version="1.0"?>
<testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.test_x.TestA" name="test_b[1]" time="0.40"/>
<testcase classname="tests.test_x" name="test_c" time="1.25"><failure message="no"/></testcase>
<testcase name="bare" time="0.05"/>
</testsuite></testsuites>
"""


def test_a_junit_timings_file_keeps_each_testcase_for_the_next_pipeline(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    report.write_text(REPORT)
    timings = load_timings(str(report))
    assert timings.known("tests/test_x.py::TestA::test_b[1]") == 0.4
    tasks = timings.document()["tasks"]
    assert tasks["tests.test_x.TestA::test_b[1]"] == {"durations": [0.4], "last_status": "success"}
    assert tasks["tests.test_x::test_c"] == {"durations": [1.25], "last_status": "failure"}
    assert tasks["bare"]["durations"] == [0.05]


def test_merge_timings_out_keeps_what_a_junit_timings_file_gave(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    report.write_text(REPORT)
    ran = run_fanout("run", "-q", "--output-dir", str(tmp_path / "runs"), "--", "true", ":::", "a")
    assert ran.returncode == 0, ran.stderr
    out = tmp_path / "timings.json"
    merged = run_fanout("merge", "-q", str(tmp_path / "runs"), "--output-dir", str(tmp_path / "m"),
                        "--timings", str(report), "--timings-out", str(out))  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    tasks = json.loads(out.read_text())["tasks"]
    assert tasks["tests.test_x.TestA::test_b[1]"]["durations"] == [0.4]
    assert set(tasks) >= {"a", "tests.test_x::test_c", "bare"}
