"""Agent calls, tier (a): the executor against an in-process mock HTTP server
(httpx2.MockTransport), plus the pure pieces it is built from: classifying a response,
Retry-After, the rate limiter and shared pause, rate parsing and settings layers.

No network and no child processes; every wait is a fraction of a second."""

from __future__ import annotations

import email.utils
import itertools
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from fanout_cli.agents import (
    ATTACH_LIMIT_BYTES,
    AgentSettings,
    Provider,
    build_settings,
    builtin_providers,
    parse_agent_table,
    settings_values,
)
from fanout_cli.executors import AttemptPlan
from fanout_cli.executors.agent import HTTP_BACKOFF, AgentExecutor
from fanout_cli.executors.exchange import classify_response, retry_after
from fanout_cli.executors.process import ProcessExecutor
from fanout_cli.models import AgentCall, Attempt, TaskSpec, TaskStatus
from fanout_cli.pacing import Backoff, Pause, RateLimiter
from fanout_cli.values import Rate, parse_rate

KEY = "sk-test-SECRET-4242-do-not-leak"
OPENAI_BASE = "http://llm.test/v1"
ANTHROPIC_BASE = "http://claude.test"
LOCAL = Provider("local", "openai", OPENAI_BASE, "FANOUT_TEST_KEY", True)
CLAUDE = Provider("claude", "anthropic", ANTHROPIC_BASE, "FANOUT_TEST_KEY", True)


def settings(**overrides: Any) -> AgentSettings:
    values: dict[str, Any] = {
        "provider": "local",
        "model": "small-model",
        "retries": 2,
        "providers": {"local": LOCAL, "claude": CLAUDE},
    }
    return AgentSettings(**{**values, **overrides})


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANOUT_TEST_KEY", KEY)


@dataclass(frozen=True)
class ShortBackoff(Backoff):
    """Back-off without Retry-After: 10 ms instead of seconds; records each call."""

    calls: list[int] = field(default_factory=list)

    def delay(self, failures: int) -> float:
        self.calls.append(failures)
        return 0.01


SHORT_BACKOFF = ShortBackoff()


@pytest.fixture(autouse=True)
def backoffs() -> list[int]:
    """The failure counts the executors of this test backed off after."""
    SHORT_BACKOFF.calls.clear()
    return SHORT_BACKOFF.calls


# --- the mock server -------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a response, or a dropped connection (`drop`)."""

    status: int = 200
    body: Any = None  # JSON
    text: str | None = None  # a raw body instead of JSON
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: type[httpx2.TransportError] | None = None


@dataclass(frozen=True)
class Sent:
    """A request as the server received it."""

    at: float  # anyio.current_time()
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes  # every header and the body, to search for secrets


class Server:
    """Answers each request with the next scripted reply (the last one repeats), or
    with what `route` picks by prompt; records every request."""

    def __init__(self, *replies: Reply, route: dict[str, list[Reply]] | None = None) -> None:
        self.replies = list(replies)
        self.route = route or {}
        self.requests: list[Sent] = []

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        body: dict[str, Any] = json.loads(request.content)
        raw = b"".join(name + b": " + value for name, value in request.headers.raw)
        sent = Sent(anyio.current_time(), str(request.url), dict(request.headers), body,
                    raw + request.content)
        self.requests.append(sent)
        queue = self.route.get(prompt_of(body), self.replies)
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if reply.delay:
            await anyio.sleep(reply.delay)
        if reply.drop is not None:
            raise reply.drop("the server closed the connection", request=request)
        if reply.text is not None:
            return httpx2.Response(reply.status, text=reply.text, headers=reply.headers)
        return httpx2.Response(reply.status, json=reply.body, headers=reply.headers)


def prompt_of(body: Mapping[str, Any]) -> str:
    content: str = body["messages"][-1]["content"]
    return content


def openai_body(text: str = "Yes", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "model": "small-model-2025",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        **extra,
    }


def anthropic_body(text: str = "Yes", **extra: Any) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "model": "claude-small-2025",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 2},
        **extra,
    }


def error_body(message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": code or "server_error", "code": code}}


OK = Reply(body=openai_body())


def spec_of(prompt: str = "Is 7 a prime?", *, seq: int = 1, cwd: str | None = None,
            **call: Any) -> TaskSpec:
    return TaskSpec(seq=seq, task_id=f"q{seq}", command=(), origin=f"test:{seq}", cwd=cwd,
                    agent=AgentCall(prompt=prompt, **call))


def plan_of(tmp_path: Path, seq: int = 1, timeout: float | None = None) -> AttemptPlan:
    return AttemptPlan(
        number=1, slot=seq, stdout_path=str(tmp_path / f"{seq}-q.stdout"),
        stderr_path=str(tmp_path / f"{seq}-q.stderr"), timeout=timeout, grace=1.0,
        ok_exit=frozenset({0}),
    )


@dataclass(frozen=True)
class Outcome:
    attempt: Attempt
    stdout: str | None  # None: the file was not written
    stderr: str | None
    seconds: float

    @property
    def agent(self) -> dict[str, Any]:
        assert self.attempt.agent is not None
        return dict(self.attempt.agent)

    @property
    def exchanges(self) -> list[dict[str, Any]]:
        exchanges: list[dict[str, Any]] = self.agent["exchanges"]
        return exchanges


def read_or_none(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


async def _run_many(
    agent_settings: AgentSettings, server: Server, specs: list[TaskSpec],
    plans: list[AttemptPlan],
) -> list[Attempt]:
    executor = AgentExecutor(
        agent_settings, ProcessExecutor(), transport=server.transport(), backoff=SHORT_BACKOFF
    )
    attempts: dict[int, Attempt] = {}

    async def one(index: int) -> None:
        attempts[index] = await executor.run_attempt(specs[index], plans[index])

    async with executor.session(), anyio.create_task_group() as group:
        for index in range(len(specs)):
            group.start_soon(one, index)
    return [attempts[index] for index in range(len(specs))]


def call(
    tmp_path: Path, server: Server, spec: TaskSpec | None = None,
    agent_settings: AgentSettings | None = None, timeout: float | None = None,
) -> Outcome:
    """Run one attempt of one agent task against `server`."""
    plan = plan_of(tmp_path, timeout=timeout)
    began = time.monotonic()
    [attempt] = anyio.run(
        _run_many, agent_settings or settings(), server, [spec or spec_of()], [plan]
    )
    return Outcome(
        attempt, read_or_none(Path(plan.stdout_path)), read_or_none(Path(plan.stderr_path)),
        time.monotonic() - began,
    )


# --- the request -----------------------------------------------------------------------


def test_openai_request_shape(tmp_path: Path) -> None:
    server = Server(OK)
    spec = spec_of("Is 7 a prime?", system="Answer in one word.", temperature=0.0,
                   max_tokens=64)
    outcome = call(tmp_path, server, spec)

    [sent] = server.requests
    assert sent.url == "http://llm.test/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert "x-api-key" not in sent.headers
    assert sent.body == {
        "model": "small-model",
        "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Is 7 a prime?"},
        ],
        "max_tokens": 64,
        "temperature": 0.0,
    }
    request = outcome.agent["request"]
    assert request["url"] == sent.url
    assert request["headers"]["authorization"] == "***"
    assert request["headers"]["content-type"] == "application/json"
    assert request["body"] == sent.body
    assert outcome.agent["provider"] == "local"
    assert outcome.agent["api"] == "openai"
    assert outcome.agent["base_url"] == OPENAI_BASE


