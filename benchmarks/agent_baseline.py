"""The agent benchmark's baseline: what a Python user writes instead of fanout.

    python benchmarks/agent_baseline.py URL JOBS < prompts.txt

One call per stdin line, the same request body fanout sends for
`--prompt 'question {}' --model m`, over one shared httpx2 AsyncClient with
`asyncio.gather` and an `asyncio.Semaphore(JOBS)`; the replies are printed in input
order. It keeps no records (no details file, no outputs, no journal). The pool keeps
JOBS connections alive (httpx's default keeps 20): the baseline a careful user
writes, so fanout is measured against the better of the two.
"""

from __future__ import annotations

import asyncio
import sys

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


if __name__ == "__main__":
    replies = asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.stdin.read().splitlines()))
    sys.stdout.write("".join(f"{reply}\n" for reply in replies))
