"""End to end: the installed `fanout` running agent tasks against FakeLLM on 127.0.0.1.

The child gets an environment from `server.env()` plus the per-test output folder, so
every request goes to the fake; the real providers' https URLs are routed to a closed
local port (HTTPS_PROXY), so a mistake can never reach the network either. Checks read
what users and scripts depend on: exit codes, the run folder (details `agent` record,
manifest, journal) and what the fake server received. Timing checks compare arrival
times the fake recorded with the schedule a wrong implementation would produce."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.fake_llm import (
    Behaviour,
    Drop,
    FakeLLM,
    Hold,
    Recorded,
    Reply,
    Slow,
    Status,
    Usage,
    fake_llm_fixture,  # noqa: F401 -- the `fake_llm` fixture, found by pytest by name
    go_offline,
    insufficient_quota,
    invalid_api_key,
    last_user_text,
    overloaded,
    rate_limited,
    server_error,
)
from tests.helpers import (
    Completed,
    details_by_id,
    manifest_rows,
    output_dir,
    read_journal,
    run_fanout,
    wait_until,
    write_tasks,
)

TASKS = "tasks.toml"
SECRET = "sk-local-e2e-5f1c9d0b7a3e"
OTHER_SECRET = "sk-openai-meant-for-api-openai-com"
COMPLETION_PATHS = ("/v1/chat/completions", "/v1/messages")
SAY = ("run", "--prompt", "Say {}", "--model", "m")  # OpenAI-compatible via OPENAI_BASE_URL


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    go_offline(monkeypatch, "LOCAL_KEY")


# --- running fanout -------------------------------------------------------------------


def child_env(server: FakeLLM | None, **extra: str) -> dict[str, str]:
    base = server.env() if server is not None else {}
    return {**base, "FANOUT_OUTPUT_DIR": str(output_dir()), **extra}


def fanout(server: FakeLLM | None, *args: str, **env: str) -> Completed:
    completed = run_fanout(*args, env=child_env(server, **env))
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed


@contextlib.contextmanager
def in_background(server: FakeLLM, *args: str, **env: str) -> Iterator[Future[Completed]]:
    """fanout in a thread while the test drives the fake (answers held requests)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(run_fanout, *args, env=child_env(server, **env), timeout=30)


def run_file_contains(name: str, text: str) -> Callable[[], bool]:
    """A file of the (one) run in progress holds `text` yet."""

    def check() -> bool:
        paths = output_dir().glob(f"*/{name}")
        return any(text in path.read_text(errors="replace") for path in paths)

    return check


# --- reading results ------------------------------------------------------------------


def statuses(completed: Completed) -> dict[str, str]:
    return {task_id: row["status"] for task_id, row in manifest_rows(completed).items()}


def agent_record(completed: Completed, task_id: str) -> dict[str, Any]:
    record: dict[str, Any] = details_by_id(completed, task_id)["agent"]
    return record


def completions(server: FakeLLM) -> list[Recorded]:
    return [r for r in server.requests if r.path in COMPLETION_PATHS]


def most_in_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    return max((sum(1 for t in ordered if start <= t < start + window) for start in ordered),
               default=0)


def established_client_ports(server_port: int) -> set[int]:
    """Remote ports of the server's connections still ESTABLISHED (/proc/net/tcp)."""
    ports: set[int] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if int(local.split(":")[1], 16) == server_port and state == "01":
            ports.add(int(remote.split(":")[1], 16))
    return ports


def files_holding(folder: Path, secret: str) -> list[Path]:
    return [
        path for path in folder.rglob("*")
        if path.is_file() and secret.encode() in path.read_bytes()
    ]  # fmt: skip


def toml(text: str, **values: str) -> str:
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    write_tasks(Path(TASKS), text)
    return TASKS


def assert_usage_error(completed: Completed, *fragments: str) -> None:
    assert completed.returncode == 2, (completed.stdout, completed.stderr)
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fanout: error: "), completed.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert completed.stdout == ""
    assert not completed.run_dirs(), "nothing may start"


# --- 1. OpenAI-compatible calls -------------------------------------------------------


