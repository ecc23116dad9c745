"""The coordinator's line to the Dask scheduler: connecting, checking that every worker
runs this fanout, closing. distributed is imported when connecting, so only a Dask run
loads it. See executors/dask.py for what runs where, and why."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, cast

import anyio

import fanout_cli
from fanout_cli.errors import UsageError
from fanout_cli.executors.dask_worker import ClusterClient, worker_fanout_version

CONNECT_TIMEOUT_SECONDS = 5.0
CLUSTER_CALL_SECONDS = 5.0  # bound on one bookkeeping call to the scheduler


async def connect(address: str, executor: str) -> ClusterClient:
    """A client of the scheduler at `address` (`executor` as the user wrote it, for
    messages); a UsageError when it cannot be reached."""
    import distributed

    try:
        with anyio.fail_after(CONNECT_TIMEOUT_SECONDS + 2):
            client = await distributed.Client(  # type: ignore[no-untyped-call]  # unannotated
                address,
                asynchronous=True,
                timeout=CONNECT_TIMEOUT_SECONDS,
                set_as_default=False,
                name="fanout",
            )
    except OSError as exc:  # refused, unresolvable, timed out (TimeoutError)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(
            f"--executor {executor}: cannot reach the Dask scheduler at {address} ({reason})"
        ) from None
    return cast(ClusterClient, client)


async def check_workers(address: str, executor: str) -> None:
    """Connect once before the run folder is made: an unreachable scheduler or a
    worker without this fanout is exit 2 now, not a run of errors."""
    client = await connect(address, executor)
    versions: dict[str, Any] = {}
    try:
        # A worker that does not answer in time is not waited for: each task checks
        # the version of the worker it runs on as well.
        with anyio.move_on_after(CONNECT_TIMEOUT_SECONDS):
            versions = await client.run(worker_fanout_version, on_error="return")
    finally:
        await close(client)
    for worker, version in sorted(versions.items()):
        if version != fanout_cli.__version__:
            found = (
                f"runs fanout {version}"
                if isinstance(version, str)
                else (f"cannot run fanout ({type(version).__name__}: {version})")
            )
            raise UsageError(
                f"--executor {executor}: worker {worker} {found}; install "
                f"fanout-cli=={fanout_cli.__version__} on every worker"
            )


async def close(client: ClusterClient) -> None:
    """Close the client, giving up after CLUSTER_CALL_SECONDS."""
    if client.status == "closed":
        return
    with anyio.move_on_after(CLUSTER_CALL_SECONDS), contextlib.suppress(Exception):
        await client.close()


def quiet_distributed_logs() -> None:
    """The client logs lost connections and the like on stderr; fanout says what they
    mean for each task in its record instead. (FANOUT_DEBUG=1 keeps the logs.) Some
    child loggers have levels of their own (distributed.client): set them all."""
    for name in list(logging.root.manager.loggerDict):
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(logging.CRITICAL)
