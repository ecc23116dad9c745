"""The executor and wire-format tables: what each entry accepts and builds. (The
strategies' table is tested with the strategies.)"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from fanout_cli.executors import (
    EXECUTORS,
    executor_kind,
    open_executor,
    parse_executor_url,
)
from fanout_cli.executors.process import ProcessExecutor
from fanout_cli.models import AgentCall
from fanout_cli.options import PolicyOptions
from fanout_cli.providers import WIRE_FORMATS


@pytest.mark.parametrize(
    ("text", "recorded"),
    [
        ("local", "local"),
        ("dask://scheduler:8786", "dask://scheduler:8786"),
        ("dask://10.0.0.5:8786/", "dask://10.0.0.5:8786"),
        ("tcp://scheduler:0080", "dask://scheduler:80"),
    ],
)
def test_executor_urls_in_their_recorded_form(text: str, recorded: str) -> None:
    assert parse_executor_url(text) == recorded
    assert executor_kind(recorded) is EXECUTORS[recorded.partition(":")[0]]


@pytest.mark.parametrize(
    "text",
    ["dask", "tcp", "Local", "dask://h", "dask://h:0", "dask://h:65536", "http://h:80",
     "dask://a b:1", "local://h:1"],
)
def test_other_executor_urls_are_refused_naming_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"^expected local or dask://HOST:PORT, got "):
        parse_executor_url(text)


def test_the_local_executor_opens_without_importing_distributed() -> None:
    code = (
        "import sys\n"
        "from fanout_cli.options import PolicyOptions\n"
        "from fanout_cli.executors import open_executor\n"
        "print(type(open_executor(PolicyOptions())).__name__, 'distributed' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["ProcessExecutor", "False"]
    assert isinstance(open_executor(PolicyOptions()), ProcessExecutor)


CALL = AgentCall(prompt="", model="m", system="be brief", max_tokens=None)


@pytest.mark.parametrize(
    ("api", "endpoint", "secret_header", "body"),
    [
        (
            "openai",
            "http://h/v1/chat/completions",
            ("authorization", "Bearer k"),
            {
                "model": "m",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                ],
            },
        ),
        (
            "anthropic",
            "http://h/v1/v1/messages",
            ("x-api-key", "k"),
            {
                "model": "m",
                "system": "be brief",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 1024,
            },
        ),
    ],
)
def test_each_wire_format_builds_its_request(
    api: str, endpoint: str, secret_header: tuple[str, str], body: dict[str, Any]
) -> None:
    wire = WIRE_FORMATS[api]
    assert wire.name == api
    assert wire.endpoint("http://h/v1/") == endpoint
    headers, built = wire.request(CALL, "hi", "k")
    assert headers[secret_header[0]] == secret_header[1]
    assert built == body
    assert list(built) == list(body)  # the order the request is recorded in
    keyless, _ = wire.request(CALL, "hi", None)
    assert secret_header[0] not in keyless


@pytest.mark.parametrize(
    ("api", "document", "usage", "finish"),
    [
        (
            "openai",
            {"choices": [{"finish_reason": "stop"}]},
            {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            "stop",
        ),
        (
            "anthropic",
            {"stop_reason": "end_turn"},
            {"input_tokens": 3, "output_tokens": 2},
            "end_turn",
        ),
    ],
)
def test_each_wire_format_reads_usage_and_finish_reason(
    api: str, document: dict[str, Any], usage: dict[str, Any], finish: str
) -> None:
    wire = WIRE_FORMATS[api]
    counts = wire.usage(usage)
    assert (counts["input_tokens"], counts["output_tokens"]) == (3, 2)
    assert wire.finish_reason(document) == finish
    assert wire.reply_text({}) is None