def test_prompt_values_become_openai_calls_with_full_agent_records(fake_llm: FakeLLM) -> None:
    # --base-url alone sends no key (tests/test_agent_keys.py): name the variable.
    completed = fanout(
        fake_llm, "run", "--prompt", "Say {}", "--base-url", fake_llm.openai_url,
        "--api-key-env", "OPENAI_API_KEY", "--model", "m", ":::", "a", "b", "c",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert statuses(completed) == {"a": "success", "b": "success", "c": "success"}
    assert {r.prompt for r in completions(fake_llm)} == {"Say a", "Say b", "Say c"}
    for value, row in manifest_rows(completed).items():
        assert row["summary"] == f"echo: Say {value}"
        record = details_by_id(completed, value)
        assert record["kind"] == "agent" and record["prompt"] == f"Say {value}"
        assert (completed.run_dir / record["stdout"]["path"]).read_text() == f"echo: Say {value}"
        agent = record["agent"]
        assert agent["provider"] == "openai" and agent["api"] == "openai"
        assert agent["request"]["url"] == f"{fake_llm.openai_url}/chat/completions"
        assert agent["request"]["headers"]["authorization"] == "***"
        assert agent["request"]["body"] == {
            "model": "m", "messages": [{"role": "user", "content": f"Say {value}"}],
        }  # fmt: skip
        assert agent["model"] == "m" and agent["text"] == f"echo: Say {value}"
        assert agent["finish_reason"] == "stop"
        assert agent["usage"] == {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}
        assert agent["rate_limit"]["x-ratelimit-limit-requests"] == "60"
        assert "x-ratelimit-remaining-requests" in agent["rate_limit"]
        assert agent["response"]["choices"][0]["message"]["content"] == f"echo: Say {value}"
        assert [e["status"] for e in agent["exchanges"]] == [200]
    assert all(r.headers["authorization"] == "Bearer sk-fake" for r in completions(fake_llm))
    assert files_holding(output_dir(), "sk-fake") == []
    ended = [e for e in read_journal(completed.run_dir) if e["event"] == "task_ended"]
    assert sorted((e["task_id"], e["kind"], e["status"]) for e in ended) == [
        ("a", "agent", "success"), ("b", "agent", "success"), ("c", "agent", "success"),
    ]  # fmt: skip


def test_usage_counts_the_server_left_out_stay_null(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply("partial", usage=Usage(input_tokens=5, output_tokens=None)))
    completed = fanout(fake_llm, *SAY, ":::", "a")
    assert completed.returncode == 0, completed.stderr
    usage = agent_record(completed, "a")["usage"]
    assert usage == {"input_tokens": 5, "output_tokens": None, "total_tokens": None}


TASK_FILE = """\
[run]
jobs = 4

[agent]
provider = "local"
model = "base-model"
system = "Answer in one word."
temperature = 0.5
max_tokens = 64

[agent.providers.local]
api = "openai"
base_url = "{url}"
api_key_env = "LOCAL_KEY"

[[task]]
id = "prime-{}"
kind = "agent"
prompt = "Is {} a prime?"
foreach = ["7", "9"]

[[task]]
id = "capital"
kind = "agent"
prompt = "Capital of France?"
model = "other-model"
system = "Be terse."
temperature = 1.5
max_tokens = 8
"""


def test_task_file_agent_tables_providers_and_per_task_overrides() -> None:
    with FakeLLM(api_key=SECRET) as server:  # answers 401 to any other key
        server.script_for("Capital", Reply("Paris"))
        completed = fanout(
            server, "run", toml(TASK_FILE, url=server.openai_url),
            LOCAL_KEY=SECRET, OPENAI_API_KEY=OTHER_SECRET,
        )  # fmt: skip
        sent = {r.prompt: r for r in completions(server)}
    assert completed.returncode == 0, completed.stderr
    assert statuses(completed) == {"prime-7": "success", "prime-9": "success", "capital": "success"}
    for number in ("7", "9"):
        assert sent[f"Is {number} a prime?"].body == {
            "model": "base-model",
            "messages": [
                {"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": f"Is {number} a prime?"},
            ],
            "max_tokens": 64,
            "temperature": 0.5,
        }
    assert sent["Capital of France?"].body == {
        "model": "other-model",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Capital of France?"},
        ],
        "max_tokens": 8,
        "temperature": 1.5,
    }
    assert {r.headers["authorization"] for r in sent.values()} == {f"Bearer {SECRET}"}
    assert manifest_rows(completed)["capital"]["summary"] == "Paris"
    record = agent_record(completed, "capital")
    assert record["provider"] == "local" and record["base_url"] == server.openai_url
    assert record["request"]["headers"]["authorization"] == "***"
    assert record["model"] == "other-model"
    providers = completed.manifest()["options"]["agent"]["providers"]
    assert providers["local"]["api_key_env"] == "LOCAL_KEY"
    for secret in (SECRET, OTHER_SECRET):
        assert files_holding(output_dir(), secret) == []
        assert secret not in completed.stdout + completed.stderr


# --- 2. Anthropic ---------------------------------------------------------------------


def test_anthropic_builtin_via_anthropic_base_url(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply("Bonjour"))
    completed = fanout(
        fake_llm, "run", "--provider", "anthropic", "--model", "claude-x",
        "--system", "Be brief.", "--prompt", "Greet {}", ":::", "Ann",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    (request,) = completions(fake_llm)
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-fake"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.body == {
        "model": "claude-x",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Greet Ann"}],
        "max_tokens": 1024,
    }
    record = agent_record(completed, "Ann")
    assert record["api"] == "anthropic" and record["text"] == "Bonjour"
    assert record["request"]["headers"]["x-api-key"] == "***"
    assert record["usage"] == {"input_tokens": 12, "output_tokens": 3, "total_tokens": None}
    assert record["finish_reason"] == "end_turn"
    assert "anthropic-ratelimit-requests-remaining" in record["rate_limit"]
    assert manifest_rows(completed)["Ann"]["summary"] == "Bonjour"
    assert files_holding(output_dir(), "sk-ant-fake") == []


def test_anthropic_named_provider_from_the_task_file() -> None:
    text = """\
[agent]
provider = "claude"
model = "claude-y"
max_tokens = 50

[agent.providers.claude]
api = "anthropic"
base_url = "{url}"
api_key_env = "LOCAL_KEY"

[[task]]
id = "q"
kind = "agent"
prompt = "Hi"
system = "You are terse."
"""
    with FakeLLM(api_key=SECRET) as server:
        completed = fanout(server, "run", toml(text, url=server.anthropic_url), LOCAL_KEY=SECRET)
        (request,) = completions(server)
    assert completed.returncode == 0, completed.stderr
    assert request.headers["x-api-key"] == SECRET
    assert request.body == {
        "model": "claude-y", "system": "You are terse.",
        "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 50,
    }  # fmt: skip
    assert agent_record(completed, "q")["usage"]["total_tokens"] is None
    assert files_holding(output_dir(), SECRET) == []


# --- 3. HTTP errors, retries and the run-wide pause -----------------------------------

PAUSES = {
    # name: (provider, the slowing-down answer, the least pause it must cause)
    "429 retry-after": ("openai", rate_limited(retry_after=1), 1.0),
    "429 retry-after-ms": ("openai", rate_limited(retry_after=None, retry_after_ms=1200), 1.2),
    "529 overloaded": ("anthropic", overloaded(), 0.5),  # back-off alone: 0.5-1 s
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(PAUSES))
def test_a_slow_down_answer_pauses_every_task_of_the_run(fake_llm: FakeLLM, case: str) -> None:
    provider, answer, least_pause = PAUSES[case]
    let_a_answer, let_others_answer = threading.Event(), threading.Event()
    # a's 429 waits until b, c and d are in flight, so that every later arrival was sent
    # after the client saw it; b, c and d are answered once the client has noted it.
    fake_llm.script_for("Say a", Hold(let_a_answer, then=answer))
    for value in "bcd":
        fake_llm.script_for(f"Say {value}", Hold(let_others_answer))
    args = [*SAY, "--provider", provider, "-j", "4", ":::", *"abcdefgh"]
    try:
        with in_background(fake_llm, *args) as run:
            fake_llm.wait_for_requests(4)
            let_a_answer.set()
            wait_until(run_file_contains("0001-a.stderr", "request 1: HTTP"), "a's first answer")
            let_others_answer.set()
            completed = run.result()
    finally:
        let_a_answer.set()
        let_others_answer.set()
    assert completed.returncode == 0, completed.stderr
    assert set(statuses(completed).values()) == {"success"}
    sent = completions(fake_llm)
    (slowed,) = [r for r in sent if r.status != 200]
    assert slowed.prompt == "Say a" and slowed.answered_at is not None
    later = [r for r in sent if r.received_at > slowed.answered_at]
    assert sorted(r.prompt or "" for r in later) == [f"Say {v}" for v in "aefgh"]
    earliest = min(r.received_at for r in later) - slowed.answered_at
    assert earliest >= least_pause - 0.02, f"a request came {earliest:.3f}s into the pause"
    exchanges = agent_record(completed, "a")["exchanges"]
    assert [e["status"] for e in exchanges] == [slowed.status, 200]
    assert exchanges[0]["error"].startswith(f"HTTP {slowed.status}: ")
    if case != "529 overloaded":
        assert exchanges[0]["retry_after_s"] == least_pause
    assert exchanges[1]["waited_s"] >= least_pause - 0.05
    assert len(details_by_id(completed, "a")["attempts"]) == 1  # retried inside the attempt


