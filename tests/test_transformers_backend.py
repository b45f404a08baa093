"""The transformers rollout backend on a tiny random Qwen2 model (real generation)."""

from __future__ import annotations

import pytest
import torch

from skillzero import registry
from skillzero.contracts.rollout import SamplingParams
from skillzero.plugins.transformers_backend.backend import TransformersBackend, filter_logits

torch.set_num_threads(1)

CHATS = [
    "Your task is to: put a clean mug in coffeemachine.",
    "You arrive at countertop 1. On the countertop 1, you see a mug 1.",
    "look",
]


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    spec = registry.get("rollout_backends", "transformers")
    return spec.create({"name": "tiny", "path": str(tiny_model_dir)}, {"params": {"device": "cpu"}})


def prompt_ids(backend, text):
    return backend.apply_chat_template([{"role": "user", "content": text}])


def recompute_log_probs(model, prompt, response, temperature=1.0):
    """The trainer's view: one forward over prompt + response."""
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
    return (
        torch.log_softmax(logits / temperature, -1)
        .gather(-1, torch.tensor(response).unsqueeze(-1))
        .squeeze(-1)
    )


def test_greedy_matches_hf_generate_for_ragged_batches(backend):
    prompts = [prompt_ids(backend, c) for c in CHATS]
    assert len({len(p) for p in prompts}) == 3  # left padding is exercised
    params = SamplingParams(max_new_tokens=12, temperature=0.0)
    outs = backend.generate(prompts, params)
    for prompt, (gen,) in zip(prompts, outs, strict=True):
        reference = backend.model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            max_new_tokens=12,
            do_sample=False,
        )[0, len(prompt) :].tolist()
        eos = backend.tokenizer.eos_token_id
        expected = reference[: reference.index(eos)] if eos in reference else reference
        assert gen.token_ids == expected
        assert gen.prompt_ids == prompt
        assert len(gen.log_probs) == len(gen.token_ids)
        assert gen.text == backend.tokenizer.decode(expected, skip_special_tokens=True)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_log_probs_match_the_trainers_recomputation(backend, temperature):
    prompts = [prompt_ids(backend, c) for c in CHATS]
    params = SamplingParams(max_new_tokens=10, temperature=temperature, n=2, seed=3)
    for prompt, gens in zip(prompts, backend.generate(prompts, params), strict=True):
        assert len(gens) == 2
        for gen in gens:
            if not gen.token_ids:
                continue
            expected = recompute_log_probs(backend.model, prompt, gen.token_ids, temperature)
            torch.testing.assert_close(torch.tensor(gen.log_probs), expected, atol=1e-4, rtol=1e-4)


def test_identical_prompts_are_prefilled_once(backend):
    prompt = prompt_ids(backend, CHATS[0])
    other = prompt_ids(backend, CHATS[1])
    stats = backend.stats
    before = stats.prefill_tokens + stats.reused_prefix_tokens
    outs = backend.generate([prompt] * 4 + [other] * 4, SamplingParams(max_new_tokens=4, n=2))
    assert [len(g) for g in outs] == [2] * 8
    # each distinct prompt once, computed or read from the prefix cache
    assert stats.prefill_tokens + stats.reused_prefix_tokens - before == len(prompt) + len(other)


def test_seeded_sampling_is_reproducible_and_samples_differ(backend):
    prompt = prompt_ids(backend, CHATS[0])
    params = SamplingParams(max_new_tokens=16, temperature=1.0, n=6, seed=11)
    first = [g.token_ids for g in backend.generate([prompt], params)[0]]
    second = [g.token_ids for g in backend.generate([prompt], params)[0]]
    assert first == second
    assert len({tuple(t) for t in first}) > 1


def test_stop_strings_end_generation_and_are_kept(backend):
    prompt = prompt_ids(backend, CHATS[2])
    free = backend.generate([prompt], SamplingParams(max_new_tokens=20, temperature=0.0))[0][0]
    assert len(free.text) > 3, "the greedy continuation is needed to pick a stop string"
    stop = free.text[1:3]
    stopped = backend.generate(
        [prompt], SamplingParams(max_new_tokens=20, temperature=0.0, stop=(stop,))
    )[0][0]
    assert stopped.finish_reason == "stop"
    assert stop in stopped.text
    assert stopped.token_ids == free.token_ids[: len(stopped.token_ids)]
    assert len(stopped.token_ids) < len(free.token_ids)


