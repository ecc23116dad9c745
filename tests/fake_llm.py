"""A scripted OpenAI / Anthropic HTTP server on 127.0.0.1 for agent-task tests.

    with FakeLLM() as server:
        server.script(rate_limited(retry_after=1), Reply("yes"))
        ...  # point the client at server.openai_url or server.anthropic_url
        assert [request.status for request in server.requests] == [429, 200]

A real socket and HTTP/1.1 keep-alive, so retries, dropped connections, pooling and
concurrency are exercised through the client's whole stack. Standard library only, so
the fake cannot share a bug with the HTTP client under test.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit

import pytest

Api: TypeAlias = Literal["openai", "anthropic"]

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
MODELS_PATH = "/v1/models"
DEFAULT_MODEL = "fake-model"

# How often a Hold checks for shutdown while it waits for its release event.
_HOLD_POLL_SECONDS = 0.02


# --- behaviours: what the server does with one request ------------------------------


@dataclass(frozen=True)
class Usage:
    """Token counts; a None count is left out of the reply body."""

    input_tokens: int | None = 12
    output_tokens: int | None = 3


DEFAULT_USAGE = Usage()


@dataclass(frozen=True)
class Reply:
    """HTTP 200 with `text` in the API's reply shape.

    `usage=None` leaves the usage object out of the body; `model=None` echoes the
    request's model; `finish_reason=None` is "stop" (OpenAI) or "end_turn" (Anthropic).
    """

    text: str
    usage: Usage | None = DEFAULT_USAGE
    model: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    finish_reason: str | None = None


@dataclass(frozen=True)
class Status:
    """An error status. `body=None` sends the API's own error shape, built from
    `error_type`, `message` and `error_code` (OpenAI's "code") or realistic defaults for
    the status code; a dict/list body is sent as JSON, a str body as text."""

    code: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error_type: str | None = None
    message: str | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class Slow:
    """Wait `seconds`, then do `then` (None: the default answer). Shutdown cuts the wait
    short and drops the connection."""

    seconds: float
    then: Behaviour | None = None


@dataclass(frozen=True)
class Hold:
    """Wait until the test sets `release`, then do `then`: deterministic concurrency
    tests without sleeps. Shutdown drops the connection."""

    release: threading.Event
    then: Behaviour | None = None


@dataclass(frozen=True)
class Drop:
    """Close the connection without a response (the client sees "server disconnected").
    `partial=True` sends the status line, headers and half the body first (the client
    sees an incomplete body)."""

    partial: bool = False


Behaviour: TypeAlias = Reply | Status | Slow | Hold | Drop


def rate_limited(retry_after: float | None = 1, *, retry_after_ms: int | None = None) -> Status:
    """429 rate limit, with `Retry-After` (seconds) and/or `retry-after-ms` headers."""
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["retry-after"] = _number(retry_after)
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    return Status(429, headers=headers)


def insufficient_quota() -> Status:
    """OpenAI's 429 that must not be retried: the account has no quota left."""
    return Status(
        429,
        error_type="insufficient_quota",
        error_code="insufficient_quota",
        message="You exceeded your current quota, please check your plan and billing details.",
    )


def invalid_api_key() -> Status:
    """401 with OpenAI's invalid_api_key body (Anthropic: authentication_error)."""
    return Status(401)


def overloaded() -> Status:
    """Anthropic's 529 overloaded_error."""
    return Status(529)


def server_error(code: int = 500) -> Status:
    """A 5xx with the API's server-error body."""
    return Status(code)


# Realistic (type, message, code) per status; the code is OpenAI's "code" field.
_OPENAI_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("invalid_request_error", "Invalid request.", None),
    401: ("invalid_request_error", "Incorrect API key provided", "invalid_api_key"),
    403: ("invalid_request_error", "You are not allowed to sample from this model", None),
    404: ("invalid_request_error", "The model does not exist", "model_not_found"),
    429: ("requests", "Rate limit reached for requests", "rate_limit_exceeded"),
    500: ("server_error", "The server had an error while processing your request.", None),
    502: ("server_error", "Bad gateway.", None),
    503: ("server_error", "The engine is currently overloaded, please try again later", None),
    504: ("server_error", "Gateway timeout.", None),
    529: ("server_error", "Overloaded", None),
}
_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    503: ("overloaded_error", "Overloaded"),
    529: ("overloaded_error", "Overloaded"),
}


