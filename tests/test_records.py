"""End to end: what a run records. A scorer's failure is on record and best-of-n does not
pass on no score when scores were asked for (issue 17, part 4); every path a details
file names exists, every file of a run folder is 0600 whatever the kind of task, and
agent token usage is totalled in the manifest, the JSON envelope and the AOP METRICS
line, kept results included on --resume (part 5)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fake_llm import (
    FakeLLM,
    Reply,
    Usage,
    fake_llm_fixture,  # noqa: F401 -- the `fake_llm` fixture, found by pytest by name
    go_offline,
    invalid_api_key,
    server_error,
)
from tests.helpers import (
    Completed,
    assert_clean,
    assert_every_named_path_exists_private,
    details_by_id,
    manifest_rows,
    output_dir,
    run_fanout,
    write_tasks,
)

BEST = ("run", "--strategy", "best-of-n", "--format", "json")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    go_offline(monkeypatch)


def fanout(server: FakeLLM | None, *args: str, **env: str) -> Completed:
    base = server.env() if server is not None else {}
    completed = run_fanout(*args, env={**base, "FANOUT_OUTPUT_DIR": str(output_dir()), **env})
    assert_clean(completed)
    return completed


def envelope(completed: Completed) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


# --- part 4: scoring --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scorer", "error"),
    [
        pytest.param("false", "exit 1", id="non-zero-exit"),
        pytest.param("no-such-scorer-17", "exit 127 (command not found): ", id="missing-program"),
        pytest.param("echo 'not a number'; echo oops >&2; true", "printed no number: not a number",
                     id="no-number"),
    ],
)
def test_a_broken_scorer_is_recorded_and_best_of_n_fails(scorer: str, error: str) -> None:
    completed = fanout(None, *BEST, "--scorer", scorer, "--", "echo", ":::", "1", "2", "3")
    assert completed.returncode == 1, completed.stdout
    verdict = envelope(completed)["verdict"]
    assert verdict["passed"] is False and verdict["winner"] is None
    assert verdict["reason"].startswith(
        f"no task has a score (3 of 3 succeeded; the scorer failed for 3 tasks: {error}"
    ), verdict["reason"]
    record = details_by_id(completed, "2")
    assert record["score"] is None
    assert record["scorer"]["command"] == scorer
    assert record["scorer"]["error"].startswith(error)
    if "missing" in scorer or "no-such" in scorer:
        assert record["scorer"]["exit_code"] == 127
        assert "no-such-scorer-17" in record["scorer"]["stderr"]
    shown = fanout(None, "show", "last", "2")
    assert f"scorer failed: {error}" in shown.stdout
    journal = (completed.run_dir / "journal.jsonl").read_text()
    assert '"scorer_error": "' + error in journal  # --resume counts it from there


def test_a_scorer_that_times_out_is_recorded() -> None:
    """The timeout path of the scorer, at unit level (60 s end to end is too long)."""
    import anyio

    from fanout_cli.scorer import run_scorer

    scored = anyio.run(run_scorer, "sleep 5; echo", Path("x.json"), 0.2)
    assert scored.score is None
    assert scored.record == {"command": "sleep 5; echo", "exit_code": None, "stderr": "",
                             "error": "timed out after 200ms"}  # fmt: skip


def test_a_scorer_failing_for_some_tasks_is_named_in_a_passing_verdict() -> None:
    scorer = Path("rate.sh")
    scorer.write_text('grep -q \'"input": "2"\' "$1" && exit 3; echo 7\n')
    completed = fanout(None, *BEST, "--scorer", "sh rate.sh", "--", "echo", ":::", "1", "2")
    assert completed.returncode == 0, completed.stdout
    verdict = envelope(completed)["verdict"]
    assert verdict["winner"] == {"task_id": "1", "score": 7.0}
    assert verdict["reason"] == (
        "1 wins with score 7 (2 of 2 succeeded; the scorer failed for 1 task)"
    )
    assert details_by_id(completed, "1")["scorer"] == {
        "command": "sh rate.sh", "exit_code": 0, "stderr": "", "error": None,
    }  # fmt: skip
    assert details_by_id(completed, "2")["scorer"]["error"] == "exit 3"


def test_a_score_regex_matching_no_task_fails_best_of_n() -> None:
    completed = fanout(None, *BEST, "--score", r"score=(\d+)", "--", "echo", ":::", "a", "b")
    assert completed.returncode == 1
    verdict = envelope(completed)["verdict"]
    assert verdict["passed"] is False
    assert verdict["reason"] == (
        "no task has a score (2 of 2 succeeded; --score REGEX matched no successful task's output)"
    )


def test_best_of_n_without_asked_for_scores_still_passes_naming_no_score() -> None:
    """No --score and no --scorer: [AOP:SCORE] is optional, the first success wins."""
    completed = fanout(None, *BEST, "--", "echo", ":::", "a", "b")
    assert completed.returncode == 0
    assert envelope(completed)["verdict"]["reason"] == "a wins with no score (2 of 2 succeeded)"


# --- part 5: every named path exists, 0600 everywhere ------------------------------------


STUB_LLM = """\
import sys
print("stub says: " + sys.argv[-1])
"""


def stub_llm(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    path = bin_dir / "llm"
    path.write_text(f"#!{sys.executable}\n{STUB_LLM}")
    path.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


MIXED = """\
[agent]
model = "m"
retries = 0

