"""The HTTP connection pools of a run's agent calls: httpx2 clients, opened in the
agent executor's session and closed with it. Only runs with agent calls import this
(and the HTTP client)."""

from __future__ import annotations

import contextlib
import os
import ssl

import httpx2

READ_TIMEOUT_SECONDS = 600.0  # a reply can take minutes; --timeout is the user's bound
CONNECT_TIMEOUT_SECONDS = 30.0
POOL_SLOTS = 8  # worker slots that share one connection pool


class Pools:
    """A pool scans all its idle connections for every request it places, so -j 50
    in one pool spends more time there than in the calls themselves: each group of
    POOL_SLOTS worker slots gets its own pool, and every connection it needs stays
    open between calls. Pools for https open at the first https call, with one TLS
    context for them all: loading the trusted certificates takes about 25 ms, which a
    run that calls only a local http server never spends. Those for http open at
    once: a first call made late would come closer to the second than a rate allows."""

    def __init__(
        self,
        stack: contextlib.AsyncExitStack,
        connections: int,  # -j: keep that many connections alive
        transport: httpx2.AsyncBaseTransport | None,  # tests: a MockTransport
    ) -> None:
        self._stack = stack
        self._count = -(-connections // POOL_SLOTS)
        self._transport = transport
        self._by_scheme = {False: self._open(secure=False)}  # by "is https"

    def client(self, url: str, slot: int) -> httpx2.AsyncClient:
        """The pool of this worker slot for this URL's scheme."""
        secure = url.startswith("https:")
        clients = self._by_scheme.get(secure)
        if clients is None:
            clients = self._by_scheme[secure] = self._open(secure)
        return clients[(slot - 1) // POOL_SLOTS % len(clients)]

    def _open(self, secure: bool) -> list[httpx2.AsyncClient]:
        timeout = httpx2.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
        verify = httpx2.create_ssl_context() if secure or _proxied() else _trusting_nothing()
        clients = []
        for _ in range(self._count):
            limits = httpx2.Limits(max_connections=None, max_keepalive_connections=POOL_SLOTS)
            client = httpx2.AsyncClient(
                timeout=timeout, transport=self._transport, limits=limits, verify=verify
            )
            self._stack.push_async_callback(client.aclose)
            clients.append(client)
        return clients


def _proxied() -> bool:
    """Whether a proxy may be set in the environment (httpx reads *_proxy variables):
    the connection to it may be TLS even when the server's URL is http."""
    return any(name.lower().endswith("_proxy") for name in os.environ)


def _trusting_nothing() -> ssl.SSLContext:
    """The TLS context of pools that only reach http URLs: it never connects, and
    would fail closed if it did (it verifies, and trusts no certificate)."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