def error_body(api: Api, status: Status) -> Any:
    """The JSON body `status` is sent with on `api`'s endpoints."""
    if status.body is not None:
        return status.body
    phrase = _reason_phrase(status.code)
    if api == "anthropic":
        default_type, default_message = _ANTHROPIC_ERRORS.get(
            status.code, ("api_error" if status.code >= 500 else "invalid_request_error", phrase)
        )
        return {
            "type": "error",
            "error": {
                "type": status.error_type or default_type,
                "message": status.message or default_message,
            },
            "request_id": _new_id("req_"),
        }
    fallback_type = "server_error" if status.code >= 500 else "invalid_request_error"
    openai_type, openai_message, openai_code = _OPENAI_ERRORS.get(
        status.code, (fallback_type, phrase, None)
    )
    return {
        "error": {
            "message": status.message or openai_message,
            "type": status.error_type or openai_type,
            "param": None,
            "code": status.error_code or openai_code,
        }
    }


# --- requests as recorded -----------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it. `status` is None while it is being handled and
    when the connection was dropped; `answered_at` is None until then."""

    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None when absent or not JSON
    received_at: float  # time.monotonic()
    answered_at: float | None
    status: int | None
    client_port: int  # one per TCP connection: count distinct ports to see pooling

    @property
    def api(self) -> Api | None:
        return _api_of_path(urlsplit(self.path).path)

    @property
    def prompt(self) -> str | None:
        """The last user message's text, or None when the body has no messages."""
        if not isinstance(self.body, dict) or not isinstance(self.body.get("messages"), list):
            return None
        return last_user_text(self.body)


def last_user_text(body: Mapping[str, Any]) -> str:
    """Text of the last user message in either API's request shape ("" if none)."""
    messages = body.get("messages")
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def echo_last_user_message(body: dict[str, Any]) -> str:
    """The default answer: "echo: <last user message>"."""
    return f"echo: {last_user_text(body)}"


class FakeLLMError(AssertionError):
    """Something went wrong inside the fake (e.g. `answer` raised): a bug in the test."""


# --- the server ---------------------------------------------------------------------


