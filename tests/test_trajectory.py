"""Step-sample batches (collation, model inputs, mini-batching) and loss combination."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from tensordict import TensorDict

from skillzero.contracts.losses import LossOutput, LossTerm, PolicyOutputs, WeightedTerm, combine
from skillzero.contracts.trajectory import (
    K,
    StepSample,
    anchor_hash,
    collate_steps,
    iter_minibatches,
    masked_mean,
    model_inputs,
    pad_to_multiple,
    trim_padding,
)

torch.set_num_threads(1)

PAD = 99  # distinct from every real token below, so padding is visible in the ids


def sample(prompt: list[int], response: list[int], **kwargs) -> StepSample:
    log_probs = [-0.1 * (k + 1) for k in range(len(response))]
    return StepSample(prompt, response, log_probs, **kwargs)


SAMPLES = [
    sample(
        [1, 2, 3],
        [4, 5],
        reward=1.0,
        group_id=0,
        traj_id=0,
        step=0,
        task_type="pick",
        skill_ids=("a",),
        anchor_observation="You see a mug.",
    ),
    sample(
        [6],
        [7, 8, 9, 10],
        reward=0.5,
        episode_return=2.0,
        group_id=0,
        traj_id=1,
        step=1,
        action_valid=False,
        done=True,
        won=True,
        task_type="clean",
    ),
    sample([11, 12], [13], group_id=1, traj_id=2, task_type="heat", skill_ids=("b", "c")),
]


def batch_of(n: int, seed: int = 0) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(n):
        p = int(torch.randint(1, 6, (1,), generator=g))
        r = int(torch.randint(1, 5, (1,), generator=g))
        samples.append(
            sample(list(range(1, p + 1)), list(range(10, 10 + r)), traj_id=i, task_type=f"t{i}")
        )
    return collate_steps(samples, pad_token_id=PAD)


# ----------------------------------------------------------------------------------------
# collate_steps
# ----------------------------------------------------------------------------------------


def test_collate_layout() -> None:
    td = collate_steps(SAMPLES, pad_token_id=PAD)
    assert td.batch_size == torch.Size([3])
    assert td[K.PROMPT_IDS].tolist() == [[1, 2, 3], [PAD, PAD, 6], [PAD, 11, 12]]
    assert td[K.PROMPT_MASK].tolist() == [
        [True, True, True],
        [False, False, True],
        [False, True, True],
    ]
    assert td[K.RESPONSE_IDS].tolist() == [[4, 5, PAD, PAD], [7, 8, 9, 10], [13, PAD, PAD, PAD]]
    assert td[K.RESPONSE_MASK].tolist() == [
        [True, True, False, False],
        [True, True, True, True],
        [True, False, False, False],
    ]
    expected = [[-0.1, -0.2, 0, 0], [-0.1, -0.2, -0.3, -0.4], [-0.1, 0, 0, 0]]
    assert torch.allclose(td[K.ROLLOUT_LOG_PROBS], torch.tensor(expected))
    assert td[K.REWARD].tolist() == [1.0, 0.5, 0.0]
    assert td[K.EPISODE_RETURN].tolist() == [0.0, 2.0, 0.0]
    assert td[K.GROUP_ID].tolist() == [0, 0, 1]
    assert td[K.TRAJ_ID].tolist() == [0, 1, 2]
    assert td[K.STEP].tolist() == [0, 1, 0]
    assert td[K.ACTION_VALID].tolist() == [True, False, True]
    assert td[K.DONE].tolist() == [False, True, False]
    assert td[K.WON].tolist() == [False, True, False]
    assert td[K.ANCHOR_KEY].tolist() == [anchor_hash(s.anchor_observation) for s in SAMPLES]
    assert list(td[K.TASK_TYPE]) == ["pick", "clean", "heat"]
    assert [tuple(x) for x in td[K.SKILL_IDS]] == [("a",), (), ("b", "c")]


def test_collate_dtypes() -> None:
    td = collate_steps(SAMPLES)
    expected = {
        K.PROMPT_IDS: torch.long,
        K.PROMPT_MASK: torch.bool,
        K.RESPONSE_IDS: torch.long,
        K.RESPONSE_MASK: torch.bool,
        K.ROLLOUT_LOG_PROBS: torch.float32,
        K.REWARD: torch.float32,
        K.EPISODE_RETURN: torch.float32,
        K.GROUP_ID: torch.long,
        K.TRAJ_ID: torch.long,
        K.STEP: torch.long,
        K.ACTION_VALID: torch.bool,
        K.DONE: torch.bool,
        K.WON: torch.bool,
        K.ANCHOR_KEY: torch.long,
    }
    for key, dtype in expected.items():
        assert td[key].dtype == dtype, key
        assert td[key].shape[0] == 3


def test_masks_follow_lengths_even_when_pad_id_is_a_real_token() -> None:
    # token 0 is both real and the pad id: masks must come from lengths, not from ids
    samples = [sample([0, 0], [0]), sample([5], [0, 0, 0])]
    td = collate_steps(samples, pad_token_id=0)
    assert td[K.PROMPT_MASK].sum(-1).tolist() == [2, 1]
    assert td[K.RESPONSE_MASK].sum(-1).tolist() == [1, 3]
    assert td[K.PROMPT_MASK].tolist() == [[True, True], [False, True]]
    assert td[K.RESPONSE_MASK].tolist() == [[True, False, False], [True, True, True]]


def test_collate_empty_response() -> None:
    td = collate_steps([sample([1], []), sample([2, 3], [4])], pad_token_id=PAD)
    assert td[K.RESPONSE_IDS].tolist() == [[PAD], [4]]
    assert td[K.RESPONSE_MASK].tolist() == [[False], [True]]
    only_empty = collate_steps([sample([1], [])])
    assert only_empty[K.RESPONSE_IDS].shape == (1, 0)


def test_collate_rejects_empty_input() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        collate_steps([])


def test_step_sample_rejects_mismatched_log_probs() -> None:
    with pytest.raises(ValueError, match="2 response tokens but 1 log-probs"):
        StepSample([1], [2, 3], [-0.5])
    with pytest.raises(ValueError, match="0 response tokens but 1 log-probs"):
        StepSample([1], [], [-0.5])


def test_non_tensor_fields_survive_indexing() -> None:
    td = collate_steps(SAMPLES)
    picked = td[torch.tensor([2, 0])]
    assert list(picked[K.TASK_TYPE]) == ["heat", "pick"]
    assert [tuple(x) for x in picked[K.SKILL_IDS]] == [("b", "c"), ("a",)]
    assert picked[K.TRAJ_ID].tolist() == [2, 0]
    sliced = td[1:]
    assert list(sliced[K.TASK_TYPE]) == ["clean", "heat"]
    assert td[1][K.TASK_TYPE] == "clean"
    assert tuple(td[2][K.SKILL_IDS]) == ("b", "c")


# ----------------------------------------------------------------------------------------
# anchor_hash
# ----------------------------------------------------------------------------------------


def test_anchor_hash_range_and_distinctness() -> None:
    observations = ["", "You see a mug.", "You see a mug!", "ünïcode ✓", "\ud800"]
    hashes = [anchor_hash(o) for o in observations]
    assert all(0 <= h < 2**63 for h in hashes)
    assert len(set(hashes)) == len(hashes)
    assert anchor_hash("You see a mug.") == hashes[1]


def test_anchor_hash_is_stable_across_processes() -> None:
    observations = ["You see a mug.", "ünïcode ✓", ""]
    code = (
        "from skillzero.contracts.trajectory import anchor_hash\n"
        f"print([anchor_hash(o) for o in {observations!r}])"
    )
    # a fresh interpreter with another str-hash salt than this one
    hash_seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == str([anchor_hash(o) for o in observations])


# ----------------------------------------------------------------------------------------
# model_inputs, trim_padding
# ----------------------------------------------------------------------------------------


def test_model_inputs() -> None:
    td = collate_steps(SAMPLES, pad_token_id=PAD)
    input_ids, attention_mask, position_ids = model_inputs(td)
    assert input_ids.shape == attention_mask.shape == position_ids.shape == (3, 7)
    assert input_ids[1].tolist() == [PAD, PAD, 6, 7, 8, 9, 10]
    assert attention_mask.dtype == torch.long
    assert attention_mask[1].tolist() == [0, 0, 1, 1, 1, 1, 1]
    assert attention_mask[2].tolist() == [0, 1, 1, 1, 0, 0, 0]
    for row in range(3):
        real = attention_mask[row].bool()
        first = int(real.nonzero()[0])
        # position 0 at the first real token, then counting real tokens only
        assert position_ids[row, first] == 0
        assert position_ids[row][real].tolist() == list(range(int(real.sum())))
    assert position_ids[1].tolist()[2:] == [0, 1, 2, 3, 4]


def test_trim_padding_removes_only_all_pad_columns() -> None:
    td = collate_steps(SAMPLES, pad_token_id=PAD)
    # rows 1 and 2: prompts of length 1 and 2, responses of length 4 and 1
    sub = td[torch.tensor([1, 2])]
    sub[K.ADVANTAGES] = torch.arange(8, dtype=torch.float32).reshape(2, 4)
    sub[K.OLD_LOG_PROBS] = torch.full((2, 4), -1.0)
    trimmed = trim_padding(sub)
    assert trimmed[K.PROMPT_IDS].tolist() == [[PAD, 6], [11, 12]]
    assert trimmed[K.PROMPT_MASK].tolist() == [[False, True], [True, True]]
    # the longest response is 4 long: nothing to trim on the response side
    assert trimmed[K.RESPONSE_IDS].tolist() == [[7, 8, 9, 10], [13, PAD, PAD, PAD]]
    assert torch.equal(trimmed[K.ADVANTAGES], sub[K.ADVANTAGES])
    # a batch of short responses drops the all-pad response columns of every (B, R) key
    short = trim_padding(td[torch.tensor([0, 2])])
    assert short[K.PROMPT_IDS].tolist() == [[1, 2, 3], [PAD, 11, 12]]
    assert short[K.RESPONSE_IDS].tolist() == [[4, 5], [13, PAD]]
    assert short[K.RESPONSE_MASK].tolist() == [[True, True], [True, False]]
    assert short[K.ROLLOUT_LOG_PROBS].shape == (2, 2)
    # per-sample keys and non-tensors are untouched, the original is not modified
    assert short[K.TRAJ_ID].tolist() == [0, 2]
    assert list(short[K.TASK_TYPE]) == ["pick", "heat"]
    assert td[K.PROMPT_IDS].shape == (3, 3)
    assert td[K.RESPONSE_IDS].shape == (3, 4)


def test_trim_padding_keeps_every_real_token() -> None:
    td = batch_of(12, seed=4)
    for rows in ([0], [3, 5], list(range(12))):
        sub = td[torch.tensor(rows)]
        trimmed = trim_padding(sub)
        assert trimmed[K.PROMPT_MASK].sum() == sub[K.PROMPT_MASK].sum()
        assert trimmed[K.RESPONSE_MASK].sum() == sub[K.RESPONSE_MASK].sum()
        # no all-pad column is left
        assert trimmed[K.PROMPT_MASK].any(0).all()
        assert trimmed[K.RESPONSE_MASK].any(0).all()
        ids, mask, pos = model_inputs(sub)
        t_ids, t_mask, t_pos = model_inputs(trimmed)
        for r in range(len(rows)):
            assert ids[r][mask[r].bool()].tolist() == t_ids[r][t_mask[r].bool()].tolist()
            assert pos[r][mask[r].bool()].tolist() == t_pos[r][t_mask[r].bool()].tolist()


# ----------------------------------------------------------------------------------------
# iter_minibatches, pad_to_multiple, masked_mean
# ----------------------------------------------------------------------------------------


def traj_ids(minibatches) -> list[list[int]]:
    return [mb[K.TRAJ_ID].tolist() for mb in minibatches]


def test_minibatches_cover_every_sample_once() -> None:
    td = batch_of(10)
    chunks = traj_ids(iter_minibatches(td, 3, generator=torch.Generator().manual_seed(0)))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    assert sorted(i for c in chunks for i in c) == list(range(10))
    assert [i for c in chunks for i in c] != list(range(10))  # shuffled


def test_minibatches_are_deterministic_under_a_seeded_generator() -> None:
    td = batch_of(16)

    def order(seed: int) -> list[list[int]]:
        return traj_ids(iter_minibatches(td, 4, generator=torch.Generator().manual_seed(seed)))

    assert order(5) == order(5)
    assert order(5) != order(6)


def test_minibatches_without_shuffle_and_drop_last() -> None:
    td = batch_of(7)
    assert traj_ids(iter_minibatches(td, 3, shuffle=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert traj_ids(iter_minibatches(td, 3, shuffle=False, drop_last=True)) == [
        [0, 1, 2],
        [3, 4, 5],
    ]
    with pytest.raises(ValueError, match="minibatch_size"):
        next(iter_minibatches(td, 0))


def test_minibatches_are_trimmed_and_keep_non_tensors() -> None:
    td = collate_steps(SAMPLES, pad_token_id=PAD)
    for mb in iter_minibatches(td, 1, shuffle=False):
        assert mb[K.PROMPT_MASK].all()
        assert mb[K.RESPONSE_MASK].all()
    mbs = list(iter_minibatches(td, 2, shuffle=False))
    assert list(mbs[0][K.TASK_TYPE]) == ["pick", "clean"]
    assert [tuple(x) for x in mbs[1][K.SKILL_IDS]] == [("b", "c")]


def test_pad_to_multiple() -> None:
    td = collate_steps(SAMPLES)
    assert pad_to_multiple(td, 3) is td
    assert pad_to_multiple(td, 1) is td
    padded = pad_to_multiple(td, 4)
    assert padded.batch_size == torch.Size([4])
    assert not padded[K.RESPONSE_MASK][3].any()
    assert padded[K.GROUP_ID].tolist() == [0, 0, 1, -1]
    assert padded[K.TRAJ_ID].tolist() == [0, 1, 2, -1]
    assert torch.equal(padded[K.RESPONSE_MASK][:3], td[K.RESPONSE_MASK])
    assert len(list(padded[K.TASK_TYPE])) == 4
    assert pad_to_multiple(td, 8).batch_size == torch.Size([8])
    # the source batch is untouched
    assert td.batch_size == torch.Size([3])


def test_pad_to_multiple_does_not_change_token_means() -> None:
    td = batch_of(5, seed=2)
    values = torch.randn(td[K.RESPONSE_MASK].shape, generator=torch.Generator().manual_seed(1))
    td[K.ADVANTAGES] = values
    before = masked_mean(td[K.ADVANTAGES], td[K.RESPONSE_MASK])
    padded = pad_to_multiple(td, 4)
    assert padded.batch_size == torch.Size([8])
    after = masked_mean(padded[K.ADVANTAGES], padded[K.RESPONSE_MASK])
    assert torch.allclose(before, after)
    assert masked_mean(padded[K.ROLLOUT_LOG_PROBS], padded[K.RESPONSE_MASK]) == pytest.approx(
        float(masked_mean(td[K.ROLLOUT_LOG_PROBS], td[K.RESPONSE_MASK]))
    )


def test_masked_mean() -> None:
    values = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert masked_mean(values, mask) == pytest.approx(2.0)
    assert masked_mean(values, torch.zeros_like(mask)) == 0.0


# ----------------------------------------------------------------------------------------
# losses.combine
# ----------------------------------------------------------------------------------------


class MeanLogProb(LossTerm):
    """-mean log-prob over response tokens, with one metric."""

    def __call__(self, batch: TensorDict, outputs: PolicyOutputs) -> LossOutput:
        loss = -masked_mean(outputs.log_probs, batch[K.RESPONSE_MASK])
        return LossOutput(loss, {"tokens": float(batch[K.RESPONSE_MASK].sum())})


class Constant(LossTerm):
    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self, batch: TensorDict, outputs: PolicyOutputs) -> LossOutput:
        return LossOutput(torch.tensor(self.value), {"value": self.value, "tokens": -1.0})


def test_combine_sums_weighted_terms_and_prefixes_metrics() -> None:
    batch = collate_steps(SAMPLES)
    log_probs = torch.full(batch[K.RESPONSE_MASK].shape, -2.0, requires_grad=True)
    outputs = PolicyOutputs(log_probs)
    terms = [WeightedTerm("nll", 0.5, MeanLogProb()), WeightedTerm("const", -3.0, Constant(1.5))]
    out = combine(terms, batch, outputs)
    assert float(out.loss.detach()) == pytest.approx(0.5 * 2.0 - 3.0 * 1.5)
    assert out.metrics == {
        "loss/nll": pytest.approx(2.0),
        "nll/tokens": 7.0,
        "loss/const": 1.5,
        "const/value": 1.5,
        "const/tokens": -1.0,
        "loss/total": pytest.approx(-3.5),
    }
    assert all(isinstance(v, float) for v in out.metrics.values())
    out.loss.backward()
    # d(0.5 * -mean)/d log_prob = -0.5 / 7 on each of the 7 response tokens, 0 on padding
    mask = batch[K.RESPONSE_MASK]
    assert torch.allclose(log_probs.grad[mask], torch.full((7,), -0.5 / 7))
    assert torch.all(log_probs.grad[~mask] == 0)


def test_combine_single_term_and_no_terms() -> None:
    batch = collate_steps(SAMPLES)
    outputs = PolicyOutputs(torch.zeros(batch[K.RESPONSE_MASK].shape))
    out = combine([WeightedTerm("c", 2.0, Constant(0.25))], batch, outputs)
    assert float(out.loss) == pytest.approx(0.5)
    assert out.metrics["loss/total"] == pytest.approx(0.5)
    assert out.metrics["loss/c"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="at least one loss term"):
        combine([], batch, outputs)


def test_action_mask_drops_only_a_final_eos() -> None:
    from skillzero.contracts.trajectory import K, StepSample, action_mask, collate_steps

    eos = 9
    responses = [[1, 2, eos], [eos], [3, 4], [5, eos, 6]]
    batch = collate_steps(
        [
            StepSample(prompt_ids=[7], response_ids=r, rollout_log_probs=[0.0] * len(r))
            for r in responses
        ],
        pad_token_id=0,
    )
    mask = action_mask(batch, eos)
    assert mask.sum(-1).tolist() == [2, 1, 2, 3]
    assert mask[0].tolist()[:3] == [True, True, False]
    assert action_mask(batch, None).equal(batch[K.RESPONSE_MASK])