def test_openai_body_leaves_out_what_is_not_set(tmp_path: Path) -> None:
    server = Server(OK)
    call(tmp_path, server, spec_of("Hi"))
    assert server.requests[0].body == {
        "model": "small-model",
        "messages": [{"role": "user", "content": "Hi"}],
    }


def test_base_url_trailing_slash_is_not_doubled(tmp_path: Path) -> None:
    server = Server(OK)
    slashed = Provider("local", "openai", OPENAI_BASE + "/", "FANOUT_TEST_KEY", True)
    call(tmp_path, server, agent_settings=settings(providers={"local": slashed}))
    assert server.requests[0].url == "http://llm.test/v1/chat/completions"


def test_anthropic_request_shape(tmp_path: Path) -> None:
    server = Server(Reply(body=anthropic_body()))
    outcome = call(tmp_path, server, spec_of("Is 7 a prime?", provider="claude",
                                             system="Answer in one word."))

    [sent] = server.requests
    assert sent.url == "http://claude.test/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.body == {
        "model": "small-model",
        "system": "Answer in one word.",
        "messages": [{"role": "user", "content": "Is 7 a prime?"}],
        "max_tokens": 1024,
    }
    headers = outcome.agent["request"]["headers"]
    assert headers["x-api-key"] == "***"
    assert headers["anthropic-version"] == "2023-06-01"
    assert outcome.agent["api"] == "anthropic"


def test_anthropic_max_tokens_and_temperature_when_set(tmp_path: Path) -> None:
    server = Server(Reply(body=anthropic_body()))
    call(tmp_path, server, spec_of("Hi", provider="claude", max_tokens=7, temperature=0.5))
    assert server.requests[0].body == {
        "model": "small-model",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 7,
        "temperature": 0.5,
    }


def test_task_fields_win_over_run_defaults(tmp_path: Path) -> None:
    server = Server(OK)
    run_defaults = settings(model="default-model", system="Be brief.", max_tokens=5)
    call(tmp_path, server, spec_of("Hi", model="task-model", max_tokens=9), run_defaults)
    body = server.requests[0].body
    assert body["model"] == "task-model"
    assert body["max_tokens"] == 9
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize(
    "replies",
    [
        pytest.param([OK], id="success"),
        pytest.param([Reply(401, error_body("Incorrect API key provided"))], id="401"),
        pytest.param(
            [Reply(500, error_body("boom")), Reply(drop=httpx2.ConnectError), OK],
            id="retried",
        ),
    ],
)
def test_the_key_is_never_recorded(tmp_path: Path, replies: list[Reply]) -> None:
    server = Server(*replies)
    outcome = call(tmp_path, server, spec_of(system="sys", max_tokens=3))
    assert KEY.encode() in server.requests[0].raw  # it was sent ...
    record = json.dumps(outcome.agent)
    assert KEY not in record  # ... and is nowhere in what is kept
    assert KEY[-12:] not in record
    for text in (outcome.stdout, outcome.stderr):
        assert text is None or KEY not in text
    for path in tmp_path.iterdir():
        assert KEY.encode() not in path.read_bytes(), path


def test_the_anthropic_key_is_never_recorded(tmp_path: Path) -> None:
    server = Server(Reply(403, {"error": {"type": "permission_error", "message": "no"}}))
    outcome = call(tmp_path, server, spec_of(provider="claude"))
    assert server.requests[0].headers["x-api-key"] == KEY
    assert KEY not in json.dumps(outcome.agent)
    assert outcome.stderr is not None
    assert KEY not in outcome.stderr


# --- the reply -------------------------------------------------------------------------


def test_openai_reply_is_recorded(tmp_path: Path) -> None:
    headers = {
        "x-ratelimit-remaining-requests": "59",
        "X-RateLimit-Limit-Tokens": "1000",
        "x-request-id": "req-1",
    }
    outcome = call(tmp_path, Server(Reply(body=openai_body("Yes, 7 is prime."), headers=headers)))

    assert outcome.attempt.status is TaskStatus.SUCCESS
    assert outcome.attempt.reason == ""
    assert outcome.attempt.exit_code is None
    assert outcome.attempt.stdout_path == "1-q.stdout"
    assert outcome.stdout == "Yes, 7 is prime."
    record = outcome.agent
    assert record["text"] == "Yes, 7 is prime."
    assert record["model"] == "small-model-2025"  # as the server reported it
    assert record["finish_reason"] == "stop"
    assert record["usage"] == {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}
    assert record["rate_limit"] == {
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-limit-tokens": "1000",
    }
    assert record["response"] == openai_body("Yes, 7 is prime.")
    [exchange] = outcome.exchanges
    assert exchange["n"] == 1
    assert exchange["status"] == 200
    assert exchange["error"] is None
    assert exchange["retry_after_s"] is None
    assert exchange["waited_s"] == 0
    assert exchange["duration_ms"] >= 0


