"""Per-step training samples as TensorDicts.

The training unit is one (prompt, response) pair per env per turn: every step's prompt is
rebuilt from a bounded history window, so steps are independent samples that share
their episode's return. A batch of ``B`` such samples is a :class:`tensordict.TensorDict`
with batch size ``(B,)`` and the keys of :class:`Keys`:

==========================  ===========  =====================================================
key                         shape/dtype  meaning
==========================  ===========  =====================================================
``prompt_ids``              (B, P) long  prompt tokens, **left**-padded
``prompt_mask``             (B, P) bool  true on real prompt tokens
``response_ids``            (B, R) long  sampled response tokens, **right**-padded
``response_mask``           (B, R) bool  true on real response tokens (the loss mask)
``rollout_log_probs``       (B, R) f32   log-probs of the response under the sampler
``reward``                  (B,) f32     env reward of this step (penalty not included)
``episode_return``          (B,) f32     the whole episode's env return, on every step
``group_id``                (B,) long    env group: members started from the same task
``traj_id``                 (B,) long    trajectory (episode) id, unique in the batch
``step``                    (B,) long    turn index within the episode, from 0
``action_valid``            (B,) bool    the parser accepted the response
``done``                    (B,) bool    last step of its trajectory
``won``                     (B,) bool    the episode was won (same on every step)
``anchor_key``              (B,) long    hash of the raw current observation (GiGPO)
``task_type``               (B,) str     non-tensor: the task's category
``skill_ids``               (B,) tuple   non-tensor: skills that were in the prompt
``task_id``                 (B,) str     non-tensor: the task's stable id
``prompt_context``          (B,) object  non-tensor: the :class:`PromptContext` the prompt
                                         was built from (teachers rebuild prompts from it)
==========================  ===========  =====================================================

``input_ids``/``attention_mask``/``position_ids`` of shape ``(B, P + R)`` are derived by
:func:`model_inputs`. The trainer adds keys as the iteration proceeds: ``old_log_probs``
(recomputed before the update), ``ref_log_probs``, ``teacher_log_probs`` (B, R);
``penalty`` (B,) f32, the invalid-action penalty of the step (``coef * (1 - action_valid)``);
``training_step`` (B,) long, the update step the batch belongs to; ``advantages`` (B,) or
(B, R); and, per micro-batch, ``token_weight`` (B, R) f32: ``response_mask`` divided by the
number of response tokens of the whole mini-batch on all ranks, so that summing
``values * token_weight`` over the micro-batches and ranks gives the exact token mean of
the mini-batch (see :func:`skillzero.contracts.losses.token_mean`).

Collation uses TensorDict lazy stacks: each sample is a TensorDict of ragged 1-D
sequences, and :func:`collate_steps` pads them in one pass with
``get(..., as_padded_tensor=True, padding_side=...)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tensordict import NonTensorStack, TensorDict, lazy_stack


class Keys:
    """Names of the batch keys (see the module docstring for shapes and meaning)."""

    PROMPT_IDS = "prompt_ids"
    PROMPT_MASK = "prompt_mask"
    RESPONSE_IDS = "response_ids"
    RESPONSE_MASK = "response_mask"
    ROLLOUT_LOG_PROBS = "rollout_log_probs"
    REWARD = "reward"
    EPISODE_RETURN = "episode_return"
    GROUP_ID = "group_id"
    TRAJ_ID = "traj_id"
    STEP = "step"
    ACTION_VALID = "action_valid"
    DONE = "done"
    WON = "won"
    ANCHOR_KEY = "anchor_key"
    TASK_TYPE = "task_type"
    SKILL_IDS = "skill_ids"
    TASK_ID = "task_id"
    PROMPT_CONTEXT = "prompt_context"
    # added by the trainer
    OLD_LOG_PROBS = "old_log_probs"
    REF_LOG_PROBS = "ref_log_probs"
    TEACHER_LOG_PROBS = "teacher_log_probs"
    ADVANTAGES = "advantages"
    PENALTY = "penalty"
    TRAINING_STEP = "training_step"
    TOKEN_WEIGHT = "token_weight"


K = Keys


def anchor_hash(observation: str) -> int:
    """A stable 63-bit hash of an observation (Python's ``hash`` is salted per process)."""
    digest = hashlib.blake2b(observation.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


@dataclass
class StepSample:
    """One step as the collector records it, before collation."""

    prompt_ids: Sequence[int]
    response_ids: Sequence[int]
    rollout_log_probs: Sequence[float]
    reward: float = 0.0
    episode_return: float = 0.0
    group_id: int = 0
    traj_id: int = 0
    step: int = 0
    action_valid: bool = True
    done: bool = False
    won: bool = False
    anchor_observation: str = ""
    task_type: str = ""
    skill_ids: tuple[str, ...] = field(default_factory=tuple)
    task_id: str = ""
    prompt_context: Any = None

    def __post_init__(self) -> None:
        if len(self.response_ids) != len(self.rollout_log_probs):
            raise ValueError(
                f"{len(self.response_ids)} response tokens but "
                f"{len(self.rollout_log_probs)} log-probs"
            )


_SCALARS: tuple[tuple[str, torch.dtype], ...] = (
    (K.REWARD, torch.float32),
    (K.EPISODE_RETURN, torch.float32),
    (K.GROUP_ID, torch.long),
    (K.TRAJ_ID, torch.long),
    (K.STEP, torch.long),
    (K.ACTION_VALID, torch.bool),
    (K.DONE, torch.bool),
    (K.WON, torch.bool),
)


def collate_steps(samples: Sequence[StepSample], pad_token_id: int = 0) -> TensorDict:
    """Stack step samples into one padded batch with the documented layout."""
    if not samples:
        raise ValueError("collate_steps needs at least one sample")
    ragged = lazy_stack(
        [
            TensorDict(
                {
                    K.PROMPT_IDS: torch.as_tensor(list(s.prompt_ids), dtype=torch.long),
                    K.RESPONSE_IDS: torch.as_tensor(list(s.response_ids), dtype=torch.long),
                    K.ROLLOUT_LOG_PROBS: torch.as_tensor(
                        list(s.rollout_log_probs), dtype=torch.float32
                    ),
                },
                batch_size=[],
            )
            for s in samples
        ]
    )
    prompt_ids = ragged.get(
        K.PROMPT_IDS, as_padded_tensor=True, padding_side="left", padding_value=pad_token_id
    )
    response_ids = ragged.get(
        K.RESPONSE_IDS, as_padded_tensor=True, padding_side="right", padding_value=pad_token_id
    )
    log_probs = ragged.get(
        K.ROLLOUT_LOG_PROBS, as_padded_tensor=True, padding_side="right", padding_value=0.0
    )
    batch = len(samples)
    prompt_len = torch.tensor([len(s.prompt_ids) for s in samples])
    response_len = torch.tensor([len(s.response_ids) for s in samples])
    p, r = prompt_ids.shape[-1], response_ids.shape[-1]
    prompt_mask = torch.arange(p).expand(batch, p) >= (p - prompt_len).unsqueeze(1)
    response_mask = torch.arange(r).expand(batch, r) < response_len.unsqueeze(1)
    data = {
        K.PROMPT_IDS: prompt_ids.reshape(batch, p),
        K.PROMPT_MASK: prompt_mask,
        K.RESPONSE_IDS: response_ids.reshape(batch, r),
        K.RESPONSE_MASK: response_mask,
        K.ROLLOUT_LOG_PROBS: log_probs.reshape(batch, r),
        K.ANCHOR_KEY: torch.tensor([anchor_hash(s.anchor_observation) for s in samples]),
    }
    for key, dtype in _SCALARS:
        data[key] = torch.tensor([getattr(s, key) for s in samples], dtype=dtype)
    td = TensorDict(data, batch_size=[batch])
    td[K.TASK_TYPE] = NonTensorStack(*[s.task_type for s in samples])
    td[K.SKILL_IDS] = NonTensorStack(*[tuple(s.skill_ids) for s in samples])
    td[K.TASK_ID] = NonTensorStack(*[s.task_id for s in samples])
    td[K.PROMPT_CONTEXT] = NonTensorStack(*[s.prompt_context for s in samples])
    return td


def model_inputs(batch: TensorDict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``input_ids``, ``attention_mask`` and ``position_ids`` of prompt + response.

    Position ids count real tokens only, so a left-padded prompt starts at position 0 as
    it did during generation.
    """
    input_ids = torch.cat([batch[K.PROMPT_IDS], batch[K.RESPONSE_IDS]], dim=-1)
    attention_mask = torch.cat([batch[K.PROMPT_MASK], batch[K.RESPONSE_MASK]], dim=-1)
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    return input_ids, attention_mask.long(), position_ids


def trim_padding(batch: TensorDict) -> TensorDict:
    """Drop prompt columns that are padding in every row, and response columns past the
    longest response, so a mini-batch costs only its own longest sequence."""
    prompt_keep = batch[K.PROMPT_MASK].any(0)
    first = int(prompt_keep.nonzero()[0]) if prompt_keep.any() else batch[K.PROMPT_MASK].shape[1]
    response_len = int(batch[K.RESPONSE_MASK].sum(-1).max()) if batch.numel() else 0
    out = batch.clone(recurse=False)
    prompt_width = batch[K.PROMPT_IDS].shape[-1]
    response_width = batch[K.RESPONSE_IDS].shape[-1]
    for key in list(batch.keys()):
        value = batch.get(key)
        if not isinstance(value, torch.Tensor) or value.dim() < 2:
            continue
        if key.startswith("prompt") and value.shape[1] == prompt_width:
            out.set(key, value[:, first:])
        elif value.shape[1] == response_width and not key.startswith("prompt"):
            out.set(key, value[:, :response_len])
    return out


def iter_minibatches(
    batch: TensorDict,
    minibatch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[TensorDict]:
    """Yield mini-batches of ``minibatch_size`` samples (a seeded permutation when
    ``shuffle``); each is trimmed of all-padding columns."""
    if minibatch_size < 1:
        raise ValueError(f"minibatch_size must be >= 1, got {minibatch_size}")
    n = batch.shape[0]
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, minibatch_size):
        index = order[start : start + minibatch_size]
        if drop_last and len(index) < minibatch_size:
            break
        yield trim_padding(batch[index])


def pad_to_multiple(batch: TensorDict, multiple: int) -> TensorDict:
    """Append all-masked rows until the batch size divides by ``multiple``.

    Data-parallel ranks need equal shares. The added rows copy row 0 but have an empty
    ``response_mask``, so they add nothing to token-mean losses (unlike duplicating real
    samples, which would weigh those samples twice).
    """
    n = batch.shape[0]
    missing = (-n) % multiple
    if missing == 0:
        return batch
    filler = batch[torch.zeros(missing, dtype=torch.long)].clone()
    filler[K.RESPONSE_MASK] = torch.zeros_like(filler[K.RESPONSE_MASK])
    for key in (K.GROUP_ID, K.TRAJ_ID):  # absent in a batch selected for scoring only
        if key in filler:
            filler[key] = torch.full_like(filler[key], -1)
    return torch.cat([batch, filler], dim=0)


def left_pad(
    sequences: Sequence[Sequence[int]], pad_token_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists as a left-padded (N, max_len) long tensor and its bool mask."""
    rows = [list(s) for s in sequences]
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = True
    return ids, mask


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over true entries of ``mask`` (0 when the mask is empty)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def action_mask(batch: TensorDict, eos_token_id: int | None) -> torch.Tensor:
    """The batch's response mask without each response's final end-of-sequence token
    (kept when it is the whole response). Generation stops at a format's stop string
    before that token, so it is not part of the action the policy writes."""
    mask = batch[K.RESPONSE_MASK].clone()
    if eos_token_id is None:
        return mask
    lengths = mask.sum(-1)
    rows = torch.nonzero(lengths > 1).flatten()
    last = lengths[rows] - 1
    ends_in_eos = batch[K.RESPONSE_IDS][rows, last] == int(eos_token_id)
    mask[rows[ends_in_eos], last[ends_in_eos]] = False
    return mask
