"""The fake LLM server itself, driven by the standard library's HTTP clients."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fake_llm import (
    Behaviour,
    Drop,
    FakeLLM,
    FakeLLMError,
    Hold,
    Reply,
    Slow,
    Status,
    Usage,
    fake_llm_fixture,  # noqa: F401 -- the `fake_llm` fixture, found by pytest by name
    insufficient_quota,
    invalid_api_key,
    overloaded,
    rate_limited,
    server_error,
)

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-fake"}


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: dict[str, str]
    body: Any


def call(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    data = json.dumps(body).encode() if body is not None else None
    connection.request(
        method, path, body=data, headers={"content-type": "application/json", **(headers or {})}
    )
    response = connection.getresponse()
    raw = response.read()
    is_json = response.getheader("content-type", "").startswith("application/json")
    return Answer(
        response.status,
        response.reason,
        {name.lower(): value for name, value in response.getheaders()},
        json.loads(raw) if is_json else raw.decode(),
    )


def request(
    server: FakeLLM,
    method: str,
    path: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    with closing(http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)) as connection:
        return call(connection, method, path, body, headers)


def openai_body(prompt: str, model: str = "gpt-test") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}]}


def anthropic_body(prompt: str, model: str = "claude-test") -> dict[str, Any]:
    return {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}


def chat(server: FakeLLM, prompt: str) -> Answer:
    return request(server, "POST", OPENAI, openai_body(prompt))


def messages(server: FakeLLM, prompt: str) -> Answer:
    return request(server, "POST", ANTHROPIC, anthropic_body(prompt), ANTHROPIC_HEADERS)


def text_of(answer: Answer) -> str:
    if "choices" in answer.body:
        text: str = answer.body["choices"][0]["message"]["content"]
    else:
        text = answer.body["content"][0]["text"]
    return text


# --- reply shapes -------------------------------------------------------------------


def test_openai_reply_has_the_chat_completions_shape(fake_llm: FakeLLM) -> None:
    http_request = urllib.request.Request(
        fake_llm.openai_url + "/chat/completions",
        data=json.dumps({
            "model": "SmolLM2",
            "messages": [
                {"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": "Is 7 prime?"},
            ],
        }).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer sk-fake"},
    )
    with urllib.request.urlopen(http_request, timeout=5) as response:
        body = json.loads(response.read())
        headers = {name.lower(): value for name, value in response.getheaders()}

    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["model"] == "SmolLM2"
    assert body["choices"][0]["message"] == {
        "role": "assistant", "content": "echo: Is 7 prime?", "refusal": None
    }
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert headers["x-ratelimit-remaining-requests"] == "59"
    assert headers["x-ratelimit-limit-requests"] == "60"
    assert "x-request-id" in headers


def test_anthropic_reply_has_the_messages_shape(fake_llm: FakeLLM) -> None:
    body = anthropic_body("ignored")
    body["messages"] = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "Summarise"},
                                     {"type": "text", "text": "this file"}]},
    ]
    answer = request(fake_llm, "POST", ANTHROPIC, body, ANTHROPIC_HEADERS)

    assert answer.status == 200
    assert answer.body["id"].startswith("msg_")
    assert answer.body["type"] == "message"
    assert answer.body["role"] == "assistant"
    assert answer.body["model"] == "claude-test"
    assert answer.body["content"] == [{"type": "text", "text": "echo: Summarise\nthis file"}]
    assert answer.body["stop_reason"] == "end_turn"
    assert answer.body["usage"] == {"input_tokens": 12, "output_tokens": 3}
    assert answer.headers["anthropic-ratelimit-requests-remaining"] == "59"
    assert "anthropic-ratelimit-tokens-reset" in answer.headers
    assert "request-id" in answer.headers


def test_models_are_listed_in_either_shape() -> None:
    with FakeLLM(models=["a", "b"]) as server:
        openai = request(server, "GET", "/v1/models")
        anthropic = request(server, "GET", "/v1/models", headers=ANTHROPIC_HEADERS)

    assert openai.body["object"] == "list"
    assert [model["id"] for model in openai.body["data"]] == ["a", "b"]
    assert openai.body["data"][0]["object"] == "model"
    assert [model["id"] for model in anthropic.body["data"]] == ["a", "b"]
    assert anthropic.body["has_more"] is False


def test_an_unknown_path_is_a_json_404(fake_llm: FakeLLM) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(fake_llm.base_url + "/v2/nothing", timeout=5)
    with raised.value as error:
        body = json.loads(error.read())

    assert error.code == 404
    assert body["error"]["message"] == "Invalid URL (GET /v2/nothing)"


def test_the_answer_function_computes_the_reply(fake_llm: FakeLLM) -> None:
    fake_llm.answer = lambda body: "yes" if "7" in body["messages"][-1]["content"] else "no"

    assert text_of(chat(fake_llm, "Is 7 prime?")) == "yes"
    assert text_of(messages(fake_llm, "Is 9 prime?")) == "no"


def test_reply_options_reach_the_body_and_headers(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        Reply("a", model="served-model", headers={"X-Extra": "1"}, finish_reason="length"),
        Reply("b", usage=None),
        Reply("c", usage=None),
        Reply("d", usage=Usage(input_tokens=5, output_tokens=None)),
    )
    first, second = chat(fake_llm, "x"), chat(fake_llm, "x")
    third, fourth = messages(fake_llm, "x"), chat(fake_llm, "x")

    assert first.body["model"] == "served-model"
    assert first.body["choices"][0]["finish_reason"] == "length"
    assert first.headers["x-extra"] == "1"
    assert "usage" not in second.body
    assert "usage" not in third.body
    assert fourth.body["usage"] == {"prompt_tokens": 5}


# --- scripting ----------------------------------------------------------------------


def test_script_is_consumed_in_arrival_order_then_the_answer_takes_over(
    fake_llm: FakeLLM,
) -> None:
    fake_llm.script(Reply("one"), Status(500), Reply("three"))

    statuses = [chat(fake_llm, f"q{number}").status for number in range(4)]

    assert statuses == [200, 500, 200, 200]
    assert [text_of(chat(fake_llm, "q")), fake_llm.remaining()] == ["echo: q", []]
    assert [request.body["messages"][0]["content"] for request in fake_llm.requests][:4] == [
        "q0", "q1", "q2", "q3"
    ]


def test_script_for_is_checked_before_the_fifo(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply("fifo"))
    fake_llm.script_for("nine", Reply("matched 1"), Status(503))
    fake_llm.script_for("nine", Reply("matched 2"))

    assert text_of(chat(fake_llm, "is nine prime")) == "matched 1"
    assert chat(fake_llm, "nine again").status == 503
    assert text_of(chat(fake_llm, "seven")) == "fifo"
    assert fake_llm.remaining() == [Reply("matched 2")]
    assert text_of(messages(fake_llm, "nine")) == "matched 2"
    assert text_of(chat(fake_llm, "nine")) == "echo: nine"


def test_models_and_unknown_paths_do_not_consume_the_script(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply("kept"))
    request(fake_llm, "GET", "/v1/models")
    request(fake_llm, "POST", "/v1/other", openai_body("x"))

    assert fake_llm.remaining() == [Reply("kept")]


# --- error statuses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "path", "status", "error", "headers"),
    [
        pytest.param(
            rate_limited(retry_after=1), OPENAI, 429,
            {"error": {"message": "Rate limit reached for requests", "type": "requests",
                       "param": None, "code": "rate_limit_exceeded"}},
            {"retry-after": "1", "x-ratelimit-remaining-requests": "0"},
            id="openai-429-retry-after",
        ),
        pytest.param(
            rate_limited(None, retry_after_ms=200), ANTHROPIC, 429,
            {"type": "error", "error": {"type": "rate_limit_error"}},
            {"retry-after-ms": "200", "anthropic-ratelimit-requests-remaining": "0"},
            id="anthropic-429-retry-after-ms",
        ),
        pytest.param(
            overloaded(), ANTHROPIC, 529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            {}, id="anthropic-529",
        ),
        pytest.param(
            server_error(), OPENAI, 500, {"error": {"type": "server_error"}}, {},
            id="openai-500",
        ),
        pytest.param(
            server_error(), ANTHROPIC, 500, {"type": "error", "error": {"type": "api_error"}}, {},
            id="anthropic-500",
        ),
        pytest.param(
            invalid_api_key(), OPENAI, 401,
            {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                       "param": None, "code": "invalid_api_key"}},
            {}, id="openai-401",
        ),
        pytest.param(
            invalid_api_key(), ANTHROPIC, 401,
            {"type": "error", "error": {"type": "authentication_error"}}, {},
            id="anthropic-401",
        ),
        pytest.param(
            insufficient_quota(), OPENAI, 429,
            {"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}, {},
            id="openai-429-quota",
        ),
        pytest.param(
            Status(418, headers={"X-Why": "tea"}), OPENAI, 418,
            {"error": {"type": "invalid_request_error", "message": "I'm a Teapot"}},
            {"x-why": "tea"}, id="any-code",
        ),
    ],
)
def test_statuses_carry_the_apis_error_body(
    fake_llm: FakeLLM,
    behaviour: Behaviour,
    path: str,
    status: int,
    error: dict[str, Any],
    headers: dict[str, str],
) -> None:
    fake_llm.script(behaviour)
    body = openai_body("x") if path == OPENAI else anthropic_body("x")

    answer = request(fake_llm, "POST", path, body, ANTHROPIC_HEADERS)

    assert answer.status == status
    assert_contains(answer.body, error)
    assert headers.items() <= answer.headers.items()
    assert fake_llm.requests[-1].status == status


def assert_contains(actual: Any, expected: Any) -> None:
    """Every key of `expected` (recursively) is in `actual` with the same value."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), actual
        for key, value in expected.items():
            assert key in actual, (key, actual)
            assert_contains(actual[key], value)
    else:
        assert actual == expected


