"""The planner (plan.py), the resume matcher (resume.ResumeBook) and the shard planner
(timings), as functions: no child process, no terminal; a run folder only where the
function reads one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fanout_cli.errors import UsageError
from fanout_cli.models import Prior, TaskSpec, TaskStatus
from fanout_cli.options import AGENT_KEYS, RUN_KEYS
from fanout_cli.plan import RunRequest, plan_run
from fanout_cli.resume import ResumeBook
from fanout_cli.shards import shard_from_environment
from fanout_cli.shards.split import ordered, plan_shards
from fanout_cli.sources import SourceRequest
from fanout_cli.sources.inputs import InputList
from fanout_cli.timings import Timings
from fanout_cli.values import Shard


def request(
    *values: str,
    command: tuple[str, ...] = ("echo", "{}"),
    environ: dict[str, str] | None = None,
    **options: object,
) -> RunRequest:
    return RunRequest(
        source=SourceRequest(command=command, inputs=(InputList(values=values),)),
        run_options={name: options.get(name) for name in RUN_KEYS},
        agent_options={name: None for name in AGENT_KEYS},
        environ={} if environ is None else environ,
    )


def spec(seq: int, task_id: str, command: tuple[str, ...] = ("true",)) -> TaskSpec:
    return TaskSpec(seq=seq, task_id=task_id, command=command, origin=f"test:{seq}")


# --- the planner -----------------------------------------------------------------------


def test_a_plan_of_values_has_one_task_per_value_in_order(tmp_path: Path) -> None:
    plan = plan_run(request("a", "b", "c"))
    assert [s.task_id for s in plan.source.specs()] == ["a", "b", "c"]
    assert [s.command for s in plan.source.specs()] == [("echo", "a"), ("echo", "b"),
                                                        ("echo", "c")]  # fmt: skip
    assert plan.resume is None and plan.agents is None and plan.split is None
    assert plan.title == "fanout run -- echo {} ::: (3 values)"


def test_the_output_dir_comes_from_the_environment_passed_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FANOUT_OUTPUT_DIR", str(tmp_path / "from-os-environ"))
    plan = plan_run(request("a", environ={"FANOUT_OUTPUT_DIR": "from-request"}))
    assert plan.config.output.output_dir == "from-request"
    assert plan_run(request("a", environ={})).config.output.output_dir == ".cache/agent-outputs"


def test_the_command_line_wins_over_the_task_files_run_table(tmp_path: Path) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text('[run]\njobs = 3\ntimeout = "1m"\n[[task]]\ncmd = ["true"]\n')
    wanted = RunRequest(
        source=SourceRequest(taskfile=str(path)),
        run_options={name: {"jobs": "5"}.get(name) for name in RUN_KEYS},
        agent_options={name: None for name in AGENT_KEYS},
        environ={},
    )
    config = plan_run(wanted).config
    assert (config.policy.jobs, config.policy.timeout) == (5, 60.0)


def test_a_bad_option_value_names_the_flag() -> None:
    with pytest.raises(UsageError, match=r"^--min-success-ratio: expected a ratio"):
        plan_run(request("a", min_success_ratio="2"))


def test_a_shard_from_the_environment_splits_the_tasks() -> None:
    plan = plan_run(request("a", "b", "c", "d", environ={"FANOUT_SHARD": "2/2"}))
    assert plan.config.sharding.shard == "2/2"
    assert plan.split is not None and plan.split.plans is not None and len(plan.split.plans) == 2
    assert sorted(s.task_id for s in plan.source.specs()) == sorted(
        t.task_id for t in plan.split.plans[1].tasks)
    assert plan.title.endswith("[shard 2/2]")


def test_agent_options_on_process_tasks_are_refused() -> None:
    wanted = request("a")
    wanted = RunRequest(wanted.source, wanted.run_options,
                        {**wanted.agent_options, "model": "m"}, environ={})  # fmt: skip
    with pytest.raises(UsageError, match=r"^--model: only for agent tasks"):
        plan_run(wanted)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"FANOUT_SHARD": "3/4"}, (Shard(3, 4), "FANOUT_SHARD")),
        ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "3"},
         (Shard(1, 3), "CI_NODE_INDEX/CI_NODE_TOTAL")),
        ({"CIRCLE_NODE_INDEX": "0", "CIRCLE_NODE_TOTAL": "2"},
         (Shard(1, 2), "CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL")),
        ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "1"}, None),  # one node: not sharded
    ],
)  # fmt: skip
def test_shard_from_environment(
    environ: dict[str, str], expected: tuple[Shard, str] | None
) -> None:
    assert shard_from_environment(environ) == expected


def test_a_ci_node_index_outside_its_range_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"CI_NODE_INDEX=5 is outside 1\.\.3"):
        shard_from_environment({"CI_NODE_INDEX": "5", "CI_NODE_TOTAL": "3"})


# --- the resume matcher ----------------------------------------------------------------


def prior(task: TaskSpec, status: TaskStatus, **row: object) -> Prior:
    return Prior({"seq": task.seq, "task_id": task.task_id, "key": task.key,
                  "status": str(status), **row}, offset=0)  # fmt: skip


def book(*priors: Prior, rerun_failed: bool = False) -> ResumeBook:
    resume = ResumeBook(rerun_failed)
    for item in priors:
        resume.by_key.setdefault(item.row["key"], []).append(item)
        resume.used_seqs.add(item.seq)
    return resume


def test_a_finished_task_stands_and_a_failed_one_stands_unless_asked() -> None:
    done, failed = spec(1, "done"), spec(2, "failed")
    priors = (prior(done, TaskStatus.SUCCESS), prior(failed, TaskStatus.FAILURE))
    resume = book(*priors)
    assert isinstance(resume.classify(done)[0], Prior)
    assert isinstance(resume.classify(failed)[0], Prior)
    again = book(*priors, rerun_failed=True)
    assert isinstance(again.classify(done)[0], Prior)
    assert again.classify(failed)[0] == failed
    assert again.summary() == {"kept": 1, "rerun": 1, "added": 0}


def test_a_task_cancelled_by_a_signal_always_runs_again() -> None:
    task = spec(1, "a")
    resume = book(prior(task, TaskStatus.CANCELLED, interrupted="SIGINT"))
    assert resume.classify(task)[0] == task


def test_tasks_match_by_key_not_position_and_new_tasks_get_new_numbers() -> None:
    first, second = spec(1, "a"), spec(2, "b")
    resume = book(prior(first, TaskStatus.SUCCESS), prior(second, TaskStatus.SUCCESS))
    edited = spec(1, "b")  # the list was reordered: b first
    kept, numbered = resume.classify(edited)
    assert isinstance(kept, Prior) and numbered.seq == 2
    added = spec(2, "c")  # a new task whose number an earlier task had
    item, numbered = resume.classify(added)
    assert item == numbered and numbered.seq == 3
    assert resume.summary() == {"kept": 1, "rerun": 0, "added": 1}


def test_a_changed_command_is_a_new_task() -> None:
    old = spec(1, "a", ("echo", "old"))
    resume = book(prior(old, TaskStatus.SUCCESS))
    changed = spec(1, "a", ("echo", "new"))
    item, numbered = resume.classify(changed)
    assert item == numbered and numbered.seq == 2


def test_repeated_keys_match_the_nth_earlier_result() -> None:
    one, two = spec(1, "x"), spec(2, "x")
    resume = book(prior(one, TaskStatus.SUCCESS), prior(two, TaskStatus.FAILURE),
                  rerun_failed=True)  # fmt: skip
    assert isinstance(resume.classify(spec(1, "x"))[0], Prior)
    item, numbered = resume.classify(spec(2, "x"))
    assert not isinstance(item, Prior) and numbered.seq == 2


def test_a_book_loads_the_latest_result_of_each_task_from_the_journal(tmp_path: Path) -> None:
    task = spec(1, "a")
    rows = [
        {"event": "task_ended", "seq": 1, "key": task.key, "task_id": "a", "status": "failure"},
        {"event": "task_ended", "seq": 1, "key": task.key, "task_id": "a", "status": "success"},
    ]
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows)
                                            + '{"event": "task_en')  # torn by a crash
    resume = ResumeBook.load(tmp_path, rerun_failed=True)
    kept = resume.classify(task)[0]
    assert isinstance(kept, Prior) and kept.status is TaskStatus.SUCCESS


# --- timings and shards ----------------------------------------------------------------


def test_estimates_are_the_85th_percentile_and_the_median_for_unknown_tasks() -> None:
    timings = Timings()
    for seconds in (1.0, 2.0, 3.0, 4.0, 100.0):
        timings.record("slow", "success", seconds)
    timings.record("fast", "success", 1.0)
    timings.record("cancelled", "cancelled", 50.0)  # did not run to an end: not a duration
    estimates = timings.estimates([spec(1, "slow"), spec(2, "fast"), spec(3, "new"),
                                   spec(4, "cancelled")])  # fmt: skip
    assert estimates["slow"] == 100.0 and estimates["fast"] == 1.0
    assert estimates["new"] == estimates["cancelled"] == 50.5  # median of the known


def test_shards_are_disjoint_cover_every_task_and_ignore_input_order() -> None:
    specs = [spec(n, f"t{n}") for n in range(1, 11)]
    estimates = {s.task_id: float(n) for n, s in enumerate(specs, 1)}
    plans = plan_shards(specs, estimates, 3)
    assert sorted(t.seq for p in plans for t in p.tasks) == list(range(1, 11))
    assert max(p.estimate for p in plans) - min(p.estimate for p in plans) <= 1
    shuffled = plan_shards(list(reversed(specs)), estimates, 3)
    assert [[t.task_id for t in p.tasks] for p in shuffled] == [
        [t.task_id for t in p.tasks] for p in plans
    ]


def test_orders_longest_first_and_failed_first() -> None:
    specs = [spec(1, "a"), spec(2, "b"), spec(3, "c")]
    estimates = {"a": 1.0, "b": 3.0, "c": 2.0}
    timings = Timings()
    timings.record("a", "failure", 1.0)
    assert [s.task_id for s in ordered(specs, "input", estimates, timings)] == ["a", "b", "c"]
    assert [s.task_id for s in ordered(specs, "longest-first", estimates, timings)] == [
        "b", "c", "a"]  # fmt: skip
    assert [s.task_id for s in ordered(specs, "failed-first", estimates, timings)] == [
        "a", "b", "c"]  # fmt: skip
