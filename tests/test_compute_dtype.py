"""Mixed precision (``model.compute_dtype``): matrix products in bfloat16 through
torch.autocast, weights and LM head in float32, in the trainer and the transformers
rollout backend alike (tiny random Qwen2 model, real generation)."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from skillzero.contracts.rollout import SamplingParams
from skillzero.contracts.trajectory import K, left_pad
from skillzero.core.models import native_bf16, resolve_compute_dtype, set_compute_dtype
from skillzero.core.policy import load_causal_lm, response_log_probs
from skillzero.plugins.transformers_backend.backend import TransformersBackend

torch.set_num_threads(1)

CHATS = [
    "Your task is to: put a clean mug in coffeemachine.",
    "You arrive at countertop 1. On the countertop 1, you see a mug 1.",
]


def test_compute_dtype_names_resolve_and_bad_names_are_rejected():
    assert resolve_compute_dtype(None, "cpu") is None
    assert resolve_compute_dtype("null", "cpu") is None
    assert resolve_compute_dtype("bfloat16", "cpu") is torch.bfloat16
    assert resolve_compute_dtype("float16", "cuda") is torch.float16
    expected = torch.bfloat16 if native_bf16("cpu") else None
    assert resolve_compute_dtype("auto", "cpu") is expected
    with pytest.raises(ValueError, match=r"model\.compute_dtype must be null or one of"):
        resolve_compute_dtype("bf16x", "cpu")


def test_matrix_products_run_in_bfloat16_and_the_lm_head_in_float32(tiny_model_dir):
    model_cfg = {"name": "tiny", "path": str(tiny_model_dir), "compute_dtype": "bfloat16"}
    model = load_causal_lm(str(tiny_model_dir), model_cfg, torch.device("cpu")).eval()
    plain = load_causal_lm(str(tiny_model_dir), {"name": "tiny"}, torch.device("cpu")).eval()
    assert set(model.state_dict()) == set(plain.state_dict())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    seen: dict[str, torch.dtype] = {}

    def record(name: str):
        def hook(module, inputs, output) -> None:
            seen[name] = output.dtype

        return hook

    model.model.layers[0].mlp.down_proj.register_forward_hook(record("mlp"))
    model.lm_head.register_forward_hook(record("head"))
    ids = torch.randint(3, 200, (2, 17))
    with torch.no_grad():
        mixed = model(input_ids=ids).logits
        exact = plain(input_ids=ids).logits
    assert seen == {"mlp": torch.bfloat16, "head": torch.float32}
    assert mixed.dtype == torch.float32
    # the same function up to bfloat16 rounding, and not bit-identical (it did compute
    # in bfloat16)
    assert not torch.equal(mixed, exact)
    torch.testing.assert_close(mixed, exact, atol=0.1, rtol=0.05)
    # applying it twice changes nothing
    assert set_compute_dtype(model, torch.bfloat16) is model


def test_sampler_log_probs_agree_with_the_trainers_in_bfloat16(tiny_model_dir):
    model_cfg = {"name": "tiny", "path": str(tiny_model_dir), "compute_dtype": "bfloat16"}
    backend = TransformersBackend(model_cfg, {"params": {"device": "cpu"}})
    assert backend.compute_dtype is torch.bfloat16
    trainer_model = load_causal_lm(str(tiny_model_dir), model_cfg, torch.device("cpu")).eval()
    prompts = [backend.apply_chat_template([{"role": "user", "content": c}]) for c in CHATS]
    params = SamplingParams(max_new_tokens=12, temperature=1.0, n=3, seed=5)
    gaps = []
    for prompt, gens in zip(prompts, backend.generate(prompts, params), strict=True):
        for gen in gens:
            if not gen.token_ids:
                continue
            ids, mask = left_pad([prompt], 0)
            response = torch.tensor([gen.token_ids])
            micro = TensorDict(
                {
                    K.PROMPT_IDS: ids,
                    K.PROMPT_MASK: mask,
                    K.RESPONSE_IDS: response,
                    K.RESPONSE_MASK: torch.ones_like(response, dtype=torch.bool),
                },
                batch_size=[1],
            )
            with torch.no_grad():
                trainer, _ = response_log_probs(trainer_model, micro)
            gaps.append((torch.tensor(gen.log_probs) - trainer[0]).abs())
    gap = torch.cat(gaps)
    assert gap.numel() >= 12
    # bfloat16 rounding in different batch shapes (cached decode vs one full forward):
    # small, well inside PPO's clip range, and far from a different function
    assert float(gap.mean()) < 0.02
    assert float(gap.max()) < 0.15


def test_weights_changed_between_calls_are_used_in_bfloat16(tiny_model_dir):
    """One autocast context spans each decode loop, whose bfloat16 copies of the
    weights are reused at every token: they must not outlive the call."""
    model_cfg = {"name": "tiny", "path": str(tiny_model_dir), "compute_dtype": "bfloat16"}
    backend = TransformersBackend(model_cfg, {"params": {"device": "cpu"}})
    prompt = backend.apply_chat_template([{"role": "user", "content": CHATS[0]}])
    params = SamplingParams(max_new_tokens=6, temperature=0.0)
    before = backend.generate([prompt], params)[0][0]
    with torch.no_grad():
        for p in backend.model.parameters():
            p.mul_(0.5)
    after = backend.generate([prompt], params)[0][0]
    # the pushed weights are used (a stale cast would give the same log-probs)
    assert before.log_probs != after.log_probs