def test_anthropic_reply_is_recorded(tmp_path: Path) -> None:
    body = anthropic_body("Yes")
    body["usage"] = {"input_tokens": 10, "output_tokens": 2, "cache_read_input_tokens": 4}
    headers = {"anthropic-ratelimit-requests-remaining": "49", "request-id": "r"}
    outcome = call(tmp_path, Server(Reply(body=body, headers=headers)),
                   spec_of(provider="claude"))

    assert outcome.attempt.status is TaskStatus.SUCCESS
    assert outcome.stdout == "Yes"
    record = outcome.agent
    assert record["model"] == "claude-small-2025"
    assert record["finish_reason"] == "end_turn"
    assert record["usage"] == {
        "input_tokens": 10, "output_tokens": 2, "total_tokens": None,
        "cache_read_input_tokens": 4,
    }
    assert record["rate_limit"] == {"anthropic-ratelimit-requests-remaining": "49"}


@pytest.mark.parametrize(
    ("api", "usage", "expected"),
    [
        ("openai", None, None),
        ("openai", {"prompt_tokens": 12}, {"input_tokens": 12, "output_tokens": None,
                                           "total_tokens": None}),
        ("openai", {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
         {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}),
        ("openai", {"prompt_tokens": "12", "completion_tokens": True, "total_tokens": 1.5},
         {"input_tokens": None, "output_tokens": None, "total_tokens": None}),
        ("anthropic", None, None),
        ("anthropic", {"output_tokens": 2}, {"input_tokens": None, "output_tokens": 2,
                                             "total_tokens": None}),
    ],
)
def test_usage_is_never_made_up(
    tmp_path: Path, api: str, usage: dict[str, Any] | None, expected: dict[str, Any] | None
) -> None:
    body = openai_body() if api == "openai" else anthropic_body()
    if usage is None:
        del body["usage"]
    else:
        body["usage"] = usage
    provider = "local" if api == "openai" else "claude"
    outcome = call(tmp_path, Server(Reply(body=body)), spec_of(provider=provider))
    assert outcome.attempt.status is TaskStatus.SUCCESS
    assert outcome.agent["usage"] == expected


def test_reply_without_model_or_finish_reason(tmp_path: Path) -> None:
    body = {"choices": [{"message": {"content": "ok"}}]}
    outcome = call(tmp_path, Server(Reply(body=body)))
    assert outcome.attempt.status is TaskStatus.SUCCESS
    assert outcome.agent["model"] is None
    assert outcome.agent["finish_reason"] is None
    assert outcome.agent["usage"] is None


def test_reply_without_text_is_a_failure_and_not_retried(tmp_path: Path) -> None:
    server = Server(Reply(body={"choices": []}))
    outcome = call(tmp_path, server)
    assert outcome.attempt.status is TaskStatus.FAILURE
    assert outcome.attempt.reason.startswith("HTTP 200: the reply has no text")
    assert outcome.attempt.retryable is False
    assert len(server.requests) == 1
    assert outcome.stdout == ""  # created empty: the records name it


def test_unicode_reply_is_written_as_utf8(tmp_path: Path) -> None:
    outcome = call(tmp_path, Server(Reply(body=openai_body("Oui — « premier » ✓\n"))))
    assert outcome.stdout == "Oui — « premier » ✓\n"


# --- retries ---------------------------------------------------------------------------


def test_429_waits_as_asked_then_succeeds(tmp_path: Path, backoffs: list[int]) -> None:
    server = Server(
        Reply(429, error_body("Rate limit reached"), headers={"retry-after-ms": "50"}), OK
    )
    outcome = call(tmp_path, server)

    assert outcome.attempt.status is TaskStatus.SUCCESS
    assert outcome.stdout == "Yes"
    first, second = outcome.exchanges
    assert first["n"] == 1
    assert first["status"] == 429
    assert first["error"] == "HTTP 429: Rate limit reached"
    assert first["retry_after_s"] == 0.05
    assert second["n"] == 2
    assert second["status"] == 200
    assert second["error"] is None
    assert 0.03 <= second["waited_s"] <= 0.5
    gap = server.requests[1].at - server.requests[0].at
    assert 0.05 <= gap < 1.0
    assert outcome.seconds < 2.0
    assert backoffs == []  # the server said how long: no back-off of our own
    assert outcome.stderr == "request 1: HTTP 429: Rate limit reached\n"
    # the last response's headers: the 200 carried none
    assert outcome.agent["rate_limit"] == {}


def test_529_overloaded_then_success(tmp_path: Path, backoffs: list[int]) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    server = Server(Reply(529, overloaded), Reply(body=anthropic_body()))
    outcome = call(tmp_path, server, spec_of(provider="claude"))

    assert outcome.attempt.status is TaskStatus.SUCCESS
    assert [e["status"] for e in outcome.exchanges] == [529, 200]
    assert outcome.exchanges[0]["error"] == "HTTP 529: Overloaded"
    assert backoffs == [1]


def test_server_errors_until_retries_run_out(tmp_path: Path, backoffs: list[int]) -> None:
    server = Server(
        Reply(500, error_body("boom 1")),
        Reply(502, error_body("boom 2")),
        Reply(500, error_body("boom 3")),
        OK,  # never reached: retries=2 means three requests in all
    )
    outcome = call(tmp_path, server, agent_settings=settings(retries=2))

    assert outcome.attempt.status is TaskStatus.FAILURE
    assert outcome.attempt.reason == "HTTP 500: boom 3"
    assert outcome.attempt.retryable is True
    assert len(server.requests) == 3
    assert [e["status"] for e in outcome.exchanges] == [500, 502, 500]
    assert [e["n"] for e in outcome.exchanges] == [1, 2, 3]
    assert backoffs == [1, 2]  # exponential in the number of failures so far
    assert outcome.agent["response"] == error_body("boom 3")
    assert outcome.agent["text"] is None
    assert outcome.stdout == ""  # created empty: the records name it
    assert outcome.stderr == (
        "request 1: HTTP 500: boom 1\nrequest 2: HTTP 502: boom 2\nrequest 3: HTTP 500: boom 3\n"
    )


def test_no_retries_means_one_request(tmp_path: Path) -> None:
    server = Server(Reply(503, error_body("unavailable")), OK)
    outcome = call(tmp_path, server, agent_settings=settings(retries=0))
    assert outcome.attempt.status is TaskStatus.FAILURE
    assert outcome.attempt.reason == "HTTP 503: unavailable"
    assert outcome.attempt.retryable is True
    assert len(server.requests) == 1


def test_dropped_connections_are_retried(tmp_path: Path) -> None:
    server = Server(Reply(drop=httpx2.RemoteProtocolError), Reply(drop=httpx2.ConnectError), OK)
    outcome = call(tmp_path, server, agent_settings=settings(retries=2))

    assert outcome.attempt.status is TaskStatus.SUCCESS
    assert outcome.stdout == "Yes"
    assert len(server.requests) == 3
    first, second, third = outcome.exchanges
    assert first["status"] is None
    assert first["error"] == (
        "connection failed: RemoteProtocolError: the server closed the connection"
    )
    assert second["error"] == "connection failed: ConnectError: the server closed the connection"
    assert third["status"] == 200


def test_dropped_connection_every_time(tmp_path: Path) -> None:
    server = Server(Reply(drop=httpx2.ReadError))
    outcome = call(tmp_path, server, agent_settings=settings(retries=1))
    assert outcome.attempt.status is TaskStatus.FAILURE
    assert outcome.attempt.reason == (
        "connection failed: ReadError: the server closed the connection"
    )
    assert outcome.attempt.retryable is True
    assert len(server.requests) == 2
    assert outcome.agent["response"] is None


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(401, error_body("Incorrect API key provided", "invalid_api_key")),
         "HTTP 401: Incorrect API key provided"),
        (Reply(403, error_body("Forbidden")), "HTTP 403: Forbidden"),
        (Reply(404, error_body("The model `nope` does not exist")),
         "HTTP 404 from http://llm.test/v1/chat/completions: The model `nope` does not exist"),
        (Reply(400, error_body("max_tokens is too large", "invalid_request_error")),
         "HTTP 400: max_tokens is too large"),
        (Reply(422, text="unprocessable"), "HTTP 422: unprocessable"),
        (Reply(429, error_body("You exceeded your current quota", "insufficient_quota"),
               headers={"retry-after": "1"}),
         "HTTP 429: You exceeded your current quota"),
    ],
    ids=["401", "403", "404", "400", "422", "quota"],
)
def test_errors_that_cannot_succeed_are_not_retried(
    tmp_path: Path, reply: Reply, reason: str, backoffs: list[int]
) -> None:
    server = Server(reply, OK)
    outcome = call(tmp_path, server, agent_settings=settings(retries=3))

    assert outcome.attempt.status is TaskStatus.FAILURE
    assert outcome.attempt.reason == reason
    assert outcome.attempt.retryable is False
    assert len(server.requests) == 1
    assert len(outcome.exchanges) == 1
    assert backoffs == []
    assert outcome.stdout == ""  # created empty: the records name it
    assert outcome.stderr == f"request 1: {reason}\n"