def test_a_500_is_retried_inside_the_attempt(fake_llm: FakeLLM) -> None:
    fake_llm.script(server_error(500), Reply("fine"))
    completed = fanout(fake_llm, *SAY, ":::", "a")
    assert completed.returncode == 0, completed.stderr
    assert [r.status for r in completions(fake_llm)] == [500, 200]
    record = agent_record(completed, "a")
    assert [e["status"] for e in record["exchanges"]] == [500, 200]
    assert record["text"] == "fine" and manifest_rows(completed)["a"]["summary"] == "fine"
    assert "request 1: HTTP 500" in (completed.run_dir / "0001-a.stderr").read_text()


def test_retries_run_out_then_the_task_fails_naming_the_status(fake_llm: FakeLLM) -> None:
    text = '[agent]\nmodel = "m"\nretries = 1\n\n[[task]]\nid = "q"\nkind = "agent"\nprompt = "Q"\n'
    fake_llm.script(server_error(502), server_error(503))
    completed = fanout(fake_llm, "run", toml(text))
    assert completed.returncode == 1
    assert [r.status for r in completions(fake_llm)] == [502, 503]
    row = manifest_rows(completed)["q"]
    assert row["status"] == "failure"
    assert details_by_id(completed, "q")["reason"].startswith("HTTP 503: ")
    assert "HTTP 503" in row["summary"]


@pytest.mark.parametrize(
    "answer, reason",
    [
        (invalid_api_key(), "HTTP 401: Incorrect API key provided"),
        (insufficient_quota(), "HTTP 429: You exceeded your current quota"),
        (Status(400, message="Unsupported value: temperature"),
         "HTTP 400: Unsupported value: temperature"),
    ],
    ids=["401", "insufficient_quota", "400"],
)
def test_errors_that_cannot_succeed_are_asked_once(
    fake_llm: FakeLLM, answer: Status, reason: str
) -> None:
    fake_llm.script(answer, Reply("must not be reached"))
    completed = fanout(fake_llm, *SAY, "--retries", "2", ":::", "a")
    assert completed.returncode == 1
    assert len(completions(fake_llm)) == 1
    record = details_by_id(completed, "a")
    assert record["status"] == "failure" and record["reason"].startswith(reason)
    assert len(record["attempts"]) == 1
    assert len(record["agent"]["exchanges"]) == 1


# --- 4. dropped connections and timeouts ----------------------------------------------


@pytest.mark.parametrize("partial", [False, True], ids=["no-response", "half-a-body"])
def test_a_dropped_connection_is_retried(fake_llm: FakeLLM, partial: bool) -> None:
    fake_llm.script(Drop(partial=partial), Reply("back"))
    completed = fanout(fake_llm, *SAY, ":::", "a")
    assert completed.returncode == 0, completed.stderr
    assert len(completions(fake_llm)) == 2
    exchanges = agent_record(completed, "a")["exchanges"]
    assert [e["status"] for e in exchanges] == [None, 200]
    assert exchanges[0]["error"].startswith("connection failed")
    assert manifest_rows(completed)["a"]["summary"] == "back"


def test_a_reply_slower_than_timeout_ends_as_timeout(fake_llm: FakeLLM) -> None:
    fake_llm.script(Slow(20))
    began = time.monotonic()
    completed = fanout(fake_llm, *SAY, "--timeout", "500ms", ":::", "a")
    assert time.monotonic() - began < 10
    assert completed.returncode == 1
    record = details_by_id(completed, "a")
    assert record["status"] == "timeout"
    assert record["reason"] == "timed out after 500ms"
    assert "timed out after 500ms" in manifest_rows(completed)["a"]["summary"]
    assert len(completions(fake_llm)) == 1


def test_a_timed_out_attempt_is_asked_again_with_retries(fake_llm: FakeLLM) -> None:
    fake_llm.script(Slow(20), Reply("second time"))
    completed = fanout(
        fake_llm, *SAY, "--timeout", "500ms", "--retries", "1", "--retry-delay", "0.1s", ":::", "a"
    )
    assert completed.returncode == 0, completed.stderr
    record = details_by_id(completed, "a")
    assert [a["status"] for a in record["attempts"]] == ["timeout", "success"]
    assert record["summary"] == "second time"
    assert len(completions(fake_llm)) == 2


@pytest.mark.parametrize("answer", [Slow(20), invalid_api_key()], ids=["timeout", "401"])
def test_a_failed_agent_task_states_its_reason_once_in_the_summary(
    fake_llm: FakeLLM, answer: Behaviour
) -> None:
    fake_llm.script(answer)
    completed = fanout(fake_llm, *SAY, "--timeout", "500ms", ":::", "a")
    assert completed.returncode == 1
    record = details_by_id(completed, "a")
    assert record["summary"].count(record["reason"]) == 1, record["summary"]


def test_a_timed_out_request_is_listed_among_the_exchanges(fake_llm: FakeLLM) -> None:
    fake_llm.script(Slow(20))
    completed = fanout(fake_llm, *SAY, "--timeout", "500ms", ":::", "a")
    assert completed.returncode == 1
    assert len(completions(fake_llm)) == 1
    exchanges = agent_record(completed, "a")["exchanges"]
    assert len(exchanges) == 1 and exchanges[0]["status"] is None
    assert "timed out" in exchanges[0]["error"]


