#!/usr/bin/env bash
# Set up the environment and run the main job on the embedded default: SKILL0 with
# SmolLM2-135M-Instruct on the project's own ALFWorld games, on CPU, for a few steps.
# Arguments replace the default overrides, e.g.
#   bash scripts/quickstart.sh env=alfworld algo=grpo experiment=quickstart
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "${SKILLZERO_QUICKSTART_EXTRAS:-alfworld,model,skills}"
export TOKENIZERS_PARALLELISM=false
.venv/bin/skillzero plugins
if [ "$#" -eq 0 ]; then
  set -- env=alfworld algo=skill0 experiment=quickstart algo.callbacks.0.params.every=1 \
    algo.callbacks.0.params.helpfulness=expert_likelihood \
    algo.callbacks.0.params.val_tasks=6
fi
exec .venv/bin/skillzero train "$@"