# --- pacing across tasks ---------------------------------------------------------------


def test_a_429_pauses_the_next_request_of_other_tasks(tmp_path: Path) -> None:
    limited = Reply(429, error_body("Slow down"), headers={"retry-after-ms": "300"},
                    delay=0.02)
    server = Server(route={
        "first": [limited, OK],
        # in flight when the 429 comes: its retry is the "next request"
        "second": [Reply(500, error_body("busy"), delay=0.1), OK],
    })
    specs = [spec_of("first"), spec_of("second", seq=2)]
    plans = [plan_of(tmp_path, 1), plan_of(tmp_path, 2)]
    first, second = anyio.run(_run_many, settings(), server, specs, plans)

    assert first.status is TaskStatus.SUCCESS
    assert second.status is TaskStatus.SUCCESS
    by_prompt = [(prompt_of(sent.body), sent.at) for sent in server.requests]
    prompts = [prompt for prompt, _ in by_prompt]
    assert prompts[:2] == ["first", "second"]
    assert sorted(prompts[2:]) == ["first", "second"]  # both retries wait out the pause
    limited_at = by_prompt[0][1]
    assert by_prompt[1][1] - limited_at < 0.05  # both started together
    retries = [at - limited_at for _, at in by_prompt[2:]]
    # nothing went out while the pause lasted: not the retry, not the other task's
    assert min(retries) >= 0.3, retries
    assert max(retries) < 1.0, retries
    assert second.agent is not None
    assert second.agent["exchanges"][1]["waited_s"] >= 0.1


def test_a_429_on_the_last_try_still_pauses_other_tasks(tmp_path: Path) -> None:
    limited = Reply(429, error_body("Slow down"), headers={"retry-after-ms": "300"})
    server = Server(route={"first": [limited], "second": [OK]})

    async def scenario() -> None:
        executor = AgentExecutor(settings(retries=0), ProcessExecutor(),
                                 transport=server.transport(), backoff=SHORT_BACKOFF)
        async with executor.session():
            first = await executor.run_attempt(spec_of("first"), plan_of(tmp_path, 1))
            assert first.status is TaskStatus.FAILURE
            await executor.run_attempt(spec_of("second", seq=2), plan_of(tmp_path, 2))

    anyio.run(scenario)
    limited_at, second_at = (sent.at for sent in server.requests)
    assert second_at >= limited_at + 0.3


def test_provider_rate_caps_requests(tmp_path: Path) -> None:
    limited = Provider("local", "openai", OPENAI_BASE, "FANOUT_TEST_KEY", True,
                       Rate(2, 0.2, "2/0.2s"))
    server = Server(OK)
    specs = [spec_of(f"p{seq}", seq=seq) for seq in range(1, 5)]
    plans = [plan_of(tmp_path, seq) for seq in range(1, 5)]
    attempts = anyio.run(
        _run_many, settings(providers={"local": limited}), server, specs, plans
    )
    assert all(attempt.status is TaskStatus.SUCCESS for attempt in attempts)
    times = sorted(sent.at for sent in server.requests)
    assert len(times) == 4
    assert times[2] - times[0] >= 0.2 - 1e-6
    assert times[3] - times[1] >= 0.2 - 1e-6


# --- timeouts --------------------------------------------------------------------------


def test_timeout_covers_a_slow_reply(tmp_path: Path) -> None:
    server = Server(Reply(body=openai_body(), delay=5))
    outcome = call(tmp_path, server, timeout=0.2)

    assert outcome.attempt.status is TaskStatus.TIMEOUT
    assert outcome.attempt.reason == "timed out after 200ms"
    assert outcome.attempt.retryable is True
    assert 0.2 <= outcome.seconds < 2.0
    assert len(server.requests) == 1
    [exchange] = outcome.exchanges  # the request cut short is on the record
    assert exchange["status"] is None
    assert exchange["error"] == "timed out after 200ms"
    assert 150 <= exchange["duration_ms"] < 2000
    assert outcome.stdout == ""  # created empty: the records name it
    assert outcome.stderr == "timed out after 200ms\n"


