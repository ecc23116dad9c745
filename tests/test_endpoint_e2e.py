"""End to end: the installed `fanout` against a closed port, a base URL without /v1,
HTTP retries counted in the fake server's request log, smooth rates measured by
arrival times, and the fake server's listen backlog."""

from __future__ import annotations

import importlib.util
import itertools
import select
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_llm import (  # noqa: F401 -- `fake_llm`: the fixture, found by pytest by name
    FakeLLM,
    Status,
    _Server,
    fake_llm_fixture,
)
from tests.helpers import details_by_id, manifest_rows, one_error_line
from tests.test_agent_e2e import (  # noqa: F401 -- `offline` is an autouse fixture
    SAY,
    completions,
    fanout,
    most_in_window,
    offline,
    statuses,
)

ROOT = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- a dead endpoint -----------------------------------------------------------------


def test_a_dead_endpoint_fails_the_run_in_seconds_with_one_line() -> None:
    """20 tasks at -j 4 against a closed port: was 63 s and 100 connection attempts
    (each task 5 requests with back-off); now a few tries, then every task ends."""
    url = f"http://127.0.0.1:{closed_port()}/v1"
    began = time.monotonic()
    completed = fanout(None, "run", "--prompt", "hi {}", "--base-url", url, "--model", "m",
                       "-j", "4", "--retries", "1", ":::", *map(str, range(20)))  # fmt: skip
    elapsed = time.monotonic() - began
    assert completed.returncode == 1, completed.stderr
    assert elapsed < 10, elapsed
    assert set(statuses(completed).values()) == {"error"}
    tries = 0
    for task_id, row in manifest_rows(completed).items():
        assert row["attempts"] == 1, row  # --retries does not try a dead endpoint again
        assert "is down" in row["summary"], row
        tries += len(details_by_id(completed, task_id)["agent"]["exchanges"])
    assert 3 <= tries <= 16, tries  # at most about 3 rounds of the 4 slots
    down = [line for line in completed.stderr.splitlines() if "is down" in line]
    assert down == [f"fanout: warning: provider openai at {url} is down: connection failed "
                    f"{_count(down[0])} times in a row over {_span(down[0])} (ConnectError: All "
                    "connection attempts failed); its tasks end as error without a request"]


def _count(line: str) -> str:
    return line.split("connection failed ")[1].split(" ", maxsplit=1)[0]


def _span(line: str) -> str:
    return line.split(" in a row over ")[1].split(" ", maxsplit=1)[0]


# --- HTTP retries and task retries compose --------------------------------------------


@pytest.mark.parametrize(
    ("retries", "http_retries", "requests"),
    [("0", "0", 1), ("1", "0", 2), ("0", "2", 3), ("1", "2", 6), ("2", "1", 6)],
)
def test_each_attempt_makes_at_most_one_plus_http_retries_requests(
    fake_llm: FakeLLM, retries: str, http_retries: str, requests: int
) -> None:
    fake_llm.script(*[Status(500, headers={"retry-after": "0"})] * 10)
    completed = fanout(fake_llm, *SAY, "--retries", retries, "--retry-delay", "0",
                       "--http-retries", http_retries, ":::", "a")  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert statuses(completed) == {"a": "failure"}
    assert len(completions(fake_llm)) == requests


def test_http_retries_out_of_range_is_one_line() -> None:
    completed = fanout(None, *SAY, "--http-retries", "21", ":::", "a")
    line = one_error_line(completed)
    assert "--http-retries" in line and "21" in line


# --- a base URL without /v1 -----------------------------------------------------------


def test_a_base_url_without_v1_names_the_url_that_answered_404(fake_llm: FakeLLM) -> None:
    base = fake_llm.base_url.rstrip("/")
    completed = fanout(fake_llm, *SAY, "--base-url", base, ":::", "a")
    assert completed.returncode == 1
    summary = manifest_rows(completed)["a"]["summary"]
    assert f"HTTP 404 from {base}/chat/completions" in summary, summary
    assert f"did you mean {base}/v1?" in summary, summary
    assert len(completions(fake_llm)) == 0 and len(fake_llm.requests) == 1  # not retried


# --- smooth rates -----------------------------------------------------------------------


def _arrivals(fake_llm: FakeLLM, *args: str) -> list[float]:
    completed = fanout(fake_llm, *SAY, "-j", "8", *args, ":::", *map(str, range(8)))
    assert completed.returncode == 0, completed.stderr
    arrivals = sorted(r.received_at for r in completions(fake_llm))
    assert len(arrivals) == 8
    return arrivals


def test_a_rate_spaces_requests_evenly(fake_llm: FakeLLM) -> None:
    """--rate 5/s: one request every 0.2 s, not 5 at once."""
    arrivals = _arrivals(fake_llm, "--rate", "5/s")
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.1, gaps
    assert arrivals[-1] - arrivals[0] >= 1.35


def test_a_rate_burst_lets_that_many_go_together(fake_llm: FakeLLM) -> None:
    arrivals = _arrivals(fake_llm, "--rate", "5/s:3")
    assert most_in_window(arrivals, 0.1) == 3  # the burst, at once
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals[2:])]
    assert min(gaps) >= 0.1, gaps  # then one every 0.2 s
    assert arrivals[-1] - arrivals[0] >= 0.95


def test_a_burst_larger_than_the_count_is_one_line() -> None:
    line = one_error_line(fanout(None, "run", "--rate", "5/s:6", "--", "true", ":::", "a"))
    assert "--rate" in line and "burst" in line


# --- the fake servers' listen backlog ---------------------------------------------------


def _connected_at_once(port: int, count: int) -> int:
    """How many of `count` connections the kernel completes before anyone accepts."""
    sockets = []
    try:
        for _ in range(count):
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
            sockets.append(client)
        deadline = time.monotonic() + 0.5
        done: set[socket.socket] = set()
        while len(done) < count and (left := deadline - time.monotonic()) > 0:
            _, writable, _ = select.select([], [s for s in sockets if s not in done], [], left)
            done.update(s for s in writable
                        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)  # fmt: skip
        return len(done)
    finally:
        for client in sockets:
            client.close()


@pytest.fixture
def unserved() -> Iterator[_Server]:
    server = _Server(FakeLLM())  # bound and listening, but nothing accepts
    try:
        yield server
    finally:
        server.server_close()


def test_the_fake_server_takes_fifty_connections_at_once(unserved: _Server) -> None:
    assert _connected_at_once(unserved.server_address[1], 50) == 50


def _benchmark(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """benchmarks/NAME.py, loaded as the module `name` for this test only (the
    benchmarks import each other by name: `from run import ...`)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_server_takes_a_hundred_connections_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _benchmark("run", monkeypatch)
    server = _benchmark("agents", monkeypatch).chat_server(0.0)  # bound, listening, not serving
    try:
        assert _connected_at_once(server.server_address[1], 100) == 100
    finally:
        server.server_close()
