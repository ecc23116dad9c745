"""A dead or wrong endpoint, HTTP retries and smooth rates, tier (a): the pieces with a
virtual clock (nothing really sleeps) and the executor against an in-process mock
transport. End to end against real sockets: tests/test_endpoint_e2e.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest

from fanout_cli.agents import AgentSettings, build_settings, parse_agent_table
from fanout_cli.executors.agent import AgentExecutor
from fanout_cli.executors.health import (
    DOWN_AFTER_FAILURES,
    DOWN_AFTER_SECONDS,
    Health,
    not_found_hint,
)
from fanout_cli.executors.process import ProcessExecutor
from fanout_cli.models import Attempt, TaskStatus
from fanout_cli.pacing import Backoff, Clock, RateLimiter
from fanout_cli.values import Rate, parse_rate
from tests.test_agent_unit import LOCAL, OK, Reply, Server, plan_of, spec_of


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANOUT_TEST_KEY", "sk-test-endpoint")


@dataclass
class VirtualClock:
    """Time that moves only when someone sleeps: `sleep(s)` jumps `now` to the end of
    the earliest sleep (sleepers wake in order of their end times)."""

    now_s: float = 0.0
    slept: list[float] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        until = self.now_s + max(seconds, 0.0)
        # Let every other runnable task reach its own sleep first, then move time on.
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        self.now_s = max(self.now_s, until)

    def clock(self) -> Clock:
        return Clock(now=lambda: self.now_s, sleep=self.sleep, wall=lambda: 1000.0 + self.now_s)


# --- smooth rates ----------------------------------------------------------------------


def _starts(rate: Rate, count: int, clock: VirtualClock) -> list[float]:
    async def scenario() -> list[float]:
        limiter = RateLimiter(rate, clock.clock())
        starts = []
        for _ in range(count):
            await limiter.acquire()
            starts.append(clock.now_s)
        return starts

    return anyio.run(scenario)


def test_a_rate_spaces_starts_evenly() -> None:
    """5/10s: one start every 2 s, not 5 at once and 5 more at 10 s."""
    starts = _starts(parse_rate("5/10s"), 6, VirtualClock())
    assert starts == pytest.approx([0, 2, 4, 6, 8, 10])


def test_a_burst_lets_that_many_start_at_once_then_spaces_the_rest() -> None:
    starts = _starts(parse_rate("5/10s:2"), 5, VirtualClock())
    assert starts == pytest.approx([0, 0, 2, 4, 6])


def test_a_burst_comes_back_after_a_quiet_spell() -> None:
    clock = VirtualClock()

    async def scenario() -> list[float]:
        limiter = RateLimiter(parse_rate("5/10s:3"), clock.clock())
        starts = []
        for _ in range(3):
            await limiter.acquire()
            starts.append(clock.now_s)
        clock.now_s = 100.0  # idle long enough to earn the whole burst back
        for _ in range(4):
            await limiter.acquire()
            starts.append(clock.now_s)
        return starts

    assert anyio.run(scenario) == pytest.approx([0, 0, 0, 100, 100, 100, 102])


def test_acquire_returns_the_seconds_waited() -> None:
    clock = VirtualClock()

    async def scenario() -> list[float]:
        limiter = RateLimiter(parse_rate("2/s"), clock.clock())
        return [await limiter.acquire() for _ in range(3)]

    assert anyio.run(scenario) == pytest.approx([0, 0.5, 0.5])


@pytest.mark.parametrize(
    ("text", "count", "period", "burst", "normalised"),
    [
        ("5/10s:2", 5, 10.0, 2, "5/10s:2"),
        ("60/min:5", 60, 60.0, 5, "60/min:5"),
        ("5/s:1", 5, 1.0, 1, "5/s"),
        ("5/s", 5, 1.0, 1, "5/s"),
        ("5/s:5", 5, 1.0, 5, "5/s:5"),
    ],
)
def test_parse_rate_reads_a_burst(
    text: str, count: int, period: float, burst: int, normalised: str
) -> None:
    rate = parse_rate(text)
    assert (rate.count, rate.period, rate.burst, str(rate)) == (count, period, burst, normalised)
    assert parse_rate(str(rate)) == rate


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5/s:0", "burst"),
        ("5/s:6", "burst"),
        ("5/s:x", "burst"),
        ("5/s:", "burst"),
    ],
)
def test_parse_rate_refuses_a_bad_burst(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rate(text)


# --- the health of an endpoint ---------------------------------------------------------


def test_connection_failures_in_a_row_over_a_second_mark_it_down() -> None:
    clock = VirtualClock()
    health = Health(clock.clock())
    for _ in range(DOWN_AFTER_FAILURES):
        assert not health.failed("ConnectError: refused")  # all at once: not yet
    assert health.down is None
    clock.now_s = DOWN_AFTER_SECONDS
    assert health.failed("ConnectError: refused")  # the one that marks it
    assert health.down is not None
    assert "connection failed 4 times in a row" in health.down
    assert "ConnectError: refused" in health.down
    assert not health.failed("ConnectError: refused")  # reported once


def test_an_answer_between_failures_starts_the_count_again() -> None:
    clock = VirtualClock()
    health = Health(clock.clock())
    health.failed("refused")
    health.failed("refused")
    clock.now_s = 5.0
    health.answered()
    assert not health.failed("refused")
    clock.now_s = 10.0
    assert not health.failed("refused")
    assert health.down is None


@pytest.mark.parametrize(
    ("api", "base_url", "hint"),
    [
        ("openai", "http://127.0.0.1:8080", "did you mean http://127.0.0.1:8080/v1?"),
        ("openai", "http://127.0.0.1:8080/", "did you mean http://127.0.0.1:8080/v1?"),
        ("openai", "https://openrouter.ai/api", "did you mean https://openrouter.ai/api/v1?"),
        ("openai", "http://127.0.0.1:8080/v1", None),
        ("anthropic", "http://127.0.0.1:8080/v1", "did you mean http://127.0.0.1:8080?"),
        ("anthropic", "http://127.0.0.1:8080", None),
    ],
)
def test_a_404_suggests_the_likely_base_url(api: str, base_url: str, hint: str | None) -> None:
    assert not_found_hint(api, base_url) == hint


# --- the executor ----------------------------------------------------------------------

REFUSED = Reply(drop=httpx2.ConnectError)
STEADY = Backoff(base=1.0, jitter=lambda: 1.0)  # 1 s, 2 s, 4 s ... on the virtual clock


def _run(
    agent_settings: AgentSettings, server: Server, tmp_path: Path, count: int, clock: VirtualClock
) -> list[Attempt]:
    async def scenario() -> list[Attempt]:
        executor = AgentExecutor(agent_settings, ProcessExecutor(), transport=server.transport(),
                                 clock=clock.clock(), backoff=STEADY)  # fmt: skip
        attempts: dict[int, Attempt] = {}

        async def one(seq: int) -> None:
            attempts[seq] = await executor.run_attempt(spec_of(f"p{seq}", seq=seq),
                                                       plan_of(tmp_path, seq))  # fmt: skip

        async with executor.session():
            async with anyio.create_task_group() as group:  # two at a time, then the rest
                for seq in range(1, min(count, 2) + 1):
                    group.start_soon(one, seq)
            async with anyio.create_task_group() as group:
                for seq in range(3, count + 1):
                    group.start_soon(one, seq)
        return [attempts[seq] for seq in range(1, count + 1)]

    return anyio.run(scenario)


def _settings(**overrides: Any) -> AgentSettings:
    values: dict[str, Any] = {"provider": "local", "model": "m", "retries": 4,
                              "providers": {"local": LOCAL}}  # fmt: skip
    return AgentSettings(**{**values, **overrides})


def test_a_dead_endpoint_ends_every_task_as_error_after_a_few_tries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = Server(REFUSED)
    attempts = _run(_settings(), server, tmp_path, 6, VirtualClock())

    # Two tasks fail at 0 s, retry at 1 s: the third failure over a second marks it down.
    assert len(server.requests) <= 4
    assert all(a.status is TaskStatus.ERROR for a in attempts), [a.reason for a in attempts]
    assert not any(a.retryable for a in attempts)
    assert all("provider local at http://llm.test/v1 is down" in a.reason for a in attempts)
    for attempt in attempts[2:]:  # started after: no request at all
        assert attempt.agent is not None
        assert attempt.agent["exchanges"] == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("fanout: warning: provider local at http://llm.test/v1 is down: ")


def test_a_server_error_never_marks_it_down(tmp_path: Path) -> None:
    server = Server(Reply(500, {"error": {"message": "boom"}}))
    attempts = _run(_settings(retries=2), server, tmp_path, 3, VirtualClock())
    assert len(server.requests) == 3 * 3
    assert all(a.status is TaskStatus.FAILURE for a in attempts)


def test_one_refusal_among_answers_is_retried(tmp_path: Path) -> None:
    server = Server(REFUSED, OK)
    attempts = _run(_settings(), server, tmp_path, 2, VirtualClock())
    assert all(a.status is TaskStatus.SUCCESS for a in attempts)


def test_a_404_names_the_url_and_the_fix(tmp_path: Path) -> None:
    provider = LOCAL.__class__("local", "openai", "http://llm.test", None, False)
    server = Server(Reply(404, {"error": {"message": "File Not Found"}}))
    [attempt] = _run(_settings(providers={"local": provider}), server, tmp_path, 1,
                     VirtualClock())  # fmt: skip
    assert attempt.status is TaskStatus.FAILURE
    assert attempt.reason == ("HTTP 404 from http://llm.test/chat/completions: File Not Found "
                              "(did you mean http://llm.test/v1?)")  # fmt: skip
    assert len(server.requests) == 1


# --- --http-retries ----------------------------------------------------------------------


def test_http_retries_from_the_command_line_and_the_agent_table() -> None:
    assert build_settings({}, {}).retries == 4
    assert build_settings({}, {"http_retries": "0"}).retries == 0
    table = parse_agent_table({"http_retries": 2}, lambda path, problem: ValueError(problem))
    assert build_settings(table, {}).retries == 2
    assert build_settings(table, {"http_retries": "7"}).retries == 7
    older = parse_agent_table({"retries": 3}, lambda path, problem: ValueError(problem))
    assert build_settings(older, {}).retries == 3


@pytest.mark.parametrize("value", ["-1", "21", "x", "1.5"])
def test_http_retries_is_range_checked(value: str) -> None:
    with pytest.raises(ValueError, match=r"^--http-retries: "):
        build_settings({}, {"http_retries": value})