# --- 5. an early verdict cancels requests in flight -----------------------------------


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc/net/tcp")
def test_an_early_verdict_cancels_requests_in_flight(fake_llm: FakeLLM) -> None:
    never = threading.Event()
    fake_llm.script_for("Say b", Hold(never))
    fake_llm.script_for("Say c", Slow(30))
    fake_llm.script_for("Say d", Hold(never))
    fake_llm.script_for("Say a", Slow(0.3, Reply("first")))  # after b, c and d are asked
    try:
        began = time.monotonic()
        completed = fanout(
            fake_llm, *SAY, "-j", "4", "--strategy", "first-n-succeed", ":::", *"abcd"
        )
        elapsed = time.monotonic() - began
        pending = [r for r in completions(fake_llm) if r.prompt != "Say a"]
        assert completed.returncode == 0, completed.stderr
        assert elapsed < 8, f"fanout waited for the held replies ({elapsed:.1f}s)"
        assert statuses(completed) == {
            "a": "success", "b": "cancelled", "c": "cancelled", "d": "cancelled",
        }  # fmt: skip
        assert len(pending) == 3
        assert all(r.status is None and r.answered_at is None for r in pending)
        still_open = established_client_ports(fake_llm.port)
        assert not still_open & {r.client_port for r in pending}
    finally:
        never.set()


def test_a_cancelled_agent_task_keeps_its_request_record(fake_llm: FakeLLM) -> None:
    fake_llm.script_for("Say b", Slow(30))
    fake_llm.script_for("Say a", Slow(0.3, Reply("first")))
    completed = fanout(fake_llm, *SAY, "-j", "2", "--strategy", "first-n-succeed", ":::", "a", "b")
    assert completed.returncode == 0, completed.stderr
    assert statuses(completed)["b"] == "cancelled"
    assert len(completions(fake_llm)) == 2  # b's request was sent
    record = details_by_id(completed, "b")["agent"]
    assert record is not None, "no agent record"
    assert record["provider"] == "openai"
    assert record["request"]["body"]["messages"][-1]["content"] == "Say b"


# --- 6. rate limits -------------------------------------------------------------------


@pytest.mark.slow
def test_run_wide_rate_caps_request_arrivals(fake_llm: FakeLLM) -> None:
    values = [str(n) for n in range(12)]
    completed = fanout(fake_llm, *SAY, "--rate", "5/s", "-j", "8", ":::", *values)
    assert completed.returncode == 0, completed.stderr
    arrivals = sorted(r.received_at for r in completions(fake_llm))
    assert len(arrivals) == 12
    # 0.95 s, not 1 s: the limiter allows a start exactly one period after another, and
    # arrival jitter may bring them a hair closer on the server's clock.
    assert most_in_window(arrivals, 0.95) <= 5
    assert max(arrivals) - min(arrivals) >= 2.1  # one every 0.2 s (was: 5 at once, 5 at 1 s)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.15, gaps  # evenly spaced: no two together


@pytest.mark.slow
def test_a_providers_rate_caps_its_requests() -> None:
    text = """\
[run]
jobs = 8

[agent]
provider = "local"
model = "m"

[agent.providers.local]
api = "openai"
base_url = "{url}"
rate = "4/s"

[[task]]
id = "t{}"
kind = "agent"
prompt = "Say {}"
foreach = ["1", "2", "3", "4", "5", "6", "7", "8"]
"""
    with FakeLLM() as server:
        completed = fanout(server, "run", toml(text, url=server.openai_url))
        arrivals = [r.received_at for r in completions(server)]
    assert completed.returncode == 0, completed.stderr
    assert len(arrivals) == 8
    assert most_in_window(arrivals, 0.95) <= 4
    assert max(arrivals) - min(arrivals) >= 0.9
    waited = [agent_record(completed, task_id)["exchanges"][0]["waited_s"]
              for task_id in manifest_rows(completed)]  # fmt: skip
    assert sum(1 for seconds in waited if seconds > 0.5) >= 4


# --- 7. connection pooling ------------------------------------------------------------


def test_requests_share_a_pool_of_connections(fake_llm: FakeLLM) -> None:
    values = [str(n) for n in range(20)]
    completed = fanout(fake_llm, *SAY, "-j", "4", ":::", *values)
    assert completed.returncode == 0, completed.stderr
    sent = completions(fake_llm)
    assert len(sent) == 20
    ports = {r.client_port for r in sent}
    assert len(ports) <= 4, f"{len(ports)} connections for 20 requests at -j 4"
    assert fake_llm.max_concurrent <= 4


def test_many_slots_keep_their_connections_alive(fake_llm: FakeLLM) -> None:
    """-j 20 spans three pools of 8 slots; each keeps its connections between calls
    (httpx2's default keeps only 20 alive across the client)."""
    values = [str(n) for n in range(100)]
    completed = fanout(fake_llm, *SAY, "-j", "20", ":::", *values)
    assert completed.returncode == 0, completed.stderr
    sent = completions(fake_llm)
    assert len(sent) == 100
    ports = {r.client_port for r in sent}
    assert len(ports) <= 20, f"{len(ports)} connections for 100 requests at -j 20"


# --- 8. strategies over replies -------------------------------------------------------


