"""Agent calls (issue 20, part 3), for `benchmarks/run.py --only agent-calls`.

Two workloads against a local OpenAI-compatible server on 127.0.0.1 that answers
every call after a fixed latency:

    500 calls, 50 ms server, -j 50:  fanout against the asyncio baseline (target
                                     1.25 x), the ideal (500 / 50 x 0.05 s) and
                                     `xargs -P50 curl`
    200 calls, 1 s server, -j 100:   fanout against the ideal 2 s (target 1.1 x),
                                     the baseline beside it

fanout: `fanout run -q -j JOBS --prompt 'question {}' --base-url URL --model m`, one
call per stdin line, with all its records (a details file per call, outputs, the
journal). The baseline (agent_baseline.py): asyncio.gather over one shared httpx2
AsyncClient and a semaphore of JOBS, the same request bodies, no records. Both run
as their own Python process, so both walls include an interpreter start and the
httpx2 import; the commands alternate round by round.

The server is asyncio (one event loop in a thread of this process, a listen backlog
of 1024). That it is not the bottleneck is measured in the same rounds: the same
calls over plain asyncio sockets (agent_baseline.py --sockets) come close to the
ideal, so what the httpx2 baseline spends beyond it is the HTTP client's own CPU.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import statistics
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from run import FANOUT, alternate, timed

BASELINE = str(Path(__file__).with_name("agent_baseline.py"))
BACKLOG = 1024  # above the most connections a workload opens at once
WORKLOADS = (  # calls, jobs, server latency in s, the target as a ratio, against what
    (500, 50, 0.05, 1.25, "baseline"),
    (200, 100, 1.0, 1.1, "ideal"),
)


class ChatServer:
    """An OpenAI-compatible chat server on 127.0.0.1: every POST is answered after
    `latency` seconds, over keep-alive connections. Bound and listening from the
    start; serving while used as a context manager, which gives its base URL."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.socket = socket.create_server(("127.0.0.1", 0), backlog=BACKLOG)
        self.server_address = self.socket.getsockname()
        self._stop: Callable[[], None] = lambda: None
        self._thread: threading.Thread | None = None
        self.calls = 0

    def server_close(self) -> None:
        self.socket.close()

    def __enter__(self) -> str:
        started = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(started),), daemon=True)
        self._thread.start()
        started.wait()
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __exit__(self, *exc: object) -> None:
        self._stop()
        if self._thread is not None:
            self._thread.join()
        self.server_close()

    async def _serve(self, started: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        self._stop = lambda: loop.call_soon_threadsafe(stop.set)
        # start_server listens again, with its own backlog (100 unless told).
        server = await asyncio.start_server(self._connection, sock=self.socket, backlog=BACKLOG)
        started.set()
        await stop.wait()
        server.close()  # asyncio.run cancels the connections still open

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = json.loads(await reader.readexactly(length)) if length else {}
                await asyncio.sleep(self.latency)
                self.calls += 1
                reply = json.dumps({"model": body.get("model"), "choices": [{"message": {
                    "role": "assistant", "content": "answer"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(reply), reply))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


def chat_server(latency: float) -> ChatServer:
    return ChatServer(latency)


def agent_calls(rounds: int, scratch: Path, xargs: str | None) -> list[dict[str, Any]]:
    return [_workload(rounds, scratch, xargs, *workload) for workload in WORKLOADS]


def _workload(rounds: int, scratch: Path, xargs: str | None, calls: int, jobs: int,
              latency: float, limit: float, against: str) -> dict[str, Any]:
    ideal = calls / jobs * latency
    name = f"agent-{calls}-{jobs}"
    values = scratch / f"{name}.txt"
    values.write_text("".join(f"{n}\n" for n in range(calls)))
    with ChatServer(latency) as base_url:
        def fanout(n: int) -> float:
            return timed([FANOUT, "run", "-q", "-j", str(jobs), "--output-dir", str(scratch / f"{name}-{n}"),
                          "--prompt", "question {}", "--base-url", base_url, "--model", "m"], str(values))

        url = f"{base_url}/chat/completions"
        commands = {"fanout": fanout,
                    "baseline": lambda n: timed([sys.executable, BASELINE, url, str(jobs)], str(values)),
                    "sockets": lambda n: timed([sys.executable, BASELINE, "--sockets", url, str(jobs)], str(values))}
        curl = shutil.which("curl")
        if xargs and curl and latency < 1:  # GNU parallel starts 50 curls a second here: 66 s a round
            body = '{"model": "m", "messages": [{"role": "user", "content": "question {}"}]}'
            commands["xargs+curl"] = lambda n: timed(
                [xargs, f"-P{jobs}", "-I{}", curl, "-s", "-o", "/dev/null", "-H",
                 "content-type: application/json", "-d", body, url], str(values))
        samples = alternate(rounds, commands)
    medians = {command: statistics.median(walls) for command, walls in samples.items()}
    peer = medians["baseline"] if against == "baseline" else ideal
    ratio = medians["fanout"] / peer
    note = (f"fanout {medians['fanout'] / ideal:.2f} x ideal ({ideal:.1f}s), baseline "
            f"{medians['baseline'] / ideal:.2f} x ideal, fanout {medians['fanout'] / medians['baseline']:.2f} x "
            f"baseline; the server to plain sockets: {medians['sockets'] / ideal:.2f} x ideal; "
            f"{_records(scratch / f'{name}-0', calls, ideal)}")
    if "xargs+curl" in medians:
        note += f"; xargs -P{jobs} curl: {medians['xargs+curl']:.3f}s"
    return {
        "workload": f"{calls} agent calls, {latency * 1000:g} ms server, -j {jobs}",
        "measure": "wall s",
        "target": f"<= {limit} x {'asyncio baseline' if against == 'baseline' else f'ideal ({ideal:g} s)'}",
        "fanout": medians["fanout"],
        "peer": peer,
        "peer_name": "asyncio.gather + httpx2, semaphore" if against == "baseline" else "ideal: calls / jobs x latency",
        "ratio": ratio,
        "passed": ratio <= limit,
        "note": note,
        "samples": samples,
    }


def _records(out_dir: Path, calls: int, ideal: float) -> str:
    """What the first fanout round left: its records, and its first start to last end."""
    from run import _epoch

    run_dir = next(out_dir.iterdir())
    events = [json.loads(line) for line in (run_dir / "journal.jsonl").read_bytes().splitlines()]
    starts = [_epoch(e["time"]) for e in events if e["event"] == "task_started"]
    ends = [_epoch(e["time"]) for e in events if e["event"] == "task_ended"]
    succeeded = sum(e.get("status") == "success" for e in events if e["event"] == "task_ended")
    details = sum(path.name != "manifest.json" for path in run_dir.glob("*.json"))
    makespan = max(ends) - min(starts)
    return (f"{succeeded}/{calls} calls succeeded, {details} details files; first start to last end "
            f"{makespan:.3f}s = {makespan / ideal:.2f} x ideal")