def test_max_new_tokens_and_top_k_one_equals_greedy(backend):
    prompt = prompt_ids(backend, CHATS[1])
    greedy = backend.generate([prompt], SamplingParams(max_new_tokens=5, temperature=0.0))[0][0]
    top1 = backend.generate(
        [prompt], SamplingParams(max_new_tokens=5, temperature=1.0, top_k=1, seed=0)
    )[0][0]
    assert top1.token_ids == greedy.token_ids
    assert len(greedy.token_ids) <= 5
    if len(greedy.token_ids) == 5:
        assert greedy.finish_reason == "length"


def test_filter_logits_top_p_keeps_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(filter_logits(logits, top_k=-1, top_p=0.75))
    assert kept.tolist() == [[True, True, False, False]]
    kept = torch.isfinite(filter_logits(logits, top_k=3, top_p=1.0))
    assert kept.tolist() == [[True, True, True, False]]


def test_load_weights_switches_to_the_new_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    backend = TransformersBackend({"path": str(tiny_model_dir)}, {"params": {"device": "cpu"}})
    prompt = prompt_ids(backend, CHATS[0])
    params = SamplingParams(max_new_tokens=8, temperature=0.0)
    before = backend.generate([prompt], params)[0][0]

    perturbed = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(5)
    with torch.no_grad():
        for p in perturbed.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    backend.load_weights(perturbed.state_dict().items())
    after = backend.generate([prompt], params)[0][0]
    reference = TransformersBackend(
        {"path": str(tiny_model_dir)},
        {"params": {"device": "cpu"}},
        model=perturbed,
        tokenizer=backend.tokenizer,
    ).generate([prompt], params)[0][0]
    assert after.token_ids == reference.token_ids
    assert after.token_ids != before.token_ids
    with pytest.raises(KeyError, match="no parameters"):
        backend.load_weights([("not.a.weight", torch.zeros(1))])


def test_empty_prompt_is_rejected(backend):
    assert backend.generate([], SamplingParams()) == []
    with pytest.raises(ValueError, match="empty prompt"):
        backend.generate([[]], SamplingParams())


# ----------------------------------------------------------------------------------------
# prefix cache and shared-prompt decoding
# ----------------------------------------------------------------------------------------

INSTRUCTIONS = (
    "You are in the middle of a room. Looking quickly around you, you see a cabinet 1, "
    "a countertop 1, a fridge 1, a microwave 1, a sinkbasin 1 and a stoveburner 1. "
    "Your task is to: put a clean mug in coffeemachine."
)
TURN_ONE = ["look", "go to countertop 1", "open fridge 1"]
TURN_TWO = ["take mug 1 from countertop 1", "go to countertop 1", "clean mug 1 with sinkbasin 1"]


def episode_prompts(backend, actions):
    """Prompts that share the instructions (and, between turns, more) as agent prompts do."""
    return [prompt_ids(backend, f"{INSTRUCTIONS}\nYour last action: {a}") for a in actions]


def tiny_backend(tiny_model_dir, **params):
    return TransformersBackend(
        {"path": str(tiny_model_dir)},
        {"params": {"device": "cpu", "prefix_cache_block_size": 4, **params}},
    )


def trainer_log_probs(model, prompt, response, temperature):
    """The trainer's computation (``response_log_probs`` of the policy) for one sample."""
    from tensordict import TensorDict

    from skillzero.contracts.trajectory import K
    from skillzero.core.policy import response_log_probs

    micro = TensorDict(
        {
            K.PROMPT_IDS: torch.tensor([prompt]),
            K.PROMPT_MASK: torch.ones(1, len(prompt), dtype=torch.bool),
            K.RESPONSE_IDS: torch.tensor([response]),
            K.RESPONSE_MASK: torch.ones(1, len(response), dtype=torch.bool),
        },
        batch_size=[1],
    )
    log_probs, _ = response_log_probs(model, micro, temperature=temperature)
    return log_probs[0]