def test_majority_vote_over_replies(fake_llm: FakeLLM) -> None:
    fake_llm.answer = lambda body: "Lyon" if "5" in last_user_text(body) else "  Paris \n"
    completed = fanout(
        fake_llm, *SAY, "--strategy", "majority-vote", "--temperature", "0",
        "--format", "json", "-j", "1", ":::", *"12345",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    verdict = json.loads(completed.stdout)["verdict"]
    assert verdict["passed"] is True
    assert verdict["winner"]["vote_key"] == "Paris"
    assert verdict["winner"]["votes"] == 3
    assert all(r.body["temperature"] == 0 for r in completions(fake_llm))
    assert details_by_id(completed, "1")["vote_key"] == "Paris"


def test_best_of_n_picks_the_reply_with_the_highest_aop_score(fake_llm: FakeLLM) -> None:
    for value, score in (("a", "0.7"), ("b", "0.93"), ("c", "0.2")):
        fake_llm.script_for(f"Say {value}", Reply(f"Draft {value}\n[AOP:SCORE] {score}\n"))
    completed = fanout(fake_llm, *SAY, "--strategy", "best-of-n", "--format", "json", ":::", *"abc")
    assert completed.returncode == 0, completed.stderr
    winner = json.loads(completed.stdout)["verdict"]["winner"]
    assert winner == {"task_id": "b", "score": 0.93}
    assert details_by_id(completed, "a")["score"] == 0.7


def test_aop_markers_in_a_reply_set_summary_and_status(fake_llm: FakeLLM) -> None:
    fake_llm.script_for("Say a", Reply(
        "A long preamble.\n[AOP:SUMMARY]\nThe gist.\nSecond point.\n[AOP:STATUS] success\n"
    ))
    fake_llm.script_for("Say b", Reply("I could not do it.\n[AOP:STATUS] failure\n"))
    completed = fanout(fake_llm, *SAY, ":::", "a", "b")
    assert completed.returncode == 1
    assert statuses(completed) == {"a": "success", "b": "failure"}
    assert manifest_rows(completed)["a"]["summary"] == "The gist.; Second point."
    assert details_by_id(completed, "b")["agent"]["text"].startswith("I could not do it.")


# --- other ways to name agent tasks -------------------------------------------------


def test_fanout_provider_and_model_from_the_environment(fake_llm: FakeLLM) -> None:
    completed = fanout(
        fake_llm, "run", "--prompt", "Say {}", ":::", "x",
        FANOUT_PROVIDER="anthropic", FANOUT_MODEL="env-model",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    (request,) = completions(fake_llm)
    assert request.path == "/v1/messages" and request.body["model"] == "env-model"


def test_values_on_stdin_and_agent_without_prompt(fake_llm: FakeLLM) -> None:
    from_stdin = run_fanout(*SAY, input=b"one\ntwo\n", env=child_env(fake_llm))
    assert from_stdin.returncode == 0, from_stdin.stderr
    bare = fanout(fake_llm, "run", "--agent", "--model", "m", ":::", "What is 2+2?")
    assert bare.returncode == 0, bare.stderr
    assert [r.prompt for r in completions(fake_llm)][-1] == "What is 2+2?"
    assert sorted(r.prompt or "" for r in completions(fake_llm))[:2] == ["Say one", "Say two"]


def test_a_local_base_url_needs_no_key(fake_llm: FakeLLM) -> None:
    env = {k: v for k, v in child_env(fake_llm).items() if k != "OPENAI_API_KEY"}
    completed = run_fanout(*SAY, ":::", "a", env=env)
    assert completed.returncode == 0, completed.stderr
    (request,) = completions(fake_llm)
    assert "authorization" not in request.headers


# --- 9. problems that stop the run before it starts -----------------------------------


def no_request_and_usage_error(server: FakeLLM, completed: Completed, *fragments: str) -> None:
    assert_usage_error(completed, *fragments)
    assert server.requests == []


def test_missing_key_for_the_default_provider_is_exit_2(fake_llm: FakeLLM) -> None:
    # No OPENAI_BASE_URL and no --base-url: the default provider is api.openai.com.
    began = time.monotonic()
    completed = run_fanout(
        "run", "--prompt", "Say {}", "--model", "m", ":::", "a",
        env={"FANOUT_OUTPUT_DIR": str(output_dir())},
    )  # fmt: skip
    assert time.monotonic() - began < 10
    no_request_and_usage_error(fake_llm, completed, "no API key", "OPENAI_API_KEY")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--prompt", "Say {}", "--provider", "nope", "--model", "m", ":::", "a"],
         ["unknown provider", "nope"]),
        (["--prompt", "Say {}", ":::", "a"], ["no model"]),
        (["--model", "x", "--", "echo", "{}", ":::", "a"], ["--model", "only for agent tasks"]),
        (["--prompt", "Say {}", "--model", "m", "--temperature", "7", ":::", "a"],
         ["--temperature"]),
    ],
    ids=["unknown provider", "no model", "model on a command", "bad temperature"],
)
def test_command_line_problems_are_exit_2(
    fake_llm: FakeLLM, args: list[str], fragments: list[str]
) -> None:
    completed = fanout(fake_llm, "run", *args)
    no_request_and_usage_error(fake_llm, completed, *fragments)


FILE_PROBLEMS = {
    # name: (task file, fragments of the one error line)
    "unknown provider": (
        '[agent]\nmodel = "m"\n\n[[task]]\nid = "q"\nkind = "agent"\nprompt = "hi"\n'
        'provider = "nope"\n',
        [f"{TASKS}:8", "unknown provider", "nope"],
    ),
    "agent without prompt": (
        '[agent]\nmodel = "m"\n\n[[task]]\nid = "q"\nkind = "agent"\n',
        [f"{TASKS}:4", "needs a prompt"],
    ),
    "prompt on a process task": (
        '[[task]]\nid = "q"\ncmd = ["echo", "x"]\nprompt = "hi"\n',
        [f"{TASKS}:4", "prompt is for agent tasks"],
    ),
    "no model anywhere": ('[[task]]\nid = "q"\nkind = "agent"\nprompt = "hi"\n', ["no model"]),
    "key variable unset": (
        '[agent]\nprovider = "local"\nmodel = "m"\n\n[agent.providers.local]\napi = "openai"\n'
        'base_url = "{url}"\napi_key_env = "LOCAL_KEY"\n\n[[task]]\nkind = "agent"\n'
        'prompt = "hi"\n',
        ["no API key", "LOCAL_KEY"],
    ),
    "unknown [agent] key": (
        '[agent]\nmodle = "m"\n\n[[task]]\nkind = "agent"\nprompt = "hi"\n',
        [f"{TASKS}:2", "modle"],
    ),
}


@pytest.mark.parametrize("case", list(FILE_PROBLEMS))
def test_task_file_problems_are_exit_2(fake_llm: FakeLLM, case: str) -> None:
    text, fragments = FILE_PROBLEMS[case]
    completed = fanout(fake_llm, "run", toml(text, url=fake_llm.openai_url))
    no_request_and_usage_error(fake_llm, completed, *fragments)


# --- 10. dry run ----------------------------------------------------------------------


def test_dry_run_prints_the_calls_and_asks_nothing(fake_llm: FakeLLM) -> None:
    completed = fanout(fake_llm, *SAY, "--dry-run", ":::", "a", "b")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["agent openai/m: Say a", "agent openai/m: Say b"]
    assert fake_llm.requests == []
    assert not completed.run_dirs()


def test_dry_run_of_a_task_file_names_each_tasks_provider_and_model(fake_llm: FakeLLM) -> None:
    completed = fanout(
        fake_llm, "run", "--dry-run", toml(TASK_FILE, url=fake_llm.openai_url), LOCAL_KEY=SECRET
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "agent local/base-model: Is 7 a prime?",
        "agent local/base-model: Is 9 a prime?",
        "agent local/other-model: Capital of France?",
    ]
    assert fake_llm.requests == []


# --- 11. resume -----------------------------------------------------------------------


