"""Several rollout engines as Ray actors (``trainer.rollout.engines``): prompt splitting,
generation identical to one engine (greedy), weight pushes, and a training run.

The engines are real transformers backends on the tiny random model, each in its own
Ray actor of a local 2-CPU Ray cluster."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skillzero import registry
from skillzero.contracts.rollout import SamplingParams
from skillzero.core import ray_cluster
from skillzero.core.multi_engine import build_rollout_backend, share_seed, split_prompts

pytestmark = pytest.mark.timeout(600)

TEXTS = [
    "Your task is to: put a clean mug in coffeemachine.",
    "You arrive at countertop 1. On the countertop 1, you see a mug 1.",
    "look",
    "take mug 1 from countertop 1",
    "go to fridge 1",
]


# ----------------------------------------------------------------------------------------
# splitting a turn's prompts
# ----------------------------------------------------------------------------------------


def test_cuts_fall_between_groups() -> None:
    # 3 groups of 2 members; members share their whole prompt, groups only a prefix
    group = [[1, 2, 3, 10 + g, 4, 5] for g in range(3)]
    prompts = [p for p in group for _ in range(2)]
    assert split_prompts(prompts, 2) in ([range(0, 2), range(2, 6)], [range(0, 4), range(4, 6)])
    assert split_prompts(prompts, 3) == [range(0, 2), range(2, 4), range(4, 6)]
    # groups of 4 over 2 engines: never a cut inside a group
    prompts = [[7, g, 1] for g in range(2) for _ in range(4)]
    assert split_prompts(prompts, 2) == [range(0, 4), range(4, 8)]


def test_fewer_prompts_than_engines() -> None:
    assert split_prompts([[1], [2]], 4) == [range(0, 1), range(1, 2)]
    assert split_prompts([], 3) == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=6), min_size=1, max_size=40),
    st.integers(1, 8),
)
def test_split_is_contiguous_complete_and_balanced(prompts, parts) -> None:
    shares = split_prompts(prompts, parts)
    assert len(shares) == min(parts, len(prompts))
    assert [i for share in shares for i in share] == list(range(len(prompts)))
    assert all(len(share) >= 1 for share in shares)
    size = len(prompts) / len(shares)
    assert max(len(share) for share in shares) <= 2 * size + 1


def test_share_seeds_differ_and_share_zero_keeps_the_seed() -> None:
    assert share_seed(None, 3) is None
    assert share_seed(11, 0) == 11
    assert len({share_seed(11, k) for k in range(8)}) == 8


# ----------------------------------------------------------------------------------------
# real engines
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_engine(tiny_model_dir):
    return build_rollout_backend(
        "transformers",
        {"name": "tiny", "path": str(tiny_model_dir)},
        {"params": {"device": "cpu"}},
        {"engines": 1},
    )


@pytest.fixture(scope="module")
def two_engines(tiny_model_dir, ray_local):
    from skillzero.core.multi_engine import MultiEngineBackend

    backend = build_rollout_backend(
        "transformers",
        {"name": "tiny", "path": str(tiny_model_dir)},
        {"params": {"device": "cpu"}},
        {"engines": 2, "num_cpus": 0.5, "num_gpus": 0},
    )
    assert isinstance(backend, MultiEngineBackend)
    yield backend
    backend.close()
    assert ray_cluster.reserved() == {}


def _prompts(backend) -> list[list[int]]:
    # groups of 2: members share their prompt, as at the first turn of an episode
    chats = [[{"role": "user", "content": text}] for text in TEXTS for _ in range(2)]
    return [backend.apply_chat_template(chat) for chat in chats]


def _same(a, b) -> None:
    assert len(a) == len(b)
    for gens_a, gens_b in zip(a, b, strict=True):
        assert len(gens_a) == len(gens_b)
        for x, y in zip(gens_a, gens_b, strict=True):
            assert x.prompt_ids == y.prompt_ids
            assert x.token_ids == y.token_ids
            assert x.text == y.text
            assert x.finish_reason == y.finish_reason
            # other batch shapes take other kernels: the last bits of a log-prob may
            # differ (the tolerance of the backend's own tests)
            torch.testing.assert_close(
                torch.tensor(x.log_probs), torch.tensor(y.log_probs), atol=1e-4, rtol=1e-4
            )


@pytest.mark.slow
def test_two_engines_generate_what_one_does(one_engine, two_engines) -> None:
    assert two_engines.num_engines == 2
    assert len(set(two_engines.pids)) == 2
    prompts = _prompts(two_engines)
    assert prompts == _prompts(one_engine)  # the engines' tokenizer is the backend's
    greedy = SamplingParams(max_new_tokens=10, temperature=0.0, seed=5)
    expected = one_engine.generate(prompts, greedy)
    _same(two_engines.generate(prompts, greedy), expected)
    assert any(g[0].token_ids for g in expected)
    # a subset of the prompts (envs that finished drop out) is still split and ordered
    _same(two_engines.generate(prompts[3:6], greedy), expected[3:6])
    assert two_engines.generate([], greedy) == []

    # new weights reach every engine: both still agree with one engine, and differ from
    # what the old weights generated
    generator = torch.Generator().manual_seed(0)
    state = {
        name: tensor + 0.5 * torch.randn(tensor.shape, generator=generator)
        for name, tensor in one_engine.model.state_dict().items()
    }
    one_engine.load_weights(state.items())
    two_engines.load_weights(state.items())
    updated = one_engine.generate(prompts, greedy)
    _same(two_engines.generate(prompts, greedy), updated)
    assert [g[0].token_ids for g in updated] != [g[0].token_ids for g in expected]


def test_engines_need_one_or_more(tiny_model_dir) -> None:
    with pytest.raises(ValueError, match=r"trainer\.rollout\.engines must be >= 1"):
        build_rollout_backend("transformers", {"path": str(tiny_model_dir)}, {}, {"engines": 0})


def test_engine_request_larger_than_the_cluster_fails_at_once(tiny_model_dir, ray_local) -> None:
    from skillzero.core.multi_engine import MultiEngineBackend

    before = ray_cluster.reserved()
    # the session cluster has 2 CPUs: an engine of 3 would wait for ever
    with pytest.raises(RuntimeError, match=r"trainer\.rollout\.num_cpus"):
        MultiEngineBackend(
            "transformers",
            {"path": str(tiny_model_dir)},
            {"params": {"device": "cpu"}},
            engines=2,
            num_cpus=3.0,
            num_gpus=0,
        )
    assert ray_cluster.reserved() == before


def test_rollout_settings_are_in_the_config_schema(plugin) -> None:
    from helpers.corridor_plugin import CorridorPlugin

    from skillzero.core.config import compose, validate

    plugin(CorridorPlugin(), "corridor-test")
    cfg = validate(compose(["env=corridor", "algo=grpo", "trainer.rollout.engines=3"]))
    assert cfg.trainer.rollout.engines == 3
    assert cfg.trainer.rollout.num_gpus is None
    assert registry.get("env_workers", "ray").plugin == "builtin"


# ----------------------------------------------------------------------------------------
# training with two engines (and Ray env workers)
# ----------------------------------------------------------------------------------------


def _train(tiny_model_dir, run_dir, *extra):
    from helpers.corridor_plugin import install

    from skillzero.core.config import compose, validate
    from skillzero.core.metrics_log import read_metrics
    from skillzero.core.training import train

    install()
    overrides = [
        "env=corridor",
        "algo=grpo",
        f"model.path={tiny_model_dir}",
        f"trainer.output_dir={run_dir}",
        "backend.sampling.max_new_tokens=6",
        "backend.sampling.temperature=0",
        "trainer.minibatch_size=8",
        "trainer.microbatch_size=4",
        "trainer.progress=false",
        "trainer.plots=false",
        "trainer.seed=3",
        "trainer.total_steps=2",
        "trainer.optim.lr=1e-3",
        *extra,
    ]
    assert train(validate(compose(overrides))) == 0
    merged: dict[int, dict] = {}
    for record in read_metrics(run_dir):
        merged.setdefault(record["step"], {}).update(record)
    return merged


@pytest.mark.slow
def test_training_with_two_engines_matches_one(tiny_model_dir, tmp_path, ray_local) -> None:
    before = ray_cluster.reserved()
    one = _train(tiny_model_dir, tmp_path / "one")
    two = _train(
        tiny_model_dir,
        tmp_path / "two",
        "trainer.rollout.engines=2",
        # beside the module's two engines (1 CPU): the session cluster has 2
        "trainer.rollout.num_cpus=0.25",
        "env.pool.backend=ray",
        "env.pool.workers=2",
    )
    assert ray_cluster.reserved() == before  # the trainer closed its engines and env actors
    assert sorted(two) == [1, 2]
    # step 2 rolls out with the weights pushed after step 1: equal samples and losses
    # mean both engines got them
    for step in (1, 2):
        for key in (
            "rollout/samples",
            "rollout/success_rate",
            "rollout/prompt_tokens_per_step",
            "rollout/response_tokens_per_step",
            "loss/total",
            "train/grad_norm",
        ):
            assert two[step][key] == pytest.approx(one[step][key], rel=1e-4, abs=1e-6), key
    assert "time/weight_sync" in two[2]
