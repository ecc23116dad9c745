"""Which executor runs a run's tasks, chosen by the scheme of `--executor`.

`EXECUTORS` is the one table, by URL scheme. An entry names its opener as
"module:function" and the module is imported only when a run opens that executor:
a local run never imports distributed, and this module imports no executor (so
option parsing can use `parse_executor_url` without an import cycle).

To add an executor: write its module (a class following `executors.Executor`, and a
function `open_...(config) -> Executor`), then add one line to `EXECUTORS`. Agent
tasks are not an executor of the table: the run command wraps the chosen executor in
`executors.agent.AgentExecutor`, which hands it every task that is not an HTTP call."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from fanout_cli.executors import Executor

_ADDRESS = re.compile(r"([a-z][a-z0-9+.-]*)://([^:/\s]+):(\d{1,5})/?")


class Chosen(Protocol):
    """What opening an executor reads: a RunConfig (its opener reads the rest, such as
    --resources). Named as a protocol so that this module does not import config."""

    @property
    def executor(self) -> str: ...


@dataclass(frozen=True)
class ExecutorKind:
    scheme: str  # the scheme a run records ("dask" for tcp:// too)
    opener: str  # "module:function", the function taking the RunConfig
    address: bool  # the URL is SCHEME://HOST:PORT (else the bare scheme: "local")


EXECUTORS: Mapping[str, ExecutorKind] = {
    "local": ExecutorKind("local", "fanout_cli.executors.process:open_local", address=False),
    "dask": ExecutorKind("dask", "fanout_cli.executors.dask:connect_executor", address=True),
    "tcp": ExecutorKind("dask", "fanout_cli.executors.dask:connect_executor", address=True),
}


def _forms() -> str:
    """How the accepted values are shown: "local or dask://HOST:PORT"."""
    shown: list[str] = []
    for name, kind in EXECUTORS.items():
        form = f"{name}://HOST:PORT" if kind.address else name
        if kind.scheme == name and form not in shown:
            shown.append(form)
    return " or ".join(shown)


def parse_executor_url(text: str) -> str:
    """An --executor value in its recorded form ("local", "dask://HOST:PORT");
    ValueError when it names no executor of the table."""
    kind = EXECUTORS.get(text)
    if kind is not None and not kind.address:
        return kind.scheme
    match = _ADDRESS.fullmatch(text)
    if match is not None:
        kind = EXECUTORS.get(match.group(1))
        port = int(match.group(3))
        if kind is not None and kind.address and 0 < port < 65536:
            return f"{kind.scheme}://{match.group(2)}:{port}"
    raise ValueError(f"expected {_forms()}, got {text!r}")


def executor_kind(url: str) -> ExecutorKind:
    """The table's entry for a recorded --executor value."""
    scheme = url.partition("://")[0] if "://" in url else url
    return EXECUTORS[scheme]


def open_executor(config: Chosen) -> Executor:
    """The executor `config.executor` names, ready to run (a remote one has answered;
    a UsageError, exit 2, when it cannot be reached or its extra is not installed)."""
    module_name, _, function = executor_kind(config.executor).opener.partition(":")
    opener: Any = getattr(importlib.import_module(module_name), function)
    return cast(Executor, opener(config))