def test_timeout_covers_waits_between_tries(tmp_path: Path) -> None:
    server = Server(Reply(429, error_body("Slow down"), headers={"retry-after": "30"}), OK)
    outcome = call(tmp_path, server, timeout=0.2)

    assert outcome.attempt.status is TaskStatus.TIMEOUT
    assert outcome.attempt.reason == "timed out after 200ms"
    assert outcome.seconds < 2.0
    assert len(server.requests) == 1
    assert [e["retry_after_s"] for e in outcome.exchanges] == [30.0]


# --- errors before any request ---------------------------------------------------------


def test_unknown_provider_is_an_error(tmp_path: Path) -> None:
    server = Server(OK)
    outcome = call(tmp_path, server, spec_of(provider="nowhere"))
    assert outcome.attempt.status is TaskStatus.ERROR
    assert outcome.attempt.reason.startswith("unknown provider 'nowhere' (known: claude, local); "
                                             "to define it give --provider NAME --base-url URL")
    assert outcome.attempt.retryable is False
    assert outcome.attempt.agent is None
    assert server.requests == []
    assert outcome.stderr == outcome.attempt.reason + "\n"


def test_missing_model_is_an_error(tmp_path: Path) -> None:
    server = Server(OK)
    outcome = call(tmp_path, server, agent_settings=settings(model=None))
    assert outcome.attempt.status is TaskStatus.ERROR
    assert outcome.attempt.reason == (
        "no model: set --model, model in [agent] or the task, or FANOUT_MODEL"
    )
    assert outcome.attempt.retryable is False
    assert server.requests == []


def test_missing_key_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = Server(OK)
    builtin = settings(provider="openai", providers=builtin_providers({}))
    outcome = call(tmp_path, server, agent_settings=builtin)
    assert outcome.attempt.status is TaskStatus.ERROR
    assert outcome.attempt.reason == "no API key: set OPENAI_API_KEY (provider openai)"
    assert outcome.attempt.retryable is False
    assert server.requests == []


def test_empty_key_counts_as_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANOUT_TEST_KEY", "")
    server = Server(OK)
    outcome = call(tmp_path, server)
    assert outcome.attempt.status is TaskStatus.ERROR
    assert outcome.attempt.reason == "no API key: set FANOUT_TEST_KEY (provider local)"
    assert server.requests == []


def test_unreadable_attachment_is_an_error(tmp_path: Path) -> None:
    server = Server(OK)
    outcome = call(tmp_path, server, spec_of(cwd=str(tmp_path), attach=("missing.md",)))
    assert outcome.attempt.status is TaskStatus.ERROR
    missing = os.path.join(str(tmp_path), "missing.md")
    assert outcome.attempt.reason == (
        f"cannot read attachment {missing}: No such file or directory"
    )
    assert outcome.attempt.retryable is False
    assert server.requests == []


def test_oversized_attachment_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_bytes(b"x" * (ATTACH_LIMIT_BYTES + 1))
    server = Server(OK)
    outcome = call(tmp_path, server, spec_of(cwd=str(tmp_path), attach=("big.txt",)))
    assert outcome.attempt.status is TaskStatus.ERROR
    assert outcome.attempt.reason == (
        f"attachment big.txt is {ATTACH_LIMIT_BYTES + 1} bytes; "
        f"the limit is {ATTACH_LIMIT_BYTES} bytes"
    )
    assert server.requests == []


# --- attachments -----------------------------------------------------------------------


def test_attachments_follow_the_prompt(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    (work / "notes.md").write_text("line one\nline two\n\n")
    (work / "docs" / "b.txt").write_bytes(b"caf\xc3\xa9 \xff")
    # the process runs in tmp_path: the files are found through the task's cwd
    assert not Path("notes.md").exists()
    server = Server(OK)
    spec = spec_of("Summarise", cwd=str(work), attach=("notes.md", "docs/b.txt"))
    outcome = call(tmp_path, server, spec)

    assert outcome.attempt.status is TaskStatus.SUCCESS
    assert prompt_of(server.requests[0].body) == (
        'Summarise\n\n<file path="notes.md">\nline one\nline two\n</file>'
        '\n\n<file path="docs/b.txt">\ncafé \ufffd\n</file>'
    )


# --- classify_response and retry_after (pure) -----------------------------------------


def seconds_after(headers: dict[str, str]) -> float | None:
    return classify_response("openai", 429, headers, "").retry_after


def test_retry_after_in_seconds() -> None:
    assert seconds_after({"Retry-After": "2"}) == 2.0
    assert seconds_after({"retry-after": " 1.5 "}) == 1.5
    assert seconds_after({"retry-after": "0"}) == 0.0
    assert seconds_after({"retry-after": "600"}) == 600.0


def test_retry_after_as_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = seconds_after({"Retry-After": when})
    assert seconds is not None
    assert 28 <= seconds <= 31


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"retry-after": "-1"},
        {"retry-after": "601"},
        {"retry-after": "inf"},
        {"retry-after": "nan"},
        {"retry-after": "soon"},
        {"retry-after": email.utils.formatdate(time.time() - 60, usegmt=True)},
        {"retry-after": email.utils.formatdate(time.time() + 3600, usegmt=True)},
        {"retry-after-ms": "600001"},
        {"retry-after-ms": "-5"},
    ],
    ids=["absent", "negative", "huge", "inf", "nan", "words", "past-date", "far-date",
         "huge-ms", "negative-ms"],
)
def test_retry_after_none(headers: dict[str, str]) -> None:
    assert seconds_after(headers) is None
    assert retry_after({name.lower(): value for name, value in headers.items()}) is None


def test_retry_after_ms_comes_first() -> None:
    assert seconds_after({"retry-after-ms": "250", "retry-after": "7"}) == 0.25
    assert seconds_after({"Retry-After-Ms": "1500"}) == 1.5
    assert seconds_after({"retry-after-ms": "soon", "retry-after": "3"}) == 3.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "7"}) == 0.25


@pytest.mark.parametrize("status", [408, 409, 429, 500, 501, 502, 503, 504, 529, 599])
def test_transient_statuses_are_retried(status: int) -> None:
    outcome = classify_response("openai", status, {}, json.dumps(error_body("try later")))
    assert outcome.status is TaskStatus.FAILURE
    assert outcome.retry is True
    assert outcome.reason == f"HTTP {status}: try later"
    assert outcome.http_status == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    outcome = classify_response("anthropic", status, {}, json.dumps(error_body("no")))
    assert outcome.status is TaskStatus.FAILURE
    assert outcome.retry is False


