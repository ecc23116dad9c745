"""Run an agent task: one chat-model call over HTTP (OpenAI-compatible Chat
Completions or Anthropic Messages), or a headless agent CLI run as a process.

The HTTP clients serve the whole run (executors/pools.py). Transient
errors (429, 5xx, 529, a dropped connection) are retried inside the attempt with
jittered exponential back-off; a 429, 503 or 529 also pauses the next request of
every task to that provider, for as long as the server asked (Retry-After,
retry-after-ms). Errors that cannot succeed on another try (400, 401, 403, 404,
an exhausted quota) end the task at once; a 404 names the URL and the likely base URL.
Connection failures in a row mark the provider down (executors/health.py): its
waiting tasks and retries then end as `error` without a request. An attempt makes at
most 1 + http_retries requests. The reply text is the task's stdout."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from fanout_cli.agents import AgentSettings, Provider, read_attachments
from fanout_cli.aop import open_output_for_reading, write_output
from fanout_cli.aop.files import UnsafeFile
from fanout_cli.executors import AttemptPlan, Executor, TimeLimit, ended_attempt
from fanout_cli.executors.exchange import (
    PAUSING_STATUSES,
    Outcome,
    build_request,
    classify_response,
    note_response,
    one_line,
    redact_headers,
)
from fanout_cli.executors.health import Health, not_found_hint, unless_down
from fanout_cli.executors.process import timeout_reason
from fanout_cli.models import AgentCall, Attempt, TaskSpec, TaskStatus
from fanout_cli.pacing import SYSTEM_CLOCK, Backoff, Clock, Pause, RateLimiter
from fanout_cli.redact import redact_text

if TYPE_CHECKING:
    import httpx2

    from fanout_cli.executors.pools import Pools

# Between tries of a transient error the server gave no wait for: 1s, 2s, 4s ... 60s,
# jittered so that tasks that failed together do not come back together.
HTTP_BACKOFF = Backoff(base=1.0)
_UNREACHED = "connection failed: "  # the reason's start when no connection was made


def missing_http_client() -> str | None:
    """Why agent tasks cannot run here (the optional HTTP client is not installed)."""
    import importlib.util

    if importlib.util.find_spec("httpx2") is None:
        return "agent tasks need the agent extra: pip install 'fanout-cli[agent]' (httpx2)"
    return None


@dataclass
class _Endpoint:
    """Shared by every task calling one provider: its pause and its rate limit."""

    pause: Pause
    limiter: RateLimiter | None
    health: Health


class AgentExecutor:
    """Runs `agent` tasks over HTTP; hands `agent-cli` and process tasks to `processes`
    (an agent CLI's output is parsed into the same `agent` record afterwards)."""

    def __init__(
        self,
        settings: AgentSettings,
        processes: Executor,
        transport: httpx2.AsyncBaseTransport | None = None,  # tests: a MockTransport
        connections: int = 10,
        http: bool = True,  # False: only agent CLIs, no HTTP client (nor its import)
        *,
        clock: Clock = SYSTEM_CLOCK,
        backoff: Backoff = HTTP_BACKOFF,
    ) -> None:
        self.http = http
        self.clock = clock
        self.backoff = backoff
        self.settings = settings
        self.connections = connections  # -j: keep that many connections alive
        self.processes = processes
        self._transport = transport
        self._pools: Pools | None = None  # HTTP clients, in session()
        self._endpoints: dict[str, _Endpoint] = {}
        self._in_flight: dict[int, dict[str, Any]] = {}  # by seq: records of open calls
        self._run_limiter = None if settings.rate is None else RateLimiter(settings.rate, clock)

    def kill_all(self) -> None:
        self.processes.kill_all()  # HTTP calls end with the cancelled scopes

    def abandoned(self, spec: TaskSpec) -> Mapping[str, Any] | None:
        return self._in_flight.pop(spec.seq, None)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.processes.session())
            if self.http:  # the optional extra: only runs with agent calls import it
                from fanout_cli.executors.pools import Pools

                self._pools = Pools(stack, self.connections, self._transport)
            try:
                yield
            finally:
                self._pools = None

    async def run_attempt(self, spec: TaskSpec, plan: AttemptPlan) -> Attempt:
        if spec.agent is None:
            return await self.processes.run_attempt(spec, plan)
        if spec.agent.tool is not None:
            return await self._run_cli(spec, spec.agent, plan)
        return await self._call(spec, self.settings.complete(spec.agent), plan)

    # --- agent CLIs ------------------------------------------------------------------

    async def _run_cli(self, spec: TaskSpec, call: AgentCall, plan: AttemptPlan) -> Attempt:
        from fanout_cli import agent_cli

        attempt = await self.processes.run_attempt(spec, plan)
        if attempt.status is TaskStatus.ERROR:
            return attempt
        assert call.tool is not None
        reply = agent_cli.parse_output(call.tool, _read_text(plan.stdout_path))
        record = {
            "tool": call.tool,
            "model": reply.model or call.model,
            "text": reply.text,
            "usage": reply.usage,
            "cost_usd": reply.cost_usd,
            "session_id": reply.session_id,
            "error": reply.error,
        }
        status, reason = attempt.status, attempt.reason
        if status is TaskStatus.SUCCESS and reply.is_error:
            status, reason = TaskStatus.FAILURE, f"{call.tool} reported an error"
            if reply.error:
                reason = f"{reason}: {one_line(reply.error, 200)}"
        return replace(attempt, status=status, reason=reason, agent=record)

    # --- HTTP calls ------------------------------------------------------------------

    async def _call(self, spec: TaskSpec, call: AgentCall, plan: AttemptPlan) -> Attempt:
        started_at = self.clock.wall()
        # Both outputs exist whatever happens next: the task's records name them.
        _write(plan.stdout_path, "")
        _write(plan.stderr_path, "")
        problem = self.settings.problem(call)
        provider = self.settings.providers.get(call.provider or "")
        prompt = call.prompt
        if problem is None and call.attach:
            try:
                prompt = f"{prompt}\n\n{read_attachments(call.attach, spec.cwd)}"
            except OSError as exc:
                problem = f"cannot read attachment {exc.filename}: {exc.strerror}"
            except ValueError as exc:
                problem = str(exc)
        if problem is not None or provider is None:
            reason = problem or "unknown provider"
            _write(plan.stderr_path, reason + "\n")
            return ended_attempt(plan, started_at, TaskStatus.ERROR, reason, retryable=False)
        url, headers, body = build_request(provider, call, prompt)
        record: dict[str, Any] = {
            "provider": provider.name,
            "api": provider.api,
            "base_url": redact_text(provider.base_url),
            "request": {"url": redact_text(url), "headers": redact_headers(headers), "body": body},
            "model": None,
            "text": None,
            "finish_reason": None,
            "usage": None,
            "rate_limit": {},
            "response": None,
            "exchanges": [],
        }
        self._in_flight[spec.seq] = record  # kept if the call is cancelled
        outcome = await self._exchanges(provider, url, headers, body, plan, record)
        del self._in_flight[spec.seq]
        if outcome.http_status == 401 and (hint := provider.no_key_sent()):
            outcome = replace(outcome, reason=f"{outcome.reason}; {hint}")
        if outcome.text is not None:  # the file is this attempt's, still empty: added to
            _append(plan.stdout_path, outcome.text)
        retryable = outcome.status is TaskStatus.TIMEOUT or outcome.retry
        return ended_attempt(
            plan, started_at, outcome.status, outcome.reason, retryable=retryable, agent=record
        )

    def _endpoint(self, provider: Provider) -> _Endpoint:
        endpoint = self._endpoints.get(provider.name)
        if endpoint is None:
            limiter = None if provider.rate is None else RateLimiter(provider.rate, self.clock)
            endpoint = self._endpoints[provider.name] = _Endpoint(
                Pause(self.clock), limiter, Health(self.clock)
            )
        return endpoint

    async def _exchanges(
        self,
        provider: Provider,
        url: str,
        headers: dict[str, str],
        body: dict[str, Any],
        plan: AttemptPlan,
        record: dict[str, Any],
    ) -> Outcome:
        """Send, and send again while the failure is transient and retries remain: at
        most 1 + retries requests. A provider marked down ends it before the next."""
        endpoint = self._endpoint(provider)
        health = endpoint.health
        outcome = Outcome(TaskStatus.FAILURE, "no request made")
        with TimeLimit(plan) as timer:
            for number in range(1, self.settings.retries + 2):
                waited = 0.0
                if self._run_limiter or endpoint.limiter or endpoint.pause.remaining > 0:
                    waited = await unless_down(health, partial(self._wait_turn, endpoint))
                if health.down is not None:
                    return self._down(provider, health, plan, record)
                if number == 1:  # the limit counts from the first request
                    timer.start()
                outcome = await self._exchange(provider, (url, headers, body), plan, record,
                                               number, waited)  # fmt: skip
                delay = self._retry_delay(endpoint, outcome, number)
                if delay is None:
                    break
                await unless_down(health, partial(self._sleep, delay))
        if timer.expired:
            reason = timeout_reason(plan)
            _append(plan.stderr_path, reason + "\n")
            if record["exchanges"] and record["exchanges"][-1]["status"] is None:
                record["exchanges"][-1]["error"] = reason
            return Outcome(TaskStatus.TIMEOUT, reason)
        if outcome.unreached and health.down is not None:
            return self._down(provider, health, plan, record)
        return outcome

    async def _exchange(
        self,
        provider: Provider,
        request: tuple[str, dict[str, str], dict[str, Any]],
        plan: AttemptPlan,
        record: dict[str, Any],
        number: int,
        waited: float,
    ) -> Outcome:
        """One request, kept on the record; its connection failure or answer noted."""
        began = self.clock.now()
        # Listed before it is sent: a request cut short is still on the record.
        exchange: dict[str, Any] = {
            "n": number,
            "waited_s": round(waited, 3),
            "duration_ms": None,
            "status": None,
            "error": "no reply (cut short)",
            "retry_after_s": None,
        }
        record["exchanges"].append(exchange)
        try:
            outcome = await self._send(provider, *request, plan.slot)
        finally:
            exchange["duration_ms"] = round((self.clock.now() - began) * 1000)
        exchange["status"] = outcome.http_status
        exchange["error"] = None if outcome.status is TaskStatus.SUCCESS else outcome.reason
        exchange["retry_after_s"] = outcome.retry_after
        note_response(record, provider, outcome)
        if outcome.status is not TaskStatus.SUCCESS:
            _append(plan.stderr_path, f"request {number}: {outcome.reason}\n")
        health = self._endpoint(provider).health
        if outcome.http_status is not None:
            health.answered()
        elif outcome.unreached and health.failed(outcome.reason.removeprefix(_UNREACHED)):
            from fanout_cli.render.console import warn

            warn(f"provider {provider.name} at {redact_text(provider.base_url)} is down: "
                 f"{health.down}; its tasks end as error without a request")  # fmt: skip
        return outcome

    def _retry_delay(self, endpoint: _Endpoint, outcome: Outcome, number: int) -> float | None:
        """The wait before the next try of this attempt, or None: no next try. A 429,
        503 or 529 pauses every task's next request, tried again here or not."""
        last_try = number > self.settings.retries
        pausing = outcome.http_status in PAUSING_STATUSES
        if not outcome.retry or (last_try and not pausing):
            return None
        delay = outcome.retry_after
        if delay is None:
            delay = self.backoff.delay(number)
        if pausing:  # every task waits, whether or not this one tries again
            endpoint.pause.extend(delay)
            return None if last_try else 0.0
        return delay

    def _down(
        self, provider: Provider, health: Health, plan: AttemptPlan, record: dict[str, Any]
    ) -> Outcome:
        """The end of a task whose provider is down: `error` when none of its requests
        reached a server (it could not start), `failure` when one did; never retried."""
        where = redact_text(provider.base_url)
        reason = f"provider {provider.name} at {where} is down: {health.down}"
        _append(plan.stderr_path, reason + "\n")
        reached = any(exchange["status"] is not None for exchange in record["exchanges"])
        return Outcome(TaskStatus.FAILURE if reached else TaskStatus.ERROR, reason)

    async def _sleep(self, seconds: float) -> float:
        if seconds > 0:
            await self.clock.sleep(seconds)
        return seconds

    async def _wait_turn(self, endpoint: _Endpoint) -> float:
        """Wait out the provider's pause and both rate limits; return the seconds."""
        waited = await endpoint.pause.wait()
        if endpoint.limiter is not None:
            waited += await endpoint.limiter.acquire()
        if self._run_limiter is not None:
            waited += await self._run_limiter.acquire()
        return waited

    async def _send(
        self,
        provider: Provider,
        url: str,
        headers: dict[str, str],
        body: dict[str, Any],
        slot: int,
    ) -> Outcome:
        import httpx2

        assert self._pools is not None, "run_attempt outside session()"
        try:
            response = await self._pools.client(url, slot).post(url, headers=headers, json=body)
        except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:  # the server was not reached
            reason = redact_text(f"{_UNREACHED}{type(exc).__name__}: {exc}".rstrip(": "))
            return Outcome(TaskStatus.FAILURE, reason, retry=True, unreached=True)
        except httpx2.TimeoutException:
            return Outcome(TaskStatus.FAILURE, "no reply within the read timeout", retry=True)
        except httpx2.TransportError as exc:
            reason = redact_text(f"connection failed: {type(exc).__name__}: {exc}".rstrip(": "))
            return Outcome(TaskStatus.FAILURE, reason, retry=True)
        outcome = classify_response(
            provider.api, response.status_code, dict(response.headers), response.text
        )
        if outcome.http_status == 404:  # most often a base URL without (or with a second) /v1
            hint = not_found_hint(provider.api, provider.base_url)
            reason = outcome.reason.replace("HTTP 404: ", f"HTTP 404 from {url}: ", 1)
            reason = redact_text(reason if hint is None else f"{reason} ({hint})")
            outcome = replace(outcome, reason=reason)
        return outcome


def _read_text(path: str, limit: int = 16 << 20) -> str:
    """An agent CLI's output, for parsing: its first `limit` bytes."""
    try:
        with open(open_output_for_reading(path), "rb") as handle:
            return handle.read(limit).decode("utf-8", errors="replace")
    except (FileNotFoundError, UnsafeFile):  # a link planted there is not read
        return ""


def _write(path: str, text: str) -> None:
    write_output(path, text.encode("utf-8", errors="surrogateescape"))


def _append(path: str, text: str) -> None:
    write_output(path, text.encode("utf-8", errors="surrogateescape"), append=True)
