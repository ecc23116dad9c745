"""One HTTP exchange with a model server, built and read: the request of a call, what
a response means for the task (success, a transient error worth another try, a
wait the server asked for), and what is kept of it for the details file. Pure: no
HTTP client; each wire format's own shapes come from `fanout_cli.providers`."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fanout_cli.agents import Provider
from fanout_cli.models import AgentCall, TaskStatus
from fanout_cli.providers import WIRE_FORMATS

TRANSIENT_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
PAUSING_STATUSES = frozenset({429, 503, 529})  # the server asks everyone to slow down
MAX_RETRY_AFTER_SECONDS = 600.0
RESPONSE_TEXT_LIMIT = 64 << 10
_RATE_HEADER_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "ratelimit-", "retry-after")
_SECRET_HEADERS = ("authorization", "x-api-key")
_QUOTA_CODES = ("insufficient_quota", "billing_hard_limit_reached")


@dataclass(frozen=True)
class Outcome:
    """One HTTP exchange, classified."""

    status: TaskStatus
    reason: str
    retry: bool = False  # worth another try within this attempt
    retry_after: float | None = None  # the server said how long to wait
    text: str | None = None
    response: Any = None
    http_status: int | None = None
    headers: Mapping[str, str] | None = None
    unreached: bool = False  # no connection: refused, DNS, connect timeout


def build_request(
    provider: Provider, call: AgentCall, prompt: str
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL, headers (with the key) and JSON body of one call."""
    headers, body = WIRE_FORMATS[provider.api].request(call, prompt, provider.api_key())
    if call.temperature is not None:
        body["temperature"] = call.temperature
    return provider.endpoint, headers, body


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: "***" if name.lower() in _SECRET_HEADERS else value
        for name, value in headers.items()
    }


def classify_response(api: str, status: int, headers: Mapping[str, str], text: str) -> Outcome:
    """What one HTTP response means for the task."""
    headers = {name.lower(): value for name, value in headers.items()}
    try:
        document: Any = json.loads(text) if text else None
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        document = None
    response = document if document is not None else _cap(text)
    if 200 <= status < 300:
        reply = WIRE_FORMATS[api].reply_text(document)
        if reply is None:
            reason = f"HTTP {status}: the reply has no text ({_cap(text, 200)!r})"
            return Outcome(TaskStatus.FAILURE, reason, http_status=status, headers=headers,
                            response=response)
        return Outcome(TaskStatus.SUCCESS, "", text=reply, http_status=status, headers=headers,
                        response=response)
    message = _error_message(document) or one_line(text, 300) or "no message"
    quota = status == 429 and _error_code(document) in _QUOTA_CODES
    return Outcome(
        TaskStatus.FAILURE,
        f"HTTP {status}: {message}",
        retry=(status in TRANSIENT_STATUSES or status >= 500) and not quota,
        retry_after=retry_after(headers),
        http_status=status,
        headers=headers,
        response=response,
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked for: retry-after-ms, else Retry-After (seconds or an
    HTTP date). A value that is unreadable, negative or beyond any sensible wait is
    passed over; None when nothing usable is left."""
    candidates: list[float] = []
    with contextlib.suppress(KeyError, ValueError):
        candidates.append(float(headers["retry-after-ms"]) / 1000)
    value = headers.get("retry-after", "").strip()
    try:
        candidates.append(float(value))
    except ValueError:
        if value:  # an HTTP date: only it needs email.utils (about 6 ms to import)
            import email.utils

            with contextlib.suppress(TypeError, ValueError, IndexError):
                stamp = email.utils.parsedate_to_datetime(value).timestamp()
                candidates.append(stamp - time.time())
    for seconds in candidates:
        if 0 <= seconds <= MAX_RETRY_AFTER_SECONDS:  # NaN fails both
            return seconds
    return None


def _usage(api: str, document: Any) -> dict[str, int | None] | None:
    usage = document.get("usage") if isinstance(document, dict) else None
    return WIRE_FORMATS[api].usage(usage) if isinstance(usage, dict) else None


def _finish_reason(api: str, document: Any) -> str | None:
    if not isinstance(document, dict):
        return None
    reason = WIRE_FORMATS[api].finish_reason(document)
    return reason if isinstance(reason, str) else None


def note_response(record: dict[str, Any], provider: Provider, outcome: Outcome) -> None:
    """Keep what the last response said: model, text, usage, rate-limit headers."""
    if outcome.http_status is None:
        return
    document = outcome.response
    record["response"] = document
    record["rate_limit"] = {
        name: value
        for name, value in (outcome.headers or {}).items()
        if name.startswith(_RATE_HEADER_PREFIXES)
    }
    model = document.get("model") if isinstance(document, dict) else None
    record["model"] = model if isinstance(model, str) else None
    record["text"] = outcome.text
    record["usage"] = _usage(provider.api, document)
    record["finish_reason"] = _finish_reason(provider.api, document)


def _error_message(document: Any) -> str | None:
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return one_line(error["message"], 300)
    if isinstance(error, str):
        return one_line(error, 300)
    detail = document.get("detail") if isinstance(document, dict) else None
    if isinstance(detail, str):  # FastAPI-based servers (llama.cpp's Python server)
        return one_line(detail, 300)
    return None


def _error_code(document: Any) -> str | None:
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return None
    code = error.get("code") or error.get("type")
    return code if isinstance(code, str) else None


def one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _cap(text: str, limit: int = RESPONSE_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