[[task]]
id = "process"
cmd = "echo out; echo err >&2"

[[task]]
id = "process-retried"
cmd = "echo again >&2; exit 3"
retries = 1

[[task]]
id = "agent-ok"
kind = "agent"
prompt = "Say ok"

[[task]]
id = "agent-refused"
kind = "agent"
prompt = "Say refused"

[[task]]
id = "agent-failing"
kind = "agent"
prompt = "Say failing"
retries = 1

[[task]]
id = "agent-cli"
kind = "agent-cli"
tool = "llm"
prompt = "Say cli"
"""


def test_every_path_a_details_file_names_exists_and_is_0600(
    fake_llm: FakeLLM, tmp_path: Path, open_umask: None
) -> None:
    fake_llm.script_for("Say refused", invalid_api_key())
    fake_llm.script_for("Say failing", server_error(500), server_error(500))
    write_tasks(Path("tasks.toml"), MIXED)
    completed = fanout(fake_llm, "run", "tasks.toml", "--retry-delay", "0", **stub_llm(tmp_path))
    assert completed.returncode == 1
    assert {task: row["status"] for task, row in manifest_rows(completed).items()} == {
        "process": "success", "process-retried": "failure", "agent-ok": "success",
        "agent-refused": "failure", "agent-failing": "failure", "agent-cli": "success",
    }  # fmt: skip
    assert len(details_by_id(completed, "agent-failing")["attempts"]) == 2
    assert_every_named_path_exists_private(completed.run_dir)


# --- part 5: token totals ---------------------------------------------------------------


SAY = ("run", "--prompt", "Say {}", "--model", "m")


def test_token_usage_is_totalled_in_the_manifest_envelope_and_metrics(fake_llm: FakeLLM) -> None:
    fake_llm.script_for("Say a", Reply("a", usage=Usage(100, 7)))
    fake_llm.script_for("Say b", Reply("b", usage=Usage(20, 3)))
    fake_llm.script_for("Say c", Reply("c", usage=None))  # the server said nothing
    fake_llm.script_for("Say d", Reply("d", usage=Usage(5, None)))  # half of it
    fake_llm.script_for("Say e", invalid_api_key())  # no reply: no tokens, not unknown
    completed = fanout(fake_llm, *SAY, "--format", "json", ":::", *"abcde")
    assert completed.returncode == 1
    expected = {"input_tokens": 125, "output_tokens": 10, "total_tokens": 135, "tasks": 5,
                "unknown": 2}  # fmt: skip
    assert envelope(completed)["tokens"] == expected
    assert completed.manifest()["tokens"] == expected
    assert details_by_id(completed, "c")["agent"]["usage"] is None

    aop = fanout(fake_llm, *SAY, "--format", "aop", "--run-id", "aop", ":::", "a")
    metrics = next(line for line in aop.stdout.splitlines() if line.startswith("[AOP:METRICS]"))
    assert metrics.endswith(
        "input_tokens: 12, output_tokens: 3, total_tokens: 15, tokens_unknown: 0"
    ), metrics


def test_a_run_without_agent_tasks_has_no_token_totals() -> None:
    completed = fanout(None, "run", "--format", "aop", "--", "echo", ":::", "a")
    assert "tokens" not in completed.stdout
    assert completed.manifest()["tokens"] is None
    document = envelope(fanout(None, "run", "--format", "json", "--run-id", "j", "--", "echo",
                               ":::", "a"))  # fmt: skip
    assert document["tokens"] is None


def test_resumed_totals_include_the_kept_results(fake_llm: FakeLLM) -> None:
    fake_llm.script_for("Say a", Reply("a", usage=Usage(10, 1)))
    fake_llm.script_for("Say b", invalid_api_key(), Reply("b", usage=Usage(30, 4)))
    first = fanout(fake_llm, *SAY, "--run-id", "first", ":::", "a", "b")
    assert first.returncode == 1
    assert first.manifest()["tokens"]["input_tokens"] == 10
    again = fanout(fake_llm, "run", "--resume-failed", "first", "--format", "json")
    assert again.returncode == 0, again.stderr
    expected = {"input_tokens": 40, "output_tokens": 5, "total_tokens": 45, "tasks": 2,
                "unknown": 0}  # fmt: skip
    assert envelope(again)["tokens"] == expected
    assert again.manifest()["tokens"] == expected


def test_an_agent_reduce_counts_in_the_totals_and_a_kept_one_on_resume(fake_llm: FakeLLM) -> None:
    """The reduce's call is the run's spend too: it counts as one more call, and a
    reduce kept by --resume (its input unchanged) is counted again from reduce.json."""
    fake_llm.script_for("Answer", Reply("one", usage=Usage(10, 2)))
    fake_llm.script_for("Combine", Reply("combined", usage=Usage(50, 9)))
    completed = fanout(fake_llm, "run", "--prompt", "Answer {}", "--model", "m", "--run-id",
                       "r", "--reduce-prompt", "Combine {outputs}", ":::", "q")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    expected = {"input_tokens": 60, "output_tokens": 11, "total_tokens": 71, "tasks": 2,
                "unknown": 0}  # fmt: skip
    assert completed.manifest()["tokens"] == expected
    assert_every_named_path_exists_private(completed.run_dir)
    assert (completed.run_dir / "reduce.stderr").is_file()  # reduce.json names it
    again = fanout(fake_llm, "run", "--resume", "r")
    assert again.returncode == 0, again.stderr
    assert again.manifest()["reduce"]["kept"] is True
    assert again.manifest()["tokens"] == expected


def test_merge_totals_the_runs_tokens_and_keeps_a_scorers_rule(fake_llm: FakeLLM) -> None:
    fake_llm.script_for("Say a", Reply("a", usage=Usage(10, 1)))
    fake_llm.script_for("Say b", Reply("b", usage=None))
    assert fanout(fake_llm, *SAY, "--run-id", "one", ":::", "a").returncode == 0
    assert fanout(fake_llm, *SAY, "--run-id", "two", ":::", "b").returncode == 0
    merged = fanout(None, "merge", "one", "two", "--format", "json")
    assert merged.returncode == 0, merged.stderr
    expected = {"input_tokens": 10, "output_tokens": 1, "total_tokens": 11, "tasks": 2,
                "unknown": 1}  # fmt: skip
    assert envelope(merged)["tokens"] == expected

    assert fanout(None, *BEST, "--scorer", "false", "--run-id", "s1", "--", "echo", ":::",
                  "x").returncode == 1  # fmt: skip
    remerged = fanout(None, "merge", "s1", "--format", "json")
    assert remerged.returncode == 1
    assert envelope(remerged)["verdict"]["reason"] == (
        "no task has a score (1 of 1 succeeded; the scorer failed for 1 task: exit 1)"
    )