def test_status_with_a_body_sends_it_verbatim(fake_llm: FakeLLM) -> None:
    fake_llm.script(Status(502, body="<html>Bad Gateway</html>"), Status(400, body={"odd": 1}))

    html, odd = chat(fake_llm, "x"), chat(fake_llm, "x")

    assert (html.status, html.body) == (502, "<html>Bad Gateway</html>")
    assert (odd.status, odd.body) == (400, {"odd": 1})


def test_529_has_a_reason_phrase(fake_llm: FakeLLM) -> None:
    fake_llm.script(overloaded())

    assert messages(fake_llm, "x").reason == "Overloaded"


# --- timing, drops, shutdown --------------------------------------------------------


def test_slow_waits_before_answering(fake_llm: FakeLLM) -> None:
    fake_llm.script(Slow(0.1, then=Reply("late")), Slow(0.01))

    started = time.monotonic()
    late = chat(fake_llm, "x")
    elapsed = time.monotonic() - started
    echoed = chat(fake_llm, "y")

    assert text_of(late) == "late"
    assert elapsed >= 0.1
    assert text_of(echoed) == "echo: y"
    first = fake_llm.requests[0]
    assert first.answered_at is not None
    assert first.answered_at - first.received_at >= 0.1


@pytest.mark.parametrize("pending", [Slow(30), Hold(threading.Event())], ids=["slow", "hold"])
def test_closing_with_a_reply_pending_is_prompt(pending: Behaviour) -> None:
    with ThreadPoolExecutor(1) as pool:
        server = FakeLLM().start()
        try:
            server.script(pending)
            waiting = pool.submit(chat, server, "x")
            server.wait_for_requests(1)
        finally:
            started = time.monotonic()
            server.close()
            elapsed = time.monotonic() - started

        assert elapsed < 1
        with pytest.raises(http.client.RemoteDisconnected):
            waiting.result(timeout=2)
    assert server.requests[0].status is None