@pytest.mark.parametrize(
    "sampling",
    [
        SamplingParams(max_new_tokens=10, temperature=0.0),
        SamplingParams(max_new_tokens=10, temperature=1.0, n=3, seed=5),
        SamplingParams(max_new_tokens=10, temperature=0.7, top_p=0.9, n=2, seed=8),
    ],
    ids=["greedy", "seeded", "seeded-top-p"],
)
def test_reused_prefixes_give_what_a_full_prefill_gives(tiny_model_dir, sampling):
    cached = tiny_backend(tiny_model_dir)
    plain = tiny_backend(tiny_model_dir, prefix_cache=False)
    for actions in (TURN_ONE, TURN_TWO):
        prompts = episode_prompts(cached, actions)
        reused = cached.stats.reused_prefix_tokens
        with_cache = cached.generate(prompts, sampling)
        without = plain.generate(prompts, sampling)
        # the shared instructions were read from the cache (the first prompt of the first
        # call computes them; every later prompt reuses them)
        assert cached.stats.reused_prefix_tokens - reused >= 4 * (len(prompts) - 1)
        for prompt, gens, reference in zip(prompts, with_cache, without, strict=True):
            assert len(gens) == sampling.n
            for gen, ref in zip(gens, reference, strict=True):
                assert gen.token_ids == ref.token_ids
                assert gen.finish_reason == ref.finish_reason
                torch.testing.assert_close(
                    torch.tensor(gen.log_probs), torch.tensor(ref.log_probs), atol=1e-5, rtol=0
                )
                if gen.token_ids:
                    expected = trainer_log_probs(
                        cached.model, prompt, gen.token_ids, sampling.temperature or 1.0
                    )
                    torch.testing.assert_close(
                        torch.tensor(gen.log_probs), expected, atol=1e-4, rtol=1e-4
                    )
    assert plain.stats.reused_prefix_tokens == 0
    assert cached.stats.prefill_tokens < plain.stats.prefill_tokens