def test_resume_failed_asks_again_only_the_failed_task(fake_llm: FakeLLM) -> None:
    text = """\
[agent]
model = "m"
retries = 1

[[task]]
id = "t-{}"
kind = "agent"
prompt = "Say {}"
foreach = ["a", "b"]
"""
    fake_llm.script_for("Say a", server_error(500), server_error(500))
    first = fanout(fake_llm, "run", toml(text), "--run-id", "first")
    assert first.returncode == 1
    assert statuses(first) == {"t-a": "failure", "t-b": "success"}
    Path(TASKS).unlink()  # the saved task list is what resumes
    again = fanout(fake_llm, "run", "--resume-failed", "first")
    assert again.returncode == 0, again.stderr
    assert statuses(again) == {"t-a": "success", "t-b": "success"}
    assert [r.prompt for r in completions(fake_llm)].count("Say a") == 3
    assert [r.prompt for r in completions(fake_llm)].count("Say b") == 1
    assert manifest_rows(again)["t-a"]["summary"] == "echo: Say a"
    started = [e["task_id"] for e in read_journal(again.run_dir) if e["event"] == "task_started"]
    assert started.count("t-b") == 1


# --- 12. output formats ---------------------------------------------------------------


def test_aop_format_of_an_agent_run(fake_llm: FakeLLM) -> None:
    fake_llm.script_for("Say b", invalid_api_key())
    completed = fanout(fake_llm, *SAY, "--format", "aop", ":::", "a", "b")
    assert completed.returncode == 1
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("[AOP:START] ") and lines[-1].startswith("[AOP:END] ")
    summary = lines[lines.index("[AOP:SUMMARY]") + 1 : lines.index("[AOP:SUMMARY]") + 3]
    assert summary[0].startswith("- failure b: ") and "HTTP 401" in summary[0]
    assert "-> 0002-b.json; stdout 0002-b.stdout (" in summary[0]
    assert summary[1].startswith("- success a: echo: Say a -> 0001-a.json; stdout 0001-a.stdout (")
    details_line = next(line for line in lines if line.startswith("[AOP:DETAILS_FILE] "))
    assert Path(details_line.split(" ", 1)[1]).name == "manifest.json"
    assert "[AOP:METRICS] tasks: 2, success: 1, failure: 1" in completed.stdout
    assert "[AOP:STATUS] failure" in lines


def test_json_format_of_an_agent_run(fake_llm: FakeLLM) -> None:
    completed = fanout(fake_llm, *SAY, "--format", "json", ":::", "a", "b")
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["fanout_result_version"] == 1
    assert document["verdict"]["counts"]["success"] == 2
    assert [(t["task_id"], t["status"], t["summary"]) for t in document["tasks"]] == [
        ("a", "success", "echo: Say a"), ("b", "success", "echo: Say b"),
    ]  # fmt: skip
    for entry in document["tasks"]:
        assert (Path(document["details_dir"]) / entry["details_file"]).is_file()


# --- 13. attachments ------------------------------------------------------------------