def test_close_cuts_idle_keep_alive_connections() -> None:
    server = FakeLLM().start()
    with closing(http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)) as connection:
        assert call(connection, "POST", OPENAI, openai_body("x")).status == 200
        started = time.monotonic()
        server.close()
        assert time.monotonic() - started < 1
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            call(connection, "POST", OPENAI, openai_body("x"))


def test_drop_closes_the_connection_without_a_response(fake_llm: FakeLLM) -> None:
    fake_llm.script(Drop())

    started = time.monotonic()
    with pytest.raises(http.client.RemoteDisconnected):
        chat(fake_llm, "x")

    assert time.monotonic() - started < 1  # an error, not a hang until the client timeout
    assert fake_llm.requests[0].status is None
    assert fake_llm.requests[0].answered_at is not None
    assert chat(fake_llm, "x").status == 200


def test_partial_drop_cuts_the_body_short(fake_llm: FakeLLM) -> None:
    fake_llm.script(Drop(partial=True))

    with pytest.raises(http.client.IncompleteRead):
        chat(fake_llm, "x")


# --- recording ----------------------------------------------------------------------


def test_requests_are_recorded(fake_llm: FakeLLM) -> None:
    chat(fake_llm, "hello")
    messages(fake_llm, "bonjour")

    openai, anthropic = fake_llm.requests
    assert (openai.method, openai.path, openai.api, openai.prompt) == (
        "POST", OPENAI, "openai", "hello"
    )
    assert openai.body == openai_body("hello")
    assert openai.headers["content-type"] == "application/json"
    assert openai.status == 200
    assert openai.answered_at is not None
    assert openai.received_at <= openai.answered_at <= anthropic.received_at
    assert anthropic.headers["anthropic-version"] == "2023-06-01"
    assert (anthropic.api, anthropic.prompt) == ("anthropic", "bonjour")


def test_chunked_request_bodies_are_read(fake_llm: FakeLLM) -> None:
    chunks = iter([b'{"model": "m", "messages": ', b'[{"role": "user", "content": "hi"}]}'])
    with closing(http.client.HTTPConnection("127.0.0.1", fake_llm.port, timeout=5)) as connection:
        connection.request("POST", OPENAI, body=chunks, encode_chunked=True)
        response = connection.getresponse()
        body = json.loads(response.read())

    assert body["choices"][0]["message"]["content"] == "echo: hi"