@pytest.mark.parametrize(
    "error",
    [
        {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"},
        {"message": "quota", "type": "insufficient_quota", "code": None},
        {"message": "quota", "code": "billing_hard_limit_reached"},
    ],
)
def test_exhausted_quota_is_not_retried(error: dict[str, Any]) -> None:
    outcome = classify_response("openai", 429, {"retry-after": "5"}, json.dumps({"error": error}))
    assert outcome.retry is False
    assert outcome.reason == "HTTP 429: quota"


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, json.dumps({"error": "plain string"}), "HTTP 500: plain string"),
        (502, "Bad Gateway\n<html>\n  nginx</html>", "HTTP 502: Bad Gateway <html> nginx</html>"),
        (503, "", "HTTP 503: no message"),
        (500, json.dumps({"other": "x"}), 'HTTP 500: {"other": "x"}'),
        (500, json.dumps({"error": {"message": "m" * 400}}), "HTTP 500: " + "m" * 299 + "…"),
    ],
    ids=["string-error", "html", "empty", "other-json", "long"],
)
def test_error_reasons(status: int, body: str, reason: str) -> None:
    assert classify_response("openai", status, {}, body).reason == reason


@pytest.mark.parametrize(
    ("api", "document", "text"),
    [
        ("openai", {"choices": [{"message": {"content": "Yes"}}]}, "Yes"),
        ("openai", {"choices": [{"message": {"content": ""}}]}, ""),
        ("openai", {"choices": [{"message": {"content": [
            {"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}}]}, "Hello"),
        ("anthropic", {"content": [{"type": "thinking", "thinking": "hmm"},
                                   {"type": "text", "text": "Ye"},
                                   {"type": "text", "text": "s"}]}, "Yes"),
        ("anthropic", {"content": []}, ""),
    ],
    ids=["string", "empty-string", "openai-parts", "anthropic-blocks", "anthropic-empty"],
)
def test_reply_text(api: str, document: dict[str, Any], text: str) -> None:
    outcome = classify_response(api, 200, {}, json.dumps(document))
    assert outcome.status is TaskStatus.SUCCESS
    assert outcome.text == text
    assert outcome.response == document


@pytest.mark.parametrize(
    ("api", "body"),
    [
        ("openai", json.dumps({"choices": []})),
        ("openai", json.dumps({"choices": [{"message": {"content": None}}]})),
        ("openai", json.dumps({"choices": [{"message": "Yes"}]})),
        ("openai", json.dumps({"content": [{"type": "text", "text": "wrong api"}]})),
        ("anthropic", json.dumps({"content": [{"type": "tool_use", "id": "t"}]})),
        ("anthropic", json.dumps({"content": "Yes"})),
        ("anthropic", json.dumps(openai_body())),
        ("openai", "<html>OK</html>"),
        ("openai", ""),
        ("openai", "[1, 2]"),
    ],
)
def test_reply_without_text_is_a_failure(api: str, body: str) -> None:
    outcome = classify_response(api, 200, {}, body)
    assert outcome.status is TaskStatus.FAILURE
    assert outcome.retry is False
    assert outcome.text is None
    assert outcome.reason.startswith("HTTP 200: the reply has no text (")


@pytest.mark.parametrize(
    "parts",
    [
        [{"type": "text", "text": None}],
        [{"type": "refusal", "refusal": "I can't help with that."}],
    ],
    ids=["text-null", "refusal-only"],
)
def test_content_parts_without_text_are_a_failure(parts: list[dict[str, Any]]) -> None:
    body = json.dumps({"choices": [{"message": {"content": parts}}]})
    outcome = classify_response("openai", 200, {}, body)
    assert outcome.status is TaskStatus.FAILURE
    assert outcome.reason.startswith("HTTP 200: the reply has no text (")


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    for failures, low, high in ((1, 0.5, 1.0), (2, 1.0, 2.0), (4, 4.0, 8.0), (30, 30.0, 60.0)):
        for _ in range(20):
            assert low <= HTTP_BACKOFF.delay(failures) <= high


# --- RateLimiter and Pause -------------------------------------------------------------


def test_rate_limiter_spaces_starts_evenly() -> None:
    rate = Rate(3, 0.3, "3/0.3s")  # one start every 0.1 s, burst 1

    async def scenario() -> tuple[list[float], list[float]]:
        limiter = RateLimiter(rate)
        starts: list[float] = []
        waits: list[float] = []

        async def take() -> None:
            waits.append(await limiter.acquire())
            starts.append(anyio.current_time())

        async with anyio.create_task_group() as group:
            for _ in range(7):
                group.start_soon(take)
        return starts, waits

    began = time.monotonic()
    starts, waits = anyio.run(scenario)
    elapsed = time.monotonic() - began

    assert len(starts) == 7
    assert 0.6 <= elapsed < 2.0
    starts.sort()
    assert starts[-1] - starts[0] >= 0.6 - 1e-6
    for index in range(len(starts) - rate.count):
        # any rate.count + 1 starts span at least one period
        assert starts[index + rate.count] - starts[index] >= rate.period - 1e-6
    for earlier, later in itertools.pairwise(starts):
        assert later - earlier >= rate.period / rate.count - 1e-6  # evenly, not 3 at once
    assert sorted(waits)[:2] == pytest.approx([0, 0.1], abs=0.05)
    assert max(waits) >= 0.6 - 0.05


def test_rate_limiter_cancelled_waiter_takes_no_slot() -> None:
    async def scenario() -> float:
        limiter = RateLimiter(Rate(1, 0.2, "1/0.2s"))
        await limiter.acquire()
        with anyio.move_on_after(0.05):
            await limiter.acquire()  # cancelled while waiting
        began = anyio.current_time()
        await limiter.acquire()
        return anyio.current_time() - began

    waited = anyio.run(scenario)
    assert 0.1 <= waited < 0.2  # the slot freed at 0.2 s, not 0.4 s


def test_pause_extend_and_wait() -> None:
    async def scenario() -> None:
        pause = Pause()
        assert pause.remaining == 0
        assert await pause.wait() == 0
        pause.extend(0.1)
        pause.extend(0.01)  # a shorter pause does not cut the longer one
        assert 0.05 < pause.remaining <= 0.1
        began = anyio.current_time()
        waited = await pause.wait()
        assert anyio.current_time() - began >= 0.1 - 1e-3
        assert waited == pytest.approx(0.1, abs=0.02)
        assert pause.remaining == 0

    anyio.run(scenario)


def test_pause_extended_while_waiting() -> None:
    async def scenario() -> float:
        pause = Pause()
        pause.extend(0.05)

        async def push() -> None:
            await anyio.sleep(0.03)
            pause.extend(0.1)  # now ends at 0.13 s

        began = anyio.current_time()
        async with anyio.create_task_group() as group:
            group.start_soon(push)
            await pause.wait()
        return anyio.current_time() - began

    assert 0.13 - 1e-3 <= anyio.run(scenario) < 0.5


# --- parse_rate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "period", "normalised"),
    [
        ("60/min", 60, 60.0, "60/min"),
        ("5/s", 5, 1.0, "5/s"),
        ("1000/h", 1000, 3600.0, "1000/h"),
        ("10/30s", 10, 30.0, "10/30s"),
        ("3/0.3s", 3, 0.3, "3/0.3s"),
        ("2/500ms", 2, 0.5, "2/500ms"),
        (" 60 / MIN ", 60, 60.0, "60/min"),
        ("5/sec", 5, 1.0, "5/sec"),
        ("5/seconds", 5, 1.0, "5/seconds"),
        ("5/minutes", 5, 60.0, "5/minutes"),
        ("5/hours", 5, 3600.0, "5/hours"),
        ("1/day", 1, 86400.0, "1/day"),
        ("1/1h30m", 1, 5400.0, "1/1h30m"),
    ],
)
def test_parse_rate_accepts(text: str, count: int, period: float, normalised: str) -> None:
    rate = parse_rate(text)
    assert (rate.count, rate.text) == (count, normalised)
    assert rate.period == pytest.approx(period)
    assert str(rate) == normalised
    assert parse_rate(rate) is rate
    assert parse_rate(str(rate)) == rate  # what the manifest keeps reads back the same


@pytest.mark.parametrize(
    "value",
    ["", "60", "60/", "/min", "0/min", "-1/s", "1.5/s", "x/s", "5/fortnight", "5/0s",
     "5/-1s", "5/inf", "5/nan", "5/s/s", "5/ms", 60, None, True, 1.5],
)
def test_parse_rate_rejects(value: object) -> None:
    with pytest.raises(ValueError, match=r"rate"):
        parse_rate(value)


# --- settings layers -------------------------------------------------------------------


def fail(key_path: tuple[str, ...], problem: str) -> Exception:
    return ValueError(f"{'.'.join(key_path)}: {problem}")


def test_command_line_beats_agent_table_beats_environment() -> None:
    environ = {"FANOUT_MODEL": "env-model", "FANOUT_PROVIDER": "anthropic"}
    table = parse_agent_table({"model": "file-model", "provider": "openai"}, fail)

    only_env = build_settings({}, {}, environ)
    assert (only_env.provider, only_env.model) == ("anthropic", "env-model")
    with_file = build_settings(table, {}, environ)
    assert (with_file.provider, with_file.model) == ("openai", "file-model")
    with_cli = build_settings(table, {"model": "cli-model", "provider": "anthropic"}, environ)
    assert (with_cli.provider, with_cli.model) == ("anthropic", "cli-model")
    unset_cli = build_settings(table, {"model": None, "provider": None}, environ)
    assert (unset_cli.provider, unset_cli.model) == ("openai", "file-model")
    defaults = build_settings({}, {}, {})
    assert (defaults.provider, defaults.model, defaults.retries) == ("openai", None, 4)


def test_command_line_values_are_parsed() -> None:
    built = build_settings(
        parse_agent_table({"temperature": 1, "max_tokens": 10, "retries": 1}, fail),
        {"temperature": "0.5", "max_tokens": "64", "system": "Be brief."},
        {},
    )
    assert (built.temperature, built.max_tokens, built.system, built.retries) == (
        0.5, 64, "Be brief.", 1,
    )
    with pytest.raises(ValueError, match=r"^--max-tokens: expected a whole number from 1 to"):
        build_settings({}, {"max_tokens": "0"}, {})
    with pytest.raises(ValueError, match=r"^--temperature: expected a temperature"):
        build_settings({}, {"temperature": "3"}, {})
    with pytest.raises(ValueError, match=r"^--base-url: expected an http\(s\) URL"):
        build_settings({}, {"base_url": "ftp://x"}, {})
    with pytest.raises(ValueError, match=r"^--provider: unknown provider 'nowhere'"):
        build_settings({}, {"provider": "nowhere", "base_url": "http://x.test"}, {})


def test_base_url_on_a_builtin_provider_makes_the_key_optional(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    request = AgentCall("Hi", provider="openai", model="m")

    plain = build_settings({}, {}, {})
    assert plain.providers["openai"].key_required is True
    assert plain.problem(request) == "no API key: set OPENAI_API_KEY (provider openai)"

    local = build_settings({}, {"base_url": "http://127.0.0.1:8080/v1"}, {})
    provider = local.providers["openai"]
    assert provider.base_url == "http://127.0.0.1:8080/v1"
    assert provider.endpoint == "http://127.0.0.1:8080/v1/chat/completions"
    assert provider.key_required is False
    assert local.problem(request) is None

    env_url = build_settings({}, {}, {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9/"})
    assert env_url.providers["anthropic"].key_required is False
    assert env_url.providers["anthropic"].endpoint == "http://127.0.0.1:9/v1/messages"


def test_base_url_keeps_a_named_providers_key_required() -> None:
    table = parse_agent_table(
        {"provider": "local", "providers": {"local": {
            "api": "openai", "base_url": "http://a.test/v1", "api_key_env": "LOCAL_KEY"}}},
        fail,
    )
    built = build_settings(table, {"base_url": "http://b.test/v1"}, {})
    assert built.providers["local"].base_url == "http://b.test/v1"
    assert built.providers["local"].key_required is True


def test_named_provider_never_gets_the_openai_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    table = parse_agent_table(
        {
            "provider": "local",
            "model": "SmolLM2",
            "providers": {
                "local": {"api": "openai", "base_url": "http://127.0.0.1:8080/v1"},
                "local-claude": {"api": "anthropic", "base_url": "http://127.0.0.1:8081"},
            },
        },
        fail,
    )
    built = build_settings(table, {}, os.environ)
    local = built.providers["local"]
    assert (local.api_key_env, local.key_required, local.api_key()) == (None, False, None)
    assert built.problem(AgentCall("Hi", provider="local", model="m")) is None

    server = Server(OK, Reply(body=anthropic_body()))
    call(tmp_path, server, agent_settings=built)
    call(tmp_path, server, spec_of(provider="local-claude"), agent_settings=built)
    assert [sent.url for sent in server.requests] == [
        "http://127.0.0.1:8080/v1/chat/completions", "http://127.0.0.1:8081/v1/messages",
    ]
    for sent in server.requests:
        assert "authorization" not in sent.headers
        assert "x-api-key" not in sent.headers
        assert KEY.encode() not in sent.raw


def test_agent_table_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match=r"^colour: unknown key 'colour' in \[agent\]"):
        parse_agent_table({"colour": "red"}, fail)
    with pytest.raises(ValueError, match=r"^retries: \[agent\] retries: expected a whole"):
        parse_agent_table({"retries": 21}, fail)
    with pytest.raises(ValueError, match=r"^providers\.x\.api: \[agent\.providers\.x\]: api"):
        parse_agent_table({"providers": {"x": {"api": "gemini"}}}, fail)
    with pytest.raises(ValueError, match=r"^providers\.x\.rate: .*rate: expected a rate"):
        parse_agent_table({"providers": {"x": {"api": "openai", "rate": "often"}}}, fail)
    with pytest.raises(ValueError, match=r"^providers\.x\.base_url: "):
        parse_agent_table({"providers": {"x": {"api": "openai", "base_url": "localhost"}}}, fail)


def test_settings_values_round_trips_the_document() -> None:
    table = parse_agent_table(
        {
            "provider": "local",
            "model": "SmolLM2",
            "system": "Answer in one word.",
            "temperature": 0,
            "max_tokens": 64,
            "retries": 1,
            "rate": "100/min",
            "providers": {"local": {"api": "openai", "base_url": "http://127.0.0.1:8080/v1",
                                    "api_key_env": "LOCAL_KEY", "rate": "60/min"}},
        },
        fail,
    )
    original = build_settings(table, {}, {})
    document = json.loads(json.dumps(original.document()))  # as the manifest keeps it
    assert "LOCAL_KEY" in json.dumps(document)
    restored = build_settings(settings_values(document), {}, {})
    assert restored == original
    assert restored.document() == document
    assert restored.providers["local"].rate == Rate(60, 60.0, "60/min")


def test_settings_values_leaves_out_what_it_cannot_read() -> None:
    values = settings_values({
        "model": "m",
        "temperature": "hot",
        "retries": -1,
        "rate": "often",
        "providers": {"broken": {"api": "openai"}, "bad-rate": {
            "api": "openai", "base_url": "http://x.test", "rate": "often"}},
    })
    assert values == {"model": "m", "providers": {}}
    assert settings_values({"providers": None}) == {"providers": {}}
    assert settings_values({"providers": ["openai"]}) == {"providers": {}}


def test_settings_values_skips_a_provider_that_is_not_a_table() -> None:
    values = settings_values({"providers": {"odd": "text", "none": None}})
    assert values == {"providers": {}}


def test_a_fastapi_detail_body_is_the_reason() -> None:
    """llama.cpp's Python server answers a wrong key with {"detail": ...}."""
    outcome = classify_response("openai", 401, {}, '{"detail": "Invalid API key"}')
    assert outcome.status is TaskStatus.FAILURE
    assert outcome.reason == "HTTP 401: Invalid API key"
    assert outcome.retry is False


def test_agent_table_takes_base_url_and_the_command_line_wins() -> None:
    table = parse_agent_table({"base_url": "http://127.0.0.1:8080/v1", "model": "m"}, fail)
    from_file = build_settings(table, {}, {})
    assert from_file.providers["openai"].base_url == "http://127.0.0.1:8080/v1"
    assert from_file.providers["openai"].key_required is False
    from_cli = build_settings(table, {"base_url": "http://127.0.0.1:9090/v1"}, {})
    assert from_cli.providers["openai"].base_url == "http://127.0.0.1:9090/v1"
    with pytest.raises(ValueError, match=r"^base_url: \[agent\] base_url: expected an http"):
        parse_agent_table({"base_url": "localhost:8080"}, fail)


def test_agent_table_accepts_every_agent_option_of_the_command_line() -> None:
    from fanout_cli.options import AGENT_KEYS

    samples = {"provider": "openai", "model": "m", "system": "s", "temperature": 0.5,
               "max_tokens": 8, "base_url": "http://127.0.0.1:1/v1", "http_retries": 2,
               "api": "openai", "api_key_env": "LOCAL_KEY"}  # fmt: skip
    assert set(samples) == set(AGENT_KEYS)
    assert parse_agent_table(samples, fail) == samples


def test_a_reply_nested_too_deep_is_a_failed_task_not_a_crash() -> None:
    """A hostile or broken server's JSON nested past the parser's depth is text the
    task failed on, never an internal error of fanout."""
    outcome = classify_response("openai", 200, {}, "[" * 100_000 + "]" * 100_000)
    assert outcome.status is TaskStatus.FAILURE
    assert "no text" in outcome.reason


def test_trusted_certificates_are_loaded_only_for_https_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading them takes about 25 ms: a run that calls only http servers (a local
    model) never does, and one with https calls does it once."""
    loaded: list[object] = []
    load = httpx2.create_ssl_context

    def counted(*args: Any, **kwargs: Any) -> Any:
        loaded.append(args)
        return load(*args, **kwargs)

    monkeypatch.setattr(httpx2, "create_ssl_context", counted)
    for name in [name for name in os.environ if name.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)  # a proxy may be reached over TLS: then they are loaded
    plain = call(tmp_path, Server(OK))
    assert (plain.attempt.status, plain.stdout, loaded) == (TaskStatus.SUCCESS, "Yes", [])

    secure = Provider("secure", "openai", "https://llm.test/v1", "FANOUT_TEST_KEY", True)
    both = settings(providers={"local": LOCAL, "secure": secure})
    specs = [spec_of(seq=seq, provider="secure" if seq % 2 else "local") for seq in range(1, 5)]
    plans = [plan_of(tmp_path, seq) for seq in range(1, 5)]
    attempts = anyio.run(_run_many, both, Server(OK), specs, plans)
    assert [attempt.status for attempt in attempts] == [TaskStatus.SUCCESS] * 4
    assert len(loaded) == 1
