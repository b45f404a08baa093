"""The training loop end to end on the corridor test env with a tiny random model:
collection, the batch layout, the run folder, checkpoints and resume, evaluation."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.corridor_plugin import (
    CorridorPlugin,
    CorridorPrompt,
    ScriptedBackend,
    corridor_parser,
    corridor_run_overrides,
)
from helpers.envs import CorridorEnv

from skillzero.contracts.env import Task
from skillzero.contracts.rollout import SamplingParams
from skillzero.contracts.trajectory import K, collate_steps
from skillzero.core.collector import Assignment, Collector
from skillzero.core.config import compose, validate
from skillzero.core.pool import EnvPool

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def corridor(plugin):
    plugin(CorridorPlugin(), "corridor-test")


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _pool(num_groups: int, group_size: int, max_steps: int = 3) -> EnvPool:
    return EnvPool(
        CorridorEnv,
        {"max_steps": max_steps},
        num_groups=num_groups,
        group_size=group_size,
        backend="inline",
    )


def _collector(pool, backend, history_length=2, max_prompt_tokens=512):
    return Collector(
        pool,
        backend,
        CorridorPrompt({"history_length": history_length}),
        corridor_parser(),
        max_prompt_tokens=max_prompt_tokens,
        eos_token_id=backend.tokenizer.eos_token_id,
    )


def _task(i: int, length: int) -> Task:
    return Task(f"t{i}", task_type=f"len{length}", payload={"length": length})


# ----------------------------------------------------------------------------------------
# the collector
# ----------------------------------------------------------------------------------------


def test_collector_one_sample_per_active_env_per_turn(tokenizer):
    # group 0 plays a corridor of length 1, group 1 of length 3; every response says
    # "forward", so group 0 finishes after 1 turn and group 1 after 3.
    backend = ScriptedBackend(tokenizer, ["go forward"])
    with _pool(2, 2, max_steps=5) as pool:
        tasks = [_task(0, 1), _task(1, 3)]
        result = _collector(pool, backend).run(
            [Assignment(tasks[g], seed=g, group_id=g) for g in range(2) for _ in range(2)],
            SamplingParams(max_new_tokens=4),
        )
    # finished envs stop generating: 4 envs act in turn 1, then only group 1's two
    assert backend.calls == [4, 2, 2]
    assert len(result.samples) == 2 * 1 + 2 * 3
    by_traj: dict[int, list] = {}
    for sample in result.samples:
        by_traj.setdefault(sample.traj_id, []).append(sample)
    assert len(by_traj) == 4
    for samples in by_traj.values():
        steps = sorted(s.step for s in samples)
        assert steps == list(range(len(samples)))
        # the episode's return and outcome are stamped on every step
        assert {s.episode_return for s in samples} == {1.0}
        assert all(s.won for s in samples)
        assert [s.done for s in sorted(samples, key=lambda s: s.step)][-1] is True
    assert sorted(e.length for e in result.episodes) == [1, 1, 3, 3]
    assert {s.group_id for s in result.samples if s.task_id == "t1"} == {1}


def test_collector_rebuilds_prompts_from_a_history_window(tokenizer):
    backend = ScriptedBackend(tokenizer, ["wait"])
    with _pool(1, 1, max_steps=4) as pool:
        result = _collector(pool, backend, history_length=1).run(
            [Assignment(_task(0, 2), seed=0, group_id=0)], SamplingParams(max_new_tokens=4)
        )
    last = max(result.samples, key=lambda s: s.step)
    assert last.step == 3
    prompt = tokenizer.decode(last.prompt_ids)
    # only the last turn of history is shown, and the step number counts all turns
    assert prompt.count("Saw:") == 1
    assert "Step 4." in prompt
    assert last.prompt_context.step == 4
    assert len(last.prompt_context.history) == 1


def test_collector_shortens_history_to_fit_the_prompt_limit(tokenizer):
    backend = ScriptedBackend(tokenizer, ["wait"])
    with _pool(1, 1, max_steps=4) as pool:
        full = _collector(pool, backend, history_length=3).run(
            [Assignment(_task(0, 2), seed=0, group_id=0)], SamplingParams(max_new_tokens=4)
        )
    longest = max(len(s.prompt_ids) for s in full.samples)
    backend = ScriptedBackend(tokenizer, ["wait"])
    with _pool(1, 1, max_steps=4) as pool:
        cut = _collector(pool, backend, history_length=3, max_prompt_tokens=longest - 1).run(
            [Assignment(_task(0, 2), seed=0, group_id=0)], SamplingParams(max_new_tokens=4)
        )
    assert max(len(s.prompt_ids) for s in cut.samples) <= longest - 1
    assert cut.shortened_histories >= 1
    assert cut.truncated_prompts == 0  # dropping history was enough: nothing was cut


def test_collector_refills_envs_from_a_task_queue(tokenizer):
    backend = ScriptedBackend(tokenizer, ["forward"])
    with _pool(2, 1) as pool:
        tasks = [_task(i, 1 + i % 2) for i in range(5)]
        result = _collector(pool, backend).run(
            [Assignment(t, seed=i, group_id=i) for i, t in enumerate(tasks)],
            SamplingParams(max_new_tokens=4),
            record_samples=False,
        )
    assert sorted(e.task.task_id for e in result.episodes) == [f"t{i}" for i in range(5)]
    assert all(e.won for e in result.episodes)
    assert result.samples == []


def test_malformed_responses_are_invalid_and_recorded(tokenizer):
    backend = ScriptedBackend(tokenizer, ["<think>hmm</think> no idea", "forward"])
    with _pool(1, 1) as pool:
        result = _collector(pool, backend).run(
            [Assignment(_task(0, 1), seed=0, group_id=0)], SamplingParams(max_new_tokens=4)
        )
    valid = [s.action_valid for s in sorted(result.samples, key=lambda s: s.step)]
    assert valid == [False, True]
    assert "invalid response" in result.samples[-1].prompt_context.history[0].action
    batch = collate_steps(result.samples, pad_token_id=0)
    assert sorted(batch[K.ACTION_VALID].tolist()) == [False, True]


# ----------------------------------------------------------------------------------------
# the whole loop
# ----------------------------------------------------------------------------------------


def _overrides(tiny_model_dir, run_dir, *extra):
    return corridor_run_overrides(tiny_model_dir, run_dir, *extra)


def _train(overrides):
    from skillzero.core.training import train

    return train(validate(compose(overrides)))


def _metrics(run_dir):
    from skillzero.core.metrics_log import read_metrics

    merged: dict[int, dict] = {}
    for record in read_metrics(run_dir):
        merged.setdefault(record["step"], {}).update(record)
    return merged


REQUIRED = [
    "rollout/success_rate",
    "rollout/valid_action_ratio",
    "rollout/episode_length",
    "rollout/prompt_tokens_per_step",
    "rollout/response_tokens_per_step",
    "loss/total",
    "ppo_clip/clip_fraction",
    "kl/kl",
    "entropy/entropy",
    "train/grad_norm",
    "train/lr",
    "time/generation",
    "time/env",
    "time/log_probs",
    "time/update",
    "time/weight_sync",
    "time/other",
]


def test_train_writes_metrics_checkpoints_and_plots(corridor, tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    assert (
        _train(_overrides(tiny_model_dir, run, "trainer.total_steps=2", "trainer.val_every=2")) == 0
    )
    metrics = _metrics(run)
    assert sorted(metrics) == [1, 2]
    for key in REQUIRED:
        assert key in metrics[1], key
    assert any(k.startswith("rollout/success_rate/len") for k in metrics[1])
    assert "val/success_rate" in metrics[2]
    # 2 groups x 2 envs, corridors of <= 3 steps: between 4 and 12 samples per step
    assert 4 <= metrics[1]["rollout/samples"] <= 12
    assert math.isfinite(metrics[2]["train/grad_norm"])
    final = run / "checkpoints" / "step_000002"
    assert (final / "COMPLETE").is_file()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(final / "model")
    assert model.config.model_type == "qwen2"
    for name in ("success.png", "tokens.png", "time.png", "loss.png"):
        assert (run / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("compute_dtype", [None, "bfloat16"])
def test_training_changes_the_weights_and_syncs_the_backend(
    corridor, tiny_model_dir, tmp_path, compute_dtype
):
    from skillzero.core.training import Trainer

    extra = [f"model.compute_dtype={compute_dtype}"] if compute_dtype else []
    cfg = validate(
        compose(
            _overrides(
                tiny_model_dir,
                tmp_path / "run",
                "trainer.total_steps=1",
                "trainer.optim.lr=1e-3",
                "trainer.plots=false",
                *extra,
            )
        )
    )
    trainer = Trainer(cfg)
    try:
        expected = torch.bfloat16 if compute_dtype else None
        assert trainer.backend.compute_dtype is expected
        before = {k: v.clone() for k, v in trainer.backend.model.state_dict().items()}
        trainer.fit()
        after = trainer.backend.model.state_dict()
        trained = trainer.policy.full_state_dict()
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        assert changed, "the rollout backend still has the initial weights"
        for key in changed:
            assert torch.allclose(after[key], trained[key].to(after[key].dtype))
            if compute_dtype:  # mixed precision keeps float32 weights, pushed exactly
                assert after[key].dtype == torch.float32
                assert torch.equal(after[key], trained[key])
    finally:
        trainer.close()
        trainer.ctx.close()


def test_dynamic_sampling_drops_uninformative_groups(corridor, tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    _train(
        _overrides(
            tiny_model_dir,
            run,
            "trainer.total_steps=1",
            "algo.dynamic_sampling=true",
            "algo.max_resample_rounds=2",
            "trainer.plots=false",
        )
    )
    metrics = _metrics(run)[1]
    # a random tiny model never walks the corridor: every group's returns are equal, so
    # every group of both rounds is dropped and the last round is trained on as is
    assert metrics["rollout/kept_groups"] == 0
    assert metrics["rollout/dropped_groups"] == 4


def test_resume_continues_exactly(corridor, tiny_model_dir, tmp_path):
    common = [
        "trainer.total_steps=3",
        "trainer.save_every=1",
        "trainer.plots=false",
        "trainer.optim.lr=1e-3",
    ]
    straight = tmp_path / "straight"
    _train(_overrides(tiny_model_dir, straight, *common))
    crashed = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        _train(
            _overrides(
                tiny_model_dir,
                crashed,
                *common,
                "algo.callbacks=[{name: crash_before_step, params: {step: 3}}]",
            )
        )
    assert sorted(p.name for p in (crashed / "checkpoints").iterdir()) == [
        "step_000001",
        "step_000002",
    ]
    _train(_overrides(tiny_model_dir, crashed, *common, "trainer.resume=true"))
    a, b = _metrics(straight), _metrics(crashed)
    assert sorted(b) == [1, 2, 3]
    for key in (
        "rollout/success_rate",
        "rollout/samples",
        "rollout/prompt_tokens_per_step",
        "loss/total",
        "train/grad_norm",
        "kl/kl",
        "entropy/entropy",
    ):
        assert b[3][key] == pytest.approx(a[3][key], rel=1e-5, abs=1e-7), key
    from safetensors.torch import load_file

    wa = load_file(straight / "checkpoints/step_000003/model/model.safetensors")
    wb = load_file(crashed / "checkpoints/step_000003/model/model.safetensors")
    for key in wa:
        assert torch.allclose(wa[key], wb[key], atol=1e-6), key


def test_partial_checkpoint_is_never_resumed(corridor, tiny_model_dir, tmp_path):
    from skillzero.core import checkpoint as ckpt

    run = tmp_path / "run"
    _train(_overrides(tiny_model_dir, run, "trainer.total_steps=1", "trainer.plots=false"))
    # a crash while writing step 2: the folder exists but has no COMPLETE marker
    partial = ckpt.begin(run, 2)
    (partial / "trainer_state.pt").write_bytes(b"half a file")
    assert ckpt.latest_checkpoint(run).name == "step_000001"


def test_eval_reports_success_and_tokens(corridor, tiny_model_dir, tmp_path, capsys):
    from skillzero.cli import main

    out = tmp_path / "report.json"
    status = main(
        [
            "eval",
            "env=corridor",
            f"model.path={tiny_model_dir}",
            "backend.val_sampling.max_new_tokens=6",
            "eval.num_tasks=3",
            f"eval.output={out}",
        ]
    )
    assert status == 0
    report = json.loads(out.read_text())
    assert len(report["episodes"]) == 3
    for key in ("success_rate", "prompt_tokens_per_step", "valid_action_ratio"):
        assert key in report["metrics"]
    assert report["metrics"]["prompt_tokens_per_step"] > 10
    printed = capsys.readouterr().out
    assert "success_rate" in printed
    assert "prompt_tokens_per_step" in printed


def test_eval_of_a_missing_checkpoint_is_a_clear_error(corridor, tmp_path, capsys):
    from skillzero.cli import main

    with pytest.raises(FileNotFoundError, match="neither a checkpoint folder"):
        main(["eval", "env=corridor", f"eval.checkpoint={tmp_path / 'nope'}"])


# ----------------------------------------------------------------------------------------
# FSDP: 2 ranks give the same update as 1
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_fsdp_two_cpu_ranks_match_one(tiny_model_dir, tmp_path):
    results = {}
    for ranks in (1, 2):
        out = tmp_path / f"ranks{ranks}.pt"
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "tests"))
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={ranks}",
                "-m",
                "helpers.fsdp_update",
                str(tiny_model_dir),
                str(out),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[ranks] = torch.load(out, weights_only=False)
    one, two = results[1], results[2]
    assert one["metrics"].keys() == two["metrics"].keys()
    for key in (
        "loss/total",
        "ppo_clip/clip_fraction",
        "kl/kl",
        "entropy/entropy",
        "train/grad_norm",
    ):
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], rel=1e-4, abs=1e-6), key
    assert torch.allclose(one["old_log_probs"], two["old_log_probs"], atol=1e-5)
    for name, weight in one["weights"].items():
        assert torch.allclose(weight, two["weights"][name], atol=1e-6), name
    # the update did something
    assert any(not torch.equal(w, one["initial"][n]) for n, w in one["weights"].items())


@pytest.mark.slow
def test_two_rank_training_run(tiny_model_dir, tmp_path):
    """`torchrun --nproc_per_node=2`: rank 0 rolls out, both ranks train; validation
    and checkpoints are collective and the run folder is written once."""
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "tests"))
    proc = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node=2", "-m", "helpers.train_script",
            *_overrides(tiny_model_dir, run, "trainer.total_steps=2", "trainer.val_every=1",
                        "trainer.save_every=1", "trainer.plots=false"),
        ],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = _metrics(run)
    assert sorted(metrics) == [1, 2]
    assert "val/success_rate" in metrics[1]
    assert math.isfinite(metrics[2]["train/grad_norm"])
    # one line per step: only rank 0 logs
    from skillzero.core.metrics_log import read_metrics

    assert len(read_metrics(run)) == 2
    assert (run / "checkpoints" / "step_000002" / "COMPLETE").is_file()
    assert proc.stdout.count("finished 2 steps") == 1


def _policy_update(tiny_model_dir, model_cfg, trainer_extra=None, keep=False):
    """One update of a fresh policy on a fixed batch; returns (metrics, log-probs)
    (with ``keep``, the metrics also hold the updated ``state_dict``)."""
    from skillzero.contracts.losses import WeightedTerm
    from skillzero.contracts.trajectory import StepSample
    from skillzero.core.distributed import init_distributed
    from skillzero.core.policy import Policy
    from skillzero.plugins.grpo.losses import EntropyLoss, PPOClipLoss

    gen = torch.Generator().manual_seed(0)
    samples = [
        StepSample(
            torch.randint(5, 300, (8 + i,), generator=gen).tolist(),
            torch.randint(5, 300, (4,), generator=gen).tolist(),
            [0.0] * 4,
            group_id=i // 2,
            traj_id=i,
        )
        for i in range(6)
    ]
    batch = collate_steps(samples)
    ctx = init_distributed("cpu")
    try:
        cfg = {"microbatch_size": 2, "total_steps": 1, "optim": {"lr": 1e-3, "eps": 1e-3}}
        cfg.update(trainer_extra or {})
        policy = Policy(str(tiny_model_dir), model_cfg, cfg, ctx)
        batch[K.OLD_LOG_PROBS] = policy.compute_log_probs(batch)
        batch[K.ADVANTAGES] = torch.randn(6, generator=gen)
        terms = [
            WeightedTerm("ppo_clip", 1.0, PPOClipLoss()),
            WeightedTerm("entropy", -0.001, EntropyLoss()),
        ]
        metrics = policy.update(batch, terms, minibatch_size=6, needs_entropy=True)
        if keep:
            metrics["state_dict"] = {k: v.clone() for k, v in policy.model.state_dict().items()}
        return metrics, policy.compute_log_probs(batch)
    finally:
        ctx.close()


def test_gradient_checkpointing_gives_the_same_update(tiny_model_dir):
    base = {"dtype": "float32", "attn_implementation": "sdpa"}
    plain, after_plain = _policy_update(tiny_model_dir, base)
    ckpt, after_ckpt = _policy_update(tiny_model_dir, {**base, "gradient_checkpointing": True})
    for key in ("loss/total", "train/grad_norm", "entropy/entropy"):
        assert ckpt[key] == pytest.approx(plain[key], rel=1e-5), key
    assert torch.allclose(after_plain, after_ckpt, rtol=1e-5, atol=1e-4)


def test_bf16_mixed_precision_update_runs_close_to_fp32(tiny_model_dir):
    base = {"dtype": "float32", "attn_implementation": "sdpa"}
    fp32, _ = _policy_update(tiny_model_dir, base)
    bf16, after = _policy_update(tiny_model_dir, base, {"fsdp": {"mixed_precision": "bf16"}})
    assert math.isfinite(bf16["loss/total"])
    assert bf16["loss/total"] == pytest.approx(fp32["loss/total"], abs=0.05)
    assert bf16["train/grad_norm"] == pytest.approx(fp32["train/grad_norm"], rel=0.1)
    assert torch.isfinite(after).all()


def test_bf16_compute_dtype_update_runs_close_to_fp32_with_float32_weights(tiny_model_dir):
    base = {"dtype": "float32", "attn_implementation": "sdpa"}
    fp32, fp32_log_probs = _policy_update(tiny_model_dir, base)
    mixed, mixed_log_probs = _policy_update(
        tiny_model_dir, {**base, "compute_dtype": "bfloat16"}, keep=True
    )
    assert math.isfinite(mixed["loss/total"])
    assert mixed["loss/total"] == pytest.approx(fp32["loss/total"], abs=0.05)
    assert mixed["train/grad_norm"] == pytest.approx(fp32["train/grad_norm"], rel=0.1)
    # master weights stay float32; the updated policy computes in bfloat16 (not the
    # float32 numbers) and stays close to the float32 update
    assert all(v.dtype == torch.float32 for v in mixed["state_dict"].values())
    assert not torch.equal(mixed_log_probs, fp32_log_probs)
    torch.testing.assert_close(mixed_log_probs, fp32_log_probs, atol=0.2, rtol=0.05)


def test_trainable_layers_update_only_the_top_blocks(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from skillzero.core.distributed import init_distributed
    from skillzero.core.policy import Policy

    base = {"dtype": "float32", "attn_implementation": "sdpa"}
    start = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).state_dict()
    blocks = 1 + max(int(k.split(".")[2]) for k in start if k.startswith("model.layers."))
    assert blocks >= 2
    full, _ = _policy_update(tiny_model_dir, base)
    top, after = _policy_update(tiny_model_dir, {**base, "trainable_layers": 1}, keep=True)
    assert torch.isfinite(after).all()
    assert top["train/grad_norm"] > 0
    # the top block's gradient is part of the whole model's gradient
    assert top["train/grad_norm"] < full["train/grad_norm"]
    trained = top["state_dict"]
    top_prefix = f"model.layers.{blocks - 1}."
    for name, value in start.items():
        if not (name.startswith(top_prefix) or name == "model.norm.weight"):
            assert torch.equal(trained[name], value), f"{name} is frozen but changed"
    assert any(not torch.equal(trained[n], v) for n, v in start.items() if n.startswith(top_prefix))

    ctx = init_distributed("cpu")
    try:
        with pytest.raises(ValueError, match="decoder blocks"):
            Policy(str(tiny_model_dir), {**base, "trainable_layers": blocks + 1}, {}, ctx)
    finally:
        ctx.close()


@pytest.mark.parametrize("algo", ["grpo", "gigpo"])
def test_rl_teaches_a_random_model_the_rewarded_behaviour(corridor, tiny_model_dir, tmp_path, algo):
    """The vowel env rewards responses that start with a vowel; a random tiny model does
    that 1 time in 8. After a few updates it does it nearly always, and with the learning
    rate at 0 (the control) it does not improve: the loop learns from the reward."""

    def success(lr: float) -> list[float]:
        run = tmp_path / f"{algo}-lr{lr}"
        _train(
            [
                "env=vowel",
                f"algo={algo}",
                f"model.path={tiny_model_dir}",
                f"trainer.output_dir={run}",
                "backend.sampling.max_new_tokens=2",
                "trainer.total_steps=6",
                "trainer.minibatch_size=32",
                "trainer.microbatch_size=16",
                f"trainer.optim.lr={lr}",
                "trainer.progress=false",
                "trainer.plots=false",
                "trainer.loggers=[jsonl]",
            ]
        )
        metrics = _metrics(run)
        return [metrics[step]["rollout/success_rate"] for step in sorted(metrics)]

    learned, control = success(1e-4), success(0.0)
    assert learned[0] < 0.5
    assert min(learned[-3:]) >= 0.8
    assert max(control) < 0.5


def test_sampler_log_probs_can_stand_in_for_the_recomputation(corridor, tiny_model_dir, tmp_path):
    """With the transformers backend the sampler computes what the trainer would, so
    trainer.recompute_log_probs=false gives the same first update without the pass."""
    common = ["trainer.total_steps=1", "trainer.plots=false"]
    _train(_overrides(tiny_model_dir, tmp_path / "a", *common))
    _train(_overrides(tiny_model_dir, tmp_path / "b", *common, "trainer.recompute_log_probs=false"))
    a, b = _metrics(tmp_path / "a")[1], _metrics(tmp_path / "b")[1]
    assert a["rollout/sampler_trainer_log_prob_gap"] < 1e-4
    assert "rollout/sampler_trainer_log_prob_gap" not in b
    for key in ("loss/total", "ppo_clip/clip_fraction", "train/grad_norm"):
        assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-6), key