def test_concurrent_requests_are_counted(fake_llm: FakeLLM) -> None:
    release = threading.Event()
    fake_llm.script(*[Hold(release) for _ in range(4)])

    with ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(chat, fake_llm, f"q{number}") for number in range(4)]
        fake_llm.wait_for_requests(4)
        assert fake_llm.in_flight == 4
        release.set()
        statuses = [answer.result(timeout=5).status for answer in answers]

    assert statuses == [200] * 4
    assert fake_llm.max_concurrent == 4
    assert fake_llm.in_flight == 0


def test_keep_alive_connections_are_observable(fake_llm: FakeLLM) -> None:
    with closing(http.client.HTTPConnection("127.0.0.1", fake_llm.port, timeout=5)) as pooled:
        for _ in range(3):
            assert call(pooled, "POST", OPENAI, openai_body("x")).status == 200
    chat(fake_llm, "on its own connection")

    ports = [recorded.client_port for recorded in fake_llm.requests]
    assert len(set(ports[:3])) == 1
    assert len(set(ports)) == 2
    assert fake_llm.max_concurrent == 1


def test_wait_for_requests_gives_up_after_its_timeout(fake_llm: FakeLLM) -> None:
    chat(fake_llm, "x")

    assert len(fake_llm.wait_for_requests(1, timeout=0.01)) == 1
    with pytest.raises(TimeoutError, match="1 request"):
        fake_llm.wait_for_requests(2, timeout=0.05)


def test_rate_limit_headers_count_requests_down(fake_llm: FakeLLM) -> None:
    remaining = [
        chat(fake_llm, "x").headers["x-ratelimit-remaining-requests"] for _ in range(3)
    ]

    assert remaining == ["59", "58", "57"]


# --- validation, keys, failures of the fake -----------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "headers", "message"),
    [
        (ANTHROPIC, anthropic_body("x"), {}, "anthropic-version: header is required"),
        (ANTHROPIC, openai_body("x"), ANTHROPIC_HEADERS, "max_tokens: Field required"),
        (OPENAI, {"model": "m"}, {}, "messages: Field required (a non-empty list)"),
        (OPENAI, {"messages": []}, {}, "model: Field required"),
        (OPENAI, {**openai_body("x"), "stream": True}, {}, "fake_llm: streaming replies"),
        (OPENAI, None, {}, "The request body is not a JSON object."),
    ],
)
def test_malformed_requests_get_a_400_without_using_the_script(
    fake_llm: FakeLLM, path: str, body: Any, headers: dict[str, str], message: str
) -> None:
    fake_llm.script(Reply("kept"))

    answer = request(fake_llm, "POST", path, body, headers)

    assert answer.status == 400
    assert message in json.dumps(answer.body)
    assert fake_llm.remaining() == [Reply("kept")]


def test_validation_can_be_switched_off() -> None:
    with FakeLLM(validate=False) as server:
        assert request(server, "POST", ANTHROPIC, {"messages": []}).status == 200


def test_an_api_key_is_checked_when_given() -> None:
    with FakeLLM(api_key="sk-right") as server:
        wrong = request(server, "POST", OPENAI, openai_body("x"), {"authorization": "Bearer no"})
        right = request(
            server, "POST", OPENAI, openai_body("x"), {"authorization": "Bearer sk-right"}
        )
        anthropic = messages(server, "x")  # sends x-api-key sk-ant-fake

    assert wrong.status == 401
    assert wrong.body["error"]["code"] == "invalid_api_key"
    assert right.status == 200
    assert anthropic.status == 401
    assert anthropic.body["error"]["type"] == "authentication_error"


def test_an_answer_that_raises_fails_the_test_on_exit() -> None:
    def broken(body: dict[str, Any]) -> str:
        raise KeyError("no such key")

    with pytest.raises(FakeLLMError, match="no such key"), FakeLLM() as server:
        server.answer = broken
        answer = chat(server, "x")
        assert answer.status == 500
        assert "answer() raised" in answer.body["error"]["message"]


def test_env_points_the_built_in_providers_here(fake_llm: FakeLLM) -> None:
    env = fake_llm.env()

    assert env["OPENAI_BASE_URL"] == fake_llm.openai_url == f"http://127.0.0.1:{fake_llm.port}/v1"
    assert env["ANTHROPIC_BASE_URL"] == fake_llm.anthropic_url == fake_llm.base_url
    assert env["OPENAI_API_KEY"] and env["ANTHROPIC_API_KEY"]
