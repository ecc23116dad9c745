"""End to end: an agent reduce (--reduce-prompt, or [reduce] kind = "agent") against
FakeLLM, a real HTTP server on 127.0.0.1: the prompt it receives ({results}, {outputs}
in input order, the note of what max_bytes cut, {verdict}), what it records, and what
a failed call does to the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_llm import (
    FakeLLM,
    Reply,
    fake_llm_fixture,  # noqa: F401 -- the `fake_llm` fixture, found by pytest by name
    invalid_api_key,
)
from tests.helpers import Completed, assert_clean, output_dir, run_fanout, write_tasks

# a sleeps longest, so tasks end out of input order; b fails (its output is not given).
TASK = ("sh", "-c", 'case "$1" in a) sleep 0.4;; b) sleep 0.2;; esac; '
        'printf "finding of %s\\nsecond line of %s\\n" "$1" "$1"; test "$1" != b', "sh", "{}")
PROMPT = "Results:\n{results}\nOutputs:\n{outputs}\nVerdict: {verdict}\nBraces: {{x}}"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "FANOUT_PROVIDER", "FANOUT_MODEL",
                 "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def fanout(server: FakeLLM, *args: str) -> Completed:
    completed = run_fanout(*args, env={**server.env(), "FANOUT_OUTPUT_DIR": str(output_dir())})
    assert_clean(completed)
    return completed


def prompts(server: FakeLLM) -> list[str]:
    return [r.prompt for r in server.requests if r.prompt is not None]


def test_the_prompt_has_results_outputs_in_order_and_the_verdict(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply("The synthesis.\nIn two lines."))
    completed = fanout(fake_llm, "run", "-j", "3", "--strategy", "partial-success",
                       "--reduce-prompt", PROMPT, "--model", "synth", "--",
                       *TASK, ":::", "a", "b", "c")
    assert completed.returncode == 0, completed.stderr
    (prompt,) = prompts(fake_llm)
    assert prompt == (
        "Results:\n"
        "- success a: second line of a\n"
        "- failure b: second line of b (exit 1)\n"
        "- success c: second line of c\n"
        "Outputs:\n"
        '<output task="a">\nfinding of a\nsecond line of a\n</output>\n'
        '<output task="c">\nfinding of c\nsecond line of c\n</output>\n'
        "Verdict: pass (partial-success: 2 of 3 succeeded (needed 1))\n"
        "Braces: {x}"
    )
    (request,) = [r for r in fake_llm.requests if r.prompt is not None]
    assert request.body["model"] == "synth"
    assert (completed.run_dir / "reduce.stdout").read_text() == "The synthesis.\nIn two lines."
    assert completed.stdout.endswith("The synthesis.\nIn two lines.\n")
    details = completed.details("reduce.json")
    assert details["kind"] == "agent" and details["status"] == "success"
    assert details["agent"]["model"] == "synth" and details["agent"]["text"].startswith("The")
    assert details["prompt"] == prompt
    assert completed.manifest()["reduce"]["summary"].startswith("The synthesis.")


def test_outputs_are_capped_by_max_bytes_with_a_note(fake_llm: FakeLLM, tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "t.toml", """
[agent]
model = "tasks-model"

[reduce]
kind = "agent"
prompt = "{outputs}"
model = "reduce-model"
system = "You synthesise."
temperature = 0
max_tokens = 99
max_bytes = 40

[[task]]
id = "one"
cmd = ["sh", "-c", "printf '%030d\\\\n' 1"]

[[task]]
id = "two"
cmd = ["sh", "-c", "printf '%030d\\\\n' 2"]

[[task]]
id = "three"
cmd = ["sh", "-c", "printf 'third\\\\n'"]