def test_attachments_follow_the_prompt_and_a_missing_one_is_an_error(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("alpha line 1\nalpha line 2\n")
    (tmp_path / "b.txt").write_text("beta\n")
    completed = fanout(
        fake_llm, *SAY, "--prompt", "Summarise {}", "--attach", "{}",
        ":::", "a.txt", "b.txt", "missing.txt",
    )  # fmt: skip
    assert completed.returncode == 1
    assert statuses(completed) == {"a.txt": "success", "b.txt": "success", "missing.txt": "error"}
    sent = {r.prompt for r in completions(fake_llm)}
    assert sent == {
        'Summarise a.txt\n\n<file path="a.txt">\nalpha line 1\nalpha line 2\n</file>',
        'Summarise b.txt\n\n<file path="b.txt">\nbeta\n</file>',
    }
    reason = details_by_id(completed, "missing.txt")["reason"]
    assert "missing.txt" in reason and "No such file" in reason


# --- 14. agent CLIs -------------------------------------------------------------------

STUB_LLM = """\
import json, os, sys
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
print("stub says: " + sys.argv[-1])
"""

STUB_CLAUDE = """\
import json, os, sys, uuid
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
prompt = sys.argv[-1].strip()
failed = "boom" in prompt
print(json.dumps({
    "type": "result", "subtype": "success", "is_error": failed, "duration_ms": 1234,
    "num_turns": 1, "session_id": str(uuid.uuid4()), "total_cost_usd": 0.0123,
    "result": "API Error: 529 Overloaded" if failed else "The answer is Paris.",
    "usage": {"input_tokens": 10, "cache_read_input_tokens": 200, "output_tokens": 7},
    "modelUsage": {"claude-sonnet-4-5": {"inputTokens": 10, "outputTokens": 7}},
}))
"""


def stub_tools(tmp_path: Path) -> dict[str, str]:
    """`llm` and `claude` stubs first on PATH; each logs its argv to STUB_LOG."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, code in (("llm", STUB_LLM), ("claude", STUB_CLAUDE)):
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n{code}")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "STUB_LOG": str(tmp_path / "argv.jsonl")}


def logged_argvs(tmp_path: Path, set_up: bool = False) -> list[list[str]]:
    """The stubs' argvs, without llm's set-up step (`llm fragments list`, run once before
    parallel llm tasks) unless `set_up`."""
    lines = (tmp_path / "argv.jsonl").read_text().splitlines()
    argvs = [json.loads(line) for line in lines]
    return [argv for argv in argvs if set_up or argv[:1] != ["fragments"]]


def test_agent_cli_tasks_from_a_task_file_run_their_preset(tmp_path: Path) -> None:
    """kind = "agent-cli" in TOML, plain and with foreach: the preset's argv runs."""
    env = stub_tools(tmp_path)
    (tmp_path / "tasks.toml").write_text(
        '[[task]]\nid = "one"\nkind = "agent-cli"\ntool = "llm"\nprompt = "Say one"\n'
        'model = "tiny"\nargs = ["--option", "x"]\n\n'
        '[[task]]\nid = "v-{}"\nkind = "agent-cli"\ntool = "llm"\nprompt = "Say {}"\n'
        'foreach = ["a", "b"]\n'
    )
    planned = fanout(None, "run", "tasks.toml", "--dry-run", **env)
    assert planned.stdout.splitlines() == [
        "llm prompt --no-log --model=tiny --option x -- 'Say one'",
        "llm prompt --no-log -- 'Say a'",
        "llm prompt --no-log -- 'Say b'",
    ]
    completed = fanout(None, "run", "tasks.toml", **env)
    assert completed.returncode == 0, completed.stderr
    assert sorted(logged_argvs(tmp_path)) == [
        ["prompt", "--no-log", "--", "Say a"],
        ["prompt", "--no-log", "--", "Say b"],
        ["prompt", "--no-log", "--model=tiny", "--option", "x", "--", "Say one"],
    ]
    assert manifest_rows(completed)["v-b"]["summary"] == "stub says: Say b"
    assert details_by_id(completed, "one")["kind"] == "agent-cli"


def test_agent_cli_runs_need_no_http_client(tmp_path: Path) -> None:
    """An agent CLI is a process: a run of them works without the agent extra, and
    settings only HTTP calls take are refused."""
    env = stub_tools(tmp_path)
    poisoned = tmp_path / "poisoned"
    (poisoned / "httpx2").mkdir(parents=True)
    (poisoned / "httpx2" / "__init__.py").write_text("raise ImportError('httpx2 imported')\n")
    env["PYTHONPATH"] = str(poisoned)
    completed = fanout(None, "run", "--agent-cli", "llm", "--prompt", "Say {}", ":::", "a", **env)
    assert completed.returncode == 0, completed.stderr
    assert manifest_rows(completed)["a"]["summary"] == "stub says: Say a"

    refused = fanout(None, "run", "--agent-cli", "llm", "--prompt", "{}", "--temperature", "0",
                     ":::", "a", **env)
    assert refused.returncode == 2
    assert "--temperature: not for --agent-cli" in refused.stderr


def test_agent_cli_llm_gets_the_preset_argv(tmp_path: Path) -> None:
    env = stub_tools(tmp_path)
    completed = fanout(
        None, "run", "--agent-cli", "llm", "--prompt", "Say {}", "--model", "tiny",
        "--system", "Be brief.", ":::", "a", "-b", **env,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert sorted(logged_argvs(tmp_path)) == [
        ["prompt", "--no-log", "--model=tiny", "--system=Be brief.", "--", "Say -b"],
        ["prompt", "--no-log", "--model=tiny", "--system=Be brief.", "--", "Say a"],
    ]
    assert manifest_rows(completed)["a"]["summary"] == "stub says: Say a"
    assert agent_record(completed, "-b")["text"] == "stub says: Say -b"
    assert agent_record(completed, "a")["tool"] == "llm"


def test_agent_cli_claude_result_is_parsed_and_voted_on(tmp_path: Path) -> None:
    env = stub_tools(tmp_path)
    completed = fanout(
        None, "run", "--agent-cli", "claude", "--prompt", "Capital of {}?",
        "--strategy", "majority-vote", "--vote-on", "stdout", "--format", "json", "-j", "1",
        ":::", "France", "la France", "FR", **env,
    )  # fmt: skip  # -j 1: France ends before the vote is decided (two of three agree)
    assert completed.returncode == 0, completed.stderr
    verdict = json.loads(completed.stdout)["verdict"]
    assert verdict["passed"] is True
    assert verdict["winner"]["vote_key"] == "The answer is Paris."
    argv = sorted(logged_argvs(tmp_path))[0]
    assert argv[:3] == ["-p", "--output-format", "json"] and argv[-2] == "--"
    record = agent_record(completed, "France")
    assert record["tool"] == "claude"
    assert record["text"] == "The answer is Paris."
    assert record["cost_usd"] == 0.0123
    assert record["usage"]["input_tokens"] == 10 and record["usage"]["output_tokens"] == 7
    assert record["model"] == "claude-sonnet-4-5"
    raw = (completed.run_dir / details_by_id(completed, "France")["stdout"]["path"]).read_text()
    assert json.loads(raw)["type"] == "result"  # stdout keeps the tool's raw output


def test_agent_cli_claude_error_result_is_a_failure(tmp_path: Path) -> None:
    env = stub_tools(tmp_path)
    completed = fanout(None, "run", "--agent-cli", "claude", "--prompt", "{}", ":::", "boom", "ok",
                       **env)
    assert completed.returncode == 1
    assert statuses(completed) == {"boom": "failure", "ok": "success"}
    reason = details_by_id(completed, "boom")["reason"]
    assert re.search(r"claude reported an error.*529 Overloaded", reason), reason



def test_agent_cli_tool_not_installed_is_an_error(tmp_path: Path) -> None:
    env = stub_tools(tmp_path)  # llm and claude only: no codex
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin"
    completed = fanout(None, "run", "--agent-cli", "codex", "--prompt", "Say {}", ":::", "a", **env)
    assert completed.returncode == 1
    record = details_by_id(completed, "a")
    assert record["status"] == "error" and "codex" in record["reason"]


def test_agent_table_base_url_points_the_provider_at_a_local_server(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    (tmp_path / "tasks.toml").write_text(
        f'[agent]\nbase_url = "{fake_llm.openai_url}"\nmodel = "m"\n\n'
        '[[task]]\nid = "hi"\nkind = "agent"\nprompt = "Say hi"\n'
    )
    completed = fanout(fake_llm, "run", "tasks.toml")
    assert completed.returncode == 0, completed.stderr
    assert statuses(completed) == {"hi": "success"}
    record = details_by_id(completed, "hi")
    assert record["agent"]["request"]["url"] == f"{fake_llm.openai_url}/chat/completions"
    assert [r.prompt for r in completions(fake_llm)] == ["Say hi"]


# --- 6. agent CLIs: parallel runs, args, --attach --------------------------------------

RACY_LLM = """\
import json, os, sys, time
home = os.environ["LLM_USER_PATH"]
os.makedirs(home, exist_ok=True)
done = os.path.join(home, "migrated")
if not os.path.exists(done):  # llm migrates its log database in every run, --no-log too
    try:
        os.close(os.open(os.path.join(home, "migrating"), os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        sys.exit('sqlite3.OperationalError: table "tool_instances" already exists')
    time.sleep(0.3)
    open(done, "w").close()
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1] == "prompt":
    print("racy says: " + sys.argv[-1])
"""


def racy_llm(tmp_path: Path) -> dict[str, str]:
    """An `llm` that fails as the real one does when two runs migrate a fresh home."""
    env = stub_tools(tmp_path)
    path = tmp_path / "bin" / "llm"
    path.write_text(f"#!{sys.executable}\n{RACY_LLM}")
    return {**env, "LLM_USER_PATH": str(tmp_path / "llm-home")}


def test_agent_cli_llm_at_j4_on_a_fresh_home_sets_it_up_once_first(tmp_path: Path) -> None:
    env = racy_llm(tmp_path)
    completed = fanout(None, "run", "--agent-cli", "llm", "--prompt", "Say {}", "-j", "4",
                       ":::", "a", "b", "c", "d", **env)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert set(statuses(completed).values()) == {"success"}
    argvs = logged_argvs(tmp_path, set_up=True)
    assert argvs[0] == ["fragments", "list", "--aliases"]  # once, before any task
    assert sum(argv[0] == "fragments" for argv in argvs) == 1
    assert agent_record(completed, "c")["text"] == "racy says: Say c"


def test_agent_cli_at_j1_runs_no_set_up_step(tmp_path: Path) -> None:
    env = racy_llm(tmp_path)
    completed = fanout(None, "run", "--agent-cli", "llm", "--prompt", "Say {}", "-j", "1",
                       ":::", "a", "b", **env)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert [argv[0] for argv in logged_argvs(tmp_path, set_up=True)] == ["prompt", "prompt"]


def test_agent_cli_set_up_step_that_fails_is_one_warning_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    env = stub_tools(tmp_path)
    path = tmp_path / "bin" / "llm"
    path.write_text(f"#!{sys.executable}\nimport sys\nif sys.argv[1] == 'fragments':\n"
                    "    sys.exit(\"Error: No such command 'fragments'.\")\nprint('ok')\n")
    completed = fanout(None, "run", "--agent-cli", "llm", "--prompt", "Say {}", "-j", "2",
                       ":::", "a", "b", **env)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    warnings = [line for line in completed.stderr.splitlines() if "fragments" in line]
    assert len(warnings) == 1, completed.stderr
    assert "llm fragments list --aliases" in warnings[0]
    assert "No such command 'fragments'" in warnings[0]


def test_agent_cli_args_are_templated_like_cmd(tmp_path: Path) -> None:
    env = stub_tools(tmp_path)
    (tmp_path / "tasks.toml").write_text(
        '[[task]]\nid = "r-{}"\nkind = "agent-cli"\ntool = "llm"\nprompt = "Review {}"\n'
        'args = ["-f", "{}", "--option", "n{#}"]\nforeach = ["a.md", "b.md"]\n'
    )
    completed = fanout(None, "run", "tasks.toml", "-j", "1", **env)
    assert completed.returncode == 0, completed.stderr
    assert logged_argvs(tmp_path) == [
        ["prompt", "--no-log", "-f", "a.md", "--option", "n1", "--", "Review a.md"],
        ["prompt", "--no-log", "-f", "b.md", "--option", "n2", "--", "Review b.md"],
    ]


def test_agent_cli_attach_becomes_the_tools_own_file_option(tmp_path: Path) -> None:
    env = stub_tools(tmp_path)
    completed = fanout(None, "run", "--agent-cli", "llm", "--prompt", "Review {}",
                       "--attach", "{}", "--attach", "rules.md", "-j", "1", ":::", "a.py",
                       **env)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert logged_argvs(tmp_path) == [
        ["prompt", "--no-log", "--fragment=a.py", "--fragment=rules.md", "--", "Review a.py"],
    ]


@pytest.mark.parametrize("tool", ["claude", "codex"])
def test_agent_cli_attach_for_a_tool_without_a_file_option_is_refused(
    tmp_path: Path, tool: str
) -> None:
    completed = fanout(None, "run", "--agent-cli", tool, "--prompt", "Review {}",
                       "--attach", "{}", ":::", "a.py")  # fmt: skip
    assert_usage_error(completed, f"--attach: {tool} has no option", "name the file")


# --- 7. prompts: literal text from a file, a prompt with no values ---------------------


def test_prompt_file_is_literal_and_follows_the_prompt(fake_llm: FakeLLM, tmp_path: Path) -> None:
    rules = tmp_path / "rules.md"
    rules.write_text("d = {}\nuse {1} and {#} as they are\n")
    completed = fanout(fake_llm, *SAY, "--prompt-file", str(rules), ":::", "x")
    assert completed.returncode == 0, completed.stderr
    assert [r.prompt for r in completions(fake_llm)] == [
        "Say x\n\nd = {}\nuse {1} and {#} as they are"
    ]


def test_prompt_file_alone_is_the_whole_prompt_run_once_without_values(
    tmp_path: Path,
) -> None:
    env = stub_tools(tmp_path)
    (tmp_path / "p.md").write_text("Explain {} literally.\n")
    completed = fanout(None, "run", "--agent-cli", "llm", "--prompt-file", str(tmp_path / "p.md"),
                       **env)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert logged_argvs(tmp_path) == [["prompt", "--no-log", "--", "Explain {} literally."]]


def test_prompt_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    completed = fanout(None, "run", "--agent-cli", "llm", "--prompt", "x {}", "--prompt-file",
                       str(tmp_path / "missing.md"), ":::", "a")  # fmt: skip
    assert_usage_error(completed, "--prompt-file", "missing.md")


def test_task_file_prompt_file_is_relative_to_the_task_file_and_literal(tmp_path: Path) -> None:
    env = stub_tools(tmp_path)
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "rules.md").write_text("keep {} as is\n")
    (folder / "tasks.toml").write_text(
        '[[task]]\nid = "one"\nkind = "agent-cli"\ntool = "llm"\nprompt_file = "rules.md"\n\n'
        '[[task]]\nid = "v-{}"\nkind = "agent-cli"\ntool = "llm"\nprompt = "Check {}"\n'
        'prompt_file = "rules.md"\nforeach = ["a"]\n'
    )
    completed = fanout(None, "run", str(folder / "tasks.toml"), "-j", "1", **env)
    assert completed.returncode == 0, completed.stderr
    assert logged_argvs(tmp_path) == [
        ["prompt", "--no-log", "--", "keep {} as is"],
        ["prompt", "--no-log", "--", "Check a\n\nkeep {} as is"],
    ]


def test_a_prompt_without_a_replacement_string_runs_once_on_empty_stdin(tmp_path: Path) -> None:
    env = stub_tools(tmp_path)
    completed = fanout(None, "run", "--agent-cli", "llm", "--prompt", "Say hello", **env)
    assert completed.returncode == 0, completed.stderr
    assert logged_argvs(tmp_path) == [["prompt", "--no-log", "--", "Say hello"]]
    assert list(manifest_rows(completed)) == ["task-1"]


def test_a_prompt_template_on_empty_stdin_makes_no_tasks_and_says_so(tmp_path: Path) -> None:
    env = stub_tools(tmp_path)
    completed = fanout(None, "run", "--agent-cli", "llm", "--prompt", "Say {}", **env)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert not (tmp_path / "argv.jsonl").exists()
    lines = [line for line in completed.stderr.splitlines() if "no values" in line]
    assert len(lines) == 1 and "--prompt" in lines[0], completed.stderr