def test_prefix_cache_is_cleared_when_the_weights_change(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    backend = tiny_backend(tiny_model_dir)
    prompts = episode_prompts(backend, TURN_ONE)
    params = SamplingParams(max_new_tokens=6, temperature=0.0)
    backend.generate(prompts, params)
    assert len(backend.prefix_cache) > 0
    perturbed = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in perturbed.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    backend.load_weights(perturbed.state_dict().items())
    assert len(backend.prefix_cache) == 0
    reused = backend.stats.reused_prefix_tokens
    after = backend.generate(prompts[:1], params)[0][0]
    assert backend.stats.reused_prefix_tokens == reused  # nothing stale was read
    fresh = TransformersBackend(
        {"path": str(tiny_model_dir)},
        {"params": {"device": "cpu", "prefix_cache": False}},
        model=perturbed,
        tokenizer=backend.tokenizer,
    ).generate(prompts[:1], params)[0][0]
    assert after.token_ids == fresh.token_ids
    # weights changed in place without load_weights are noticed as well
    with torch.no_grad():
        next(backend.model.parameters()).mul_(1.5)
    backend.generate(prompts[:1], params)
    assert backend.stats.reused_prefix_tokens == reused


def test_prefix_cache_stays_within_its_token_bound(tiny_model_dir):
    backend = tiny_backend(tiny_model_dir, prefix_cache_max_tokens=24)
    prompts = episode_prompts(backend, TURN_ONE + TURN_TWO)
    backend.generate(prompts, SamplingParams(max_new_tokens=2, temperature=0.0))
    assert 0 < backend.prefix_cache.tokens <= 24
    # the most recently used prefix survives eviction: the shared start of the prompts
    length, blocks = backend.prefix_cache.match(prompts[0], len(prompts[0]) - 1)
    assert length >= 4
    assert len(blocks) == length // 4


@pytest.mark.parametrize("max_batch_rows", [64, 5])
def test_rows_leave_the_batch_and_batches_split_by_rows(tiny_model_dir, max_batch_rows):
    """Rows that stop early leave the decoding batch, prompts are spread over batches of
    at most ``max_batch_rows`` rows, and a repeated prompt has more rows than the others:
    every prompt still gets what it gets when generated alone."""
    backend = tiny_backend(tiny_model_dir, max_batch_rows=max_batch_rows)
    prompts = episode_prompts(backend, TURN_ONE + TURN_TWO)
    prompts.append(prompts[0])
    free = backend.generate(prompts, SamplingParams(max_new_tokens=12, temperature=0.0))
    texts = [gens[0].text for gens in free]
    # a stop string that some responses contain and others do not
    stop = next(
        t[i : i + 2]
        for t in texts
        for i in range(len(t) - 1)
        if 0 < sum(t[i : i + 2] in u for u in texts) < len(texts) - 1
    )
    params = SamplingParams(max_new_tokens=12, temperature=0.0, n=2, stop=(stop,))
    together = backend.generate(prompts, params)
    reasons = {g.finish_reason for gens in together for g in gens}
    assert reasons == {"stop", "length"}
    for prompt, gens in zip(prompts, together, strict=True):
        alone = backend.generate([prompt], params)[0]
        assert [g.token_ids for g in gens] == [g.token_ids for g in alone]
        assert [g.finish_reason for g in gens] == [g.finish_reason for g in alone]
        for gen, ref in zip(gens, alone, strict=True):
            torch.testing.assert_close(
                torch.tensor(gen.log_probs), torch.tensor(ref.log_probs), atol=1e-5, rtol=0
            )


def test_unknown_backend_settings_are_rejected(tiny_model_dir):
    with pytest.raises(ValueError, match="prefill_batch_size"):
        tiny_backend(tiny_model_dir, prefill_batch_size=8)


def test_draw_follows_the_distribution_and_skips_zero_probabilities():
    from skillzero.plugins.transformers_backend.backend import draw

    probs = torch.tensor([[0.0, 0.2, 0.0, 0.5, 0.3, 0.0]]).repeat(20000, 1)
    generator = torch.Generator().manual_seed(0)
    tokens = draw(probs * 7.0, generator)  # unnormalised weights are fine
    counts = torch.bincount(tokens, minlength=6).float() / len(tokens)
    assert counts[[0, 2, 5]].sum() == 0
    torch.testing.assert_close(counts, probs[0], atol=0.015, rtol=0)
    again = draw(probs * 7.0, torch.Generator().manual_seed(0))
    assert torch.equal(tokens, again)


def test_teacher_forced_greedy_match_is_what_greedy_decoding_writes(tiny_model_dir):
    """The SFT's action accuracy counts a response as reproduced when every token is the
    argmax under teacher forcing: exactly when greedy decoding writes that response."""
    from skillzero.contracts.trajectory import StepSample, collate_steps
    from skillzero.core.distributed import init_distributed
    from skillzero.core.policy import Policy

    backend = tiny_backend(tiny_model_dir, prefix_cache=False)
    gen = torch.Generator().manual_seed(3)
    prompts = [torch.randint(5, 300, (6 + i,), generator=gen).tolist() for i in range(6)]
    greedy = SamplingParams(max_new_tokens=6, temperature=0.0)
    written = [g[0].token_ids for g in backend.generate(prompts, greedy)]
    assert all(len(tokens) == 6 for tokens in written)  # no early EOS in this tiny model
    responses = [list(tokens) for tokens in written]
    for row in (1, 3, 5):  # change one token: greedy decoding would not write these
        position = row % 6
        responses[row][position] = (responses[row][position] + 1) % 300 + 5
    samples = [
        StepSample(p, r, [0.0] * len(r), group_id=i, traj_id=i)
        for i, (p, r) in enumerate(zip(prompts, responses, strict=True))
    ]
    ctx = init_distributed("cpu")
    try:
        policy = Policy(str(tiny_model_dir), {"dtype": "float32"}, {}, ctx)
        batch = collate_steps(samples)
        log_probs, match = policy.compute_log_probs(batch, greedy=True)
        plain = policy.compute_log_probs(batch)
    finally:
        ctx.close()
    assert torch.equal(log_probs, plain)  # the same forward pass gives both
    reproduced = match.all(-1).tolist()
    assert reproduced == [r == w for r, w in zip(responses, written, strict=True)]
    assert reproduced == [True, False, True, False, True, False]
    for row in (1, 3, 5):  # the first changed token is where the match fails
        assert match[row].tolist().index(False) == row % 6