[[task]]
id = "four"
cmd = ["sh", "-c", "printf 'fourth\\\\n'"]
""")
    completed = fanout(fake_llm, "run", "-j", "1", str(tasks))
    assert completed.returncode == 0, completed.stderr
    (prompt,) = prompts(fake_llm)
    assert prompt == (
        '<output task="one">\n' + "0" * 29 + "1\n</output>\n"
        '<output task="two">\n' + "0" * 9 + "\n</output>\n"
        "[fanout: {outputs} is capped at max_bytes = 40: two cut after 9 of 31 bytes; "
        "2 more outputs (13 bytes) left out]"
    )
    (request,) = [r for r in fake_llm.requests if r.prompt is not None]
    assert request.body["model"] == "reduce-model"
    assert request.body["messages"][0] == {"role": "system", "content": "You synthesise."}
    assert (request.body["temperature"], request.body["max_tokens"]) == (0, 99)


def test_a_failed_call_fails_the_run(fake_llm: FakeLLM) -> None:
    fake_llm.script(invalid_api_key())
    completed = fanout(fake_llm, "run", "--reduce-prompt", "{results}", "--model", "m",
                       "--", "echo", ":::", "a")
    assert completed.returncode == 1
    entry = completed.manifest()["reduce"]
    assert entry["status"] == "failure"
    assert "the reduce failed: " in completed.manifest()["verdict"]["reason"]
    assert "401" in completed.manifest()["verdict"]["reason"]


def test_agent_tasks_and_an_agent_reduce_share_the_settings(fake_llm: FakeLLM) -> None:
    fake_llm.script_for("Answer q", Reply("answer 1"), Reply("answer 2"))
    fake_llm.script_for("Combine", Reply("combined"))
    completed = fanout(fake_llm, "run", "-j", "1", "--prompt", "Answer {}", "--model", "m",
                       "--reduce-prompt", "Combine:\n{outputs}", ":::", "q1", "q2")
    assert completed.returncode == 0, completed.stderr
    assert prompts(fake_llm)[-1] == ('Combine:\n<output task="q1">\nanswer 1\n</output>\n'
                                     '<output task="q2">\nanswer 2\n</output>')
    assert completed.stdout.endswith("\ncombined\n")


def test_dry_run_names_the_call(fake_llm: FakeLLM) -> None:
    completed = fanout(fake_llm, "run", "--dry-run", "--reduce-prompt", "Sum up {outputs}",
                       "--model", "m", "--", "echo", ":::", "a")
    assert completed.stdout.splitlines()[-1] == (
        "# then, when the verdict passes, the reduce: one agent call (provider openai, model m,"
        " {outputs} capped at 65536 bytes): Sum up {outputs}")
    assert fake_llm.requests == []


def test_an_agent_reduce_with_no_model_is_exit_2_before_any_task(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    completed = run_fanout("run", "--reduce-prompt", "{results}", "--base-url",
                           "http://127.0.0.1:9/v1", "--", "touch", str(marker), ":::", "a")
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        "fanout: error: the reduce cannot run: no model: set --model, model in [agent] or the "
        "task, or FANOUT_MODEL"]
    assert not marker.exists()


def test_the_research_example_runs_against_a_fake_server(fake_llm: FakeLLM) -> None:
    """examples/research/tasks.toml, pointed at FakeLLM: five calls, then one reduce
    call given every finding in input order (tests/test_agent_real.py: a real model)."""
    example = Path(__file__).resolve().parent.parent / "examples" / "research" / "tasks.toml"
    fake_llm.script_for("Five researchers", Reply("Paris matters."))
    completed = fanout(fake_llm, "run", str(example), "--base-url", fake_llm.openai_url, "-q")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "Paris matters.\n"
    synthesis = prompts(fake_llm)[-1]
    angles = ["history", "geography", "economy", "culture", "politics"]
    findings = [f'<output task="{angle}">\necho: Why is Paris an important city? Answer in two '
                f"short sentences, looking only at its {angle}.\n</output>" for angle in angles]
    assert "\n".join(findings) in synthesis
    assert "- success politics: echo: Why is Paris" in synthesis
    assert completed.details("reduce.json")["agent"]["request"]["body"]["messages"][0] == {
        "role": "system", "content": "You write short, plain summaries."}
