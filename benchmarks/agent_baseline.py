"""The agent benchmark's baseline: what a Python user writes instead of fanout.

    python benchmarks/agent_baseline.py URL JOBS < prompts.txt
    python benchmarks/agent_baseline.py --sockets URL JOBS < prompts.txt

One call per stdin line, the same request body fanout sends for
`--prompt 'question {}' --model m`, over one shared httpx2 AsyncClient with
`asyncio.gather` and an `asyncio.Semaphore(JOBS)`; the replies are printed in input
order. It keeps no records (no details file, no outputs, no journal). The pool keeps
JOBS connections alive (httpx's default keeps 20): the baseline a careful user
writes, so fanout is measured against the better of the two.

--sockets: the same calls written and read over plain asyncio streams (kept-alive
connections, no HTTP library): how close the server lets any client come to the
ideal, so that a baseline far from it is known to be the client's cost.
"""

from __future__ import annotations

import asyncio
import json
import sys
from urllib.parse import urlsplit

import httpx2


async def main(url: str, jobs: int, values: list[str]) -> list[str]:
    limits = httpx2.Limits(max_connections=jobs, max_keepalive_connections=jobs)
    semaphore = asyncio.Semaphore(jobs)
    async with httpx2.AsyncClient(limits=limits, timeout=600) as client:

        async def call(value: str) -> str:
            body = {"model": "m", "messages": [{"role": "user", "content": f"question {value}"}]}
            async with semaphore:
                response = await client.post(url, json=body, headers={"user-agent": "fanout"})
            response.raise_for_status()
            return str(response.json()["choices"][0]["message"]["content"])

        return await asyncio.gather(*(call(value) for value in values))


async def sockets(url: str, jobs: int, values: list[str]) -> list[str]:
    where = urlsplit(url)
    semaphore = asyncio.Semaphore(jobs)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def call(value: str) -> str:
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"question {value}"}]})
        async with semaphore:
            reader, writer = idle.pop() if idle else await asyncio.open_connection(where.hostname, where.port)
            writer.write(f"POST {where.path} HTTP/1.1\r\nhost: {where.netloc}\r\ncontent-type: application/json"
                         f"\r\ncontent-length: {len(body)}\r\n\r\n{body}".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            reply = json.loads(await reader.readexactly(length))
            idle.append((reader, writer))
        return str(reply["choices"][0]["message"]["content"])

    return await asyncio.gather(*(call(value) for value in values))


if __name__ == "__main__":
    run = sockets if sys.argv[1] == "--sockets" else main
    url, jobs = sys.argv[-2:]
    replies = asyncio.run(run(url, int(jobs), sys.stdin.read().splitlines()))
    sys.stdout.write("".join(f"{reply}\n" for reply in replies))