class FakeLLM:
    """Context manager serving both APIs on one free port of 127.0.0.1.

    Scripted behaviours are consumed one per completion request (POST to
    /v1/chat/completions or /v1/messages): first from a `script_for` queue whose match
    is in the request's last user message, then from the `script` FIFO; with both empty
    the reply is `answer(request_body)`. GET /v1/models and unknown paths never consume.
    With `validate`, malformed requests get a 400 (and a wrong key a 401 when `api_key`
    is set) before any behaviour is consumed, as the real APIs would answer.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: Sequence[str] = (DEFAULT_MODEL,),
        validate: bool = True,
        rate_limit_requests: int = 60,
        rate_limit_tokens: int = 100_000,
    ) -> None:
        self.answer: Callable[[dict[str, Any]], str] = echo_last_user_message
        self.api_key = api_key
        self.models = list(models)
        self.validate = validate
        self.rate_limit_requests = rate_limit_requests
        self.rate_limit_tokens = rate_limit_tokens
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._records: list[Recorded] = []
        self._fifo: deque[Behaviour] = deque()
        self._matched: list[tuple[str, deque[Behaviour]]] = []
        self._errors: list[BaseException] = []
        self._in_flight = 0
        self._max_concurrent = 0
        self._completions = 0
        self._tokens_used = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> FakeLLM:
        if self._server is not None:
            raise FakeLLMError("FakeLLM already started")
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # shutdown() waits up to one poll
            name=f"fake-llm:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, cut pending Slow/Hold replies and idle keep-alive connections,
        and join every thread. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        connections = server.take_connections()
        for connection in connections.values():
            # Wakes a handler blocked reading the next keep-alive request; OSError: the
            # handler closed it first.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        thread.join(timeout=5)
        for handler_thread in connections:
            handler_thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
        if exc is None and self._errors:
            raise FakeLLMError(f"the fake server failed: {self._errors[0]!r}") from self._errors[0]

    # addresses

    @property
    def port(self) -> int:
        if self._server is None:
            raise FakeLLMError("FakeLLM is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        """An OpenAI-compatible base_url: the client POSTs {openai_url}/chat/completions."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_url(self) -> str:
        """An Anthropic base_url: the client POSTs {anthropic_url}/v1/messages."""
        return self.base_url

    def env(self) -> dict[str, str]:
        """Environment pointing fanout's built-in providers at this server."""
        return {
            "OPENAI_BASE_URL": self.openai_url,
            "OPENAI_API_KEY": self.api_key or "sk-fake",
            "ANTHROPIC_BASE_URL": self.anthropic_url,
            "ANTHROPIC_API_KEY": self.api_key or "sk-ant-fake",
        }

    # scripting

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next completion requests, in arrival order."""
        with self._lock:
            self._fifo.extend(behaviours)

    def script_for(self, match: str, *behaviours: Behaviour) -> None:
        """Queue behaviours for requests whose last user message contains `match`."""
        with self._lock:
            for existing, queue in self._matched:
                if existing == match:
                    queue.extend(behaviours)
                    return
            self._matched.append((match, deque(behaviours)))

    def remaining(self) -> list[Behaviour]:
        """Scripted behaviours not consumed yet (matched queues first)."""
        with self._lock:
            left = [behaviour for _, queue in self._matched for behaviour in queue]
            return left + list(self._fifo)

    # observation

    @property
    def requests(self) -> list[Recorded]:
        """A snapshot of every request so far, in arrival order."""
        with self._lock:
            return list(self._records)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def max_concurrent(self) -> int:
        """Peak number of requests being handled at once."""
        with self._lock:
            return self._max_concurrent

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised inside the fake (re-raised as FakeLLMError on exit)."""
        with self._lock:
            return list(self._errors)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Recorded]:
        """Block until `count` requests have arrived (answered or not); TimeoutError if not."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._records) >= count, timeout):
                raise TimeoutError(
                    f"{len(self._records)} request(s) arrived within {timeout}s, expected {count}"
                )
            return list(self._records)

    # used by the handler threads

    def _arrive(self, record: Recorded) -> int:
        with self._changed:
            self._records.append(record)
            self._in_flight += 1
            self._max_concurrent = max(self._max_concurrent, self._in_flight)
            self._changed.notify_all()
            return len(self._records) - 1

    def _depart(self, index: int, status: int | None) -> None:
        with self._changed:
            self._records[index] = replace(
                self._records[index], answered_at=time.monotonic(), status=status
            )
            self._in_flight -= 1
            self._changed.notify_all()

    def _next_behaviour(self, body: dict[str, Any]) -> Behaviour:
        prompt = last_user_text(body)
        with self._lock:
            self._completions += 1
            for match, queue in self._matched:
                if queue and match in prompt:
                    return queue.popleft()
            if self._fifo:
                return self._fifo.popleft()
        return self._answer(body)

    def _answer(self, body: dict[str, Any]) -> Behaviour:
        try:
            return Reply(self.answer(body))
        except Exception as error:  # a bug in the test's answer(): fail the test on exit
            with self._lock:
                self._errors.append(error)
            return Status(500, message=f"fake_llm: answer() raised {error!r}")

    def _problem_with(self, api: Api, headers: Mapping[str, str], body: Any) -> Status | None:
        """The 400/401 a real server would send for this request, if any."""
        if not self.validate:
            return None
        if self.api_key is not None:
            if api == "openai" and headers.get("authorization") != f"Bearer {self.api_key}":
                return invalid_api_key()
            if api == "anthropic" and headers.get("x-api-key") != self.api_key:
                return invalid_api_key()
        if not isinstance(body, dict):
            return Status(400, message="The request body is not a JSON object.")
        if not isinstance(body.get("model"), str):
            return Status(400, message="model: Field required")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return Status(400, message="messages: Field required (a non-empty list)")
        if body.get("stream"):
            return Status(400, message="fake_llm: streaming replies are not supported")
        if api == "anthropic":
            if "anthropic-version" not in headers:
                return Status(400, message="anthropic-version: header is required")
            if not isinstance(body.get("max_tokens"), int):
                return Status(400, message="max_tokens: Field required")
        return None

    def _count_tokens(self, usage: Usage | None) -> None:
        if usage is not None:
            with self._lock:
                self._tokens_used += (usage.input_tokens or 0) + (usage.output_tokens or 0)

    def _rate_limit_headers(self, api: Api, status: int) -> dict[str, str]:
        with self._lock:
            requests_left = max(self.rate_limit_requests - self._completions, 0)
            tokens_left = max(self.rate_limit_tokens - self._tokens_used, 0)
        if status == 429:
            requests_left = 0
        if api == "anthropic":
            reset = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
            return {
                "request-id": _new_id("req_"),
                "anthropic-ratelimit-requests-limit": str(self.rate_limit_requests),
                "anthropic-ratelimit-requests-remaining": str(requests_left),
                "anthropic-ratelimit-requests-reset": reset,
                "anthropic-ratelimit-tokens-limit": str(self.rate_limit_tokens),
                "anthropic-ratelimit-tokens-remaining": str(tokens_left),
                "anthropic-ratelimit-tokens-reset": reset,
            }
        return {
            "x-request-id": _new_id("req_"),
            "x-ratelimit-limit-requests": str(self.rate_limit_requests),
            "x-ratelimit-remaining-requests": str(requests_left),
            "x-ratelimit-reset-requests": "1s",
            "x-ratelimit-limit-tokens": str(self.rate_limit_tokens),
            "x-ratelimit-remaining-tokens": str(tokens_left),
            "x-ratelimit-reset-tokens": "6ms",
        }

    def _models_body(self, api: Api) -> dict[str, Any]:
        data: list[dict[str, Any]]
        if api == "anthropic":
            data = [
                {"type": "model", "id": model, "display_name": model,
                 "created_at": "2025-01-01T00:00:00Z"}
                for model in self.models
            ]
            return {"data": data, "has_more": False,
                    "first_id": self.models[0] if self.models else None,
                    "last_id": self.models[-1] if self.models else None}
        data = [
            {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "fake-llm"}
            for model in self.models
        ]
        return {"object": "list", "data": data}


def reply_body(api: Api, reply: Reply, request_body: Mapping[str, Any]) -> dict[str, Any]:
    """`reply` in `api`'s response shape."""
    requested = request_body.get("model")
    model = reply.model or (requested if isinstance(requested, str) else DEFAULT_MODEL)
    usage = reply.usage
    if api == "anthropic":
        body: dict[str, Any] = {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": reply.text}],
            "stop_reason": reply.finish_reason or "end_turn",
            "stop_sequence": None,
        }
        if usage is not None:
            body["usage"] = _without_none(
                {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
            )
        return body
    body = {
        "id": _new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.text, "refusal": None},
            "logprobs": None,
            "finish_reason": reply.finish_reason or "stop",
        }],
        "system_fingerprint": "fp_fake",
    }
    if usage is not None:
        total = (
            usage.input_tokens + usage.output_tokens
            if usage.input_tokens is not None and usage.output_tokens is not None
            else None
        )
        body["usage"] = _without_none({
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": total,
        })
    return body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog: read by the constructor's listen(), so it must be set here (the
    # default, 5, makes a burst of -j 50 connections wait for SYN retries).
    request_queue_size = 128

    def __init__(self, fake: FakeLLM) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        # Registered here, in the serving thread, so that once shutdown() returns every
        # accepted connection is known to close().
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"fake-llm-connection:{client_address[1]}",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[thread] = request
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(threading.current_thread(), None)

    def take_connections(self) -> dict[threading.Thread, socket.socket]:
        with self._connections_lock:
            return dict(self._connections)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client went away or close() cut the connection: nothing to report


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection pooling is observable
    timeout = 30  # an idle keep-alive connection is closed after this many seconds
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read server.requests, not a log on stderr

    def _handle(self) -> None:
        received_at = time.monotonic()
        fake = self.server.fake
        raw_body = self._read_body()
        try:
            body: Any = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._record_index: int | None = fake._arrive(Recorded(
            method=self.command,
            path=self.path,
            headers=headers,
            body=body,
            received_at=received_at,
            answered_at=None,
            status=None,
            client_port=self.client_address[1],
        ))
        try:
            self._serve(fake, headers, body)
        finally:
            self._settle(None)

    def _settle(self, status: int | None) -> None:
        """Record the outcome once, before the client can see it: a test that has its
        response in hand always finds the request answered in server.requests."""
        if self._record_index is not None:
            self.server.fake._depart(self._record_index, status)
            self._record_index = None

    def _serve(self, fake: FakeLLM, headers: Mapping[str, str], body: Any) -> None:
        path = urlsplit(self.path).path
        api = _api_of_path(path) or ("anthropic" if "anthropic-version" in headers else "openai")
        if self.command == "POST" and path in (OPENAI_PATH, ANTHROPIC_PATH):
            problem = fake._problem_with(api, headers, body)
            self._perform(fake, api, problem or fake._next_behaviour(body), body)
        elif self.command == "GET" and path == MODELS_PATH:
            self._send(200, fake._models_body(api), fake._rate_limit_headers(api, 200))
        else:
            not_found = Status(404, message=f"Invalid URL ({self.command} {path})")
            self._perform(fake, api, not_found, body)

    def _perform(self, fake: FakeLLM, api: Api, behaviour: Behaviour, body: Any) -> None:
        match behaviour:
            case Reply():
                fake._count_tokens(behaviour.usage)
                headers = {**fake._rate_limit_headers(api, 200), **_lower(behaviour.headers)}
                self._send(200, reply_body(api, behaviour, body), headers)
            case Status():
                headers = {
                    **fake._rate_limit_headers(api, behaviour.code), **_lower(behaviour.headers)
                }
                self._send(behaviour.code, error_body(api, behaviour), headers)
            case Slow():
                if fake._stopping.wait(behaviour.seconds):
                    self._drop(partial=False)
                else:
                    self._perform(fake, api, behaviour.then or fake._answer(body), body)
            case Hold():
                while not behaviour.release.wait(_HOLD_POLL_SECONDS):
                    if fake._stopping.is_set():
                        self._drop(partial=False)
                        return
                self._perform(fake, api, behaviour.then or fake._answer(body), body)
            case Drop():
                self._drop(partial=behaviour.partial)

    def _send(self, code: int, payload: Any, headers: Mapping[str, str]) -> None:
        """A JSON payload, or a str one as text."""
        if isinstance(payload, str):
            data, content_type = payload.encode(), "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(payload).encode(), "application/json"
        self.send_response(code, _reason_phrase(code))
        merged = {"content-type": content_type, **headers, "content-length": str(len(data))}
        for name, value in merged.items():
            self.send_header(name, value)
        self._settle(code)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self, *, partial: bool) -> None:
        self._settle(None)
        if partial:
            data = json.dumps({"error": "the connection drops before this body ends"}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
        self.close_connection = True
        # EOF now, rather than whenever the handler thread gets round to closing;
        # OSError: close() already cut it.
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""


@pytest.fixture(name="fake_llm")
def fake_llm_fixture() -> Iterator[FakeLLM]:
    """A started FakeLLM; import this name into a test module to use it."""
    with FakeLLM() as server:
        yield server


# --- small helpers ------------------------------------------------------------------


def _api_of_path(path: str) -> Api | None:
    if path == OPENAI_PATH:
        return "openai"
    if path == ANTHROPIC_PATH:
        return "anthropic"
    return None


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        )
    return ""


def _reason_phrase(code: int) -> str:
    if code == 529:
        return "Overloaded"  # Anthropic's own status; not in http.HTTPStatus
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


# --- keeping agent tests offline ----------------------------------------------------

DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: a stray https call fails fast
# Variables of the test process that could point fanout at a real provider or proxy.
PROVIDER_ENV = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID",
    "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "FANOUT_PROVIDER", "FANOUT_MODEL",
    "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy",
)  # fmt: skip


def go_offline(monkeypatch: pytest.MonkeyPatch, *also: str) -> None:
    """No provider variable of the test process reaches fanout (nor `also`), and any
    https request goes to a dead proxy: a test can only talk to its own servers."""
    for name in (*PROVIDER_ENV, *also):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", DEAD_PROXY)
    monkeypatch.setenv("https_proxy", DEAD_PROXY)
