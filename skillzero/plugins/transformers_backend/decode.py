"""Batched decoding that reads each prompt's keys and values once per step.

In a rollout many rows decode from the same prompt (the ``n`` samples of a prompt, the
members of a group whose prompts are identical). Copying the prompt's key/value states
to every row, as ``generate`` does, makes every decoding step read the prompt ``rows``
times: on a CPU this memory traffic costs as much as the matrix products of the step.

:class:`SharedPromptCache` keeps the states of each distinct prompt once, left-padded to
a common width, and the generated tokens' states per row in preallocated buffers (no
concatenation per step). :func:`shared_prompt_attention` (registered with transformers'
``AttentionInterface`` as :data:`ATTENTION_NAME`) computes a row's attention in two parts,
over its prompt (all rows of a prompt in one matrix product) and over its own generated
tokens, and merges them exactly with their log-sum-exp. It serves one query token per
row, the decoding step; prefill uses the model's own attention.

It works for models whose attention layers go through ``AttentionInterface`` and attend
to every earlier token (no sliding windows, no linear attention):
:func:`supports_shared_prompt_decoding` checks a model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
from transformers.cache_utils import Cache, CacheLayerMixin, DynamicCache, DynamicLayer

ATTENTION_NAME = "skillzero_shared_prompt"
"""The name of :func:`shared_prompt_attention` in transformers' ``AttentionInterface``."""

_ACTIVE: ContextVar[SharedPromptCache | None] = ContextVar("skillzero_shared_prompt", default=None)


def supports_shared_prompt_decoding(model: Any) -> bool:
    """Whether ``model`` can decode with :class:`SharedPromptCache`: every layer is a
    full-attention layer with a plain key/value cache, and attention goes through
    ``AttentionInterface``."""
    can_set = getattr(type(model), "_can_set_attn_implementation", None)
    if can_set is None or not can_set():
        return False
    try:
        layers = DynamicCache(config=model.config).layers
    except Exception:  # configs that DynamicCache cannot read
        return False
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


class _GeneratedLayer(CacheLayerMixin):
    """One layer's states of the generated tokens, ``(rows, kv_heads, capacity,
    head_dim)``, filled one step at a time."""

    is_sliding = False
    is_compileable = False

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, prompt_width: int) -> None:
        super().__init__()
        self.keys, self.values = keys, values
        self.length = 0
        self.prompt_width = prompt_width
        self.is_initialized = True

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        pass  # allocated up front

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        steps = key_states.shape[-2]
        end = self.length + steps
        if end > self.keys.shape[-2]:
            raise RuntimeError("decoding ran past the preallocated number of new tokens")
        self.keys[:, :, self.length : end] = key_states
        self.values[:, :, self.length : end] = value_states
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.prompt_width + self.length + query_length, 0

    def get_seq_length(self) -> int:
        return self.prompt_width + self.length

    def get_max_length(self) -> int:
        return self.prompt_width + self.keys.shape[-2]


class SharedPromptCache(Cache):
    """The key/value states of a decoding batch: each distinct prompt's once, and each
    row's generated tokens.

    ``prompt_lengths[p]``: the length of prompt ``p``; ``row_prompt[r]``: the prompt of
    row ``r``; room for ``max_new_tokens`` generated tokens per row. Fill the prompts with
    :meth:`set_prompt`, then use the cache as ``past_key_values`` of forward passes inside
    :meth:`active` (which also selects :func:`shared_prompt_attention`). Prompt states
    are kept left-padded to the longest prompt, in float32, keys transposed: the layout
    the attention products read fastest.
    """

    def __init__(
        self,
        prompt_lengths: list[int],
        row_prompt: list[int],
        max_new_tokens: int,
        *,
        layers: int,
        kv_heads: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        prompts, width = len(prompt_lengths), max(prompt_lengths)
        self.kv_heads = kv_heads
        # padding stays zero (finite); the attention masks it
        self.prompt_keys_t = torch.zeros(
            (layers, prompts * kv_heads, head_dim, width), device=device
        )
        self.prompt_values = torch.zeros(
            (layers, prompts * kv_heads, width, head_dim), device=device
        )
        self.generated = torch.zeros(
            (layers, 2, len(row_prompt), kv_heads, max_new_tokens, head_dim),
            device=device,
            dtype=dtype,
        )
        super().__init__(
            layers=[
                _GeneratedLayer(self.generated[i, 0], self.generated[i, 1], width)
                for i in range(layers)
            ]
        )
        self._set_prompts(prompt_lengths)
        self._set_rows(row_prompt)

    def set_prompt(self, index: int, states: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Store prompt ``index``'s keys and values: one ``(kv_heads, length, head_dim)``
        pair per layer."""
        width = self.prompt_values.shape[-2]
        length = self.prompt_lengths[index]
        heads = slice(index * self.kv_heads, (index + 1) * self.kv_heads)
        for layer, (keys, values) in enumerate(states):
            self.prompt_keys_t[layer, heads, :, width - length :] = keys.transpose(-1, -2)
            self.prompt_values[layer, heads, width - length :] = values

    def _set_prompts(self, prompt_lengths: list[int]) -> None:
        width = self.prompt_values.shape[-2]
        device = self.prompt_values.device
        self.prompt_lengths = list(prompt_lengths)
        self.prompt_bias: torch.Tensor | None = None
        if min(prompt_lengths) < width:  # left padding to mask
            position = torch.arange(width, device=device)
            starts = torch.tensor([width - n for n in prompt_lengths], device=device)
            pad = position.unsqueeze(0) < starts.unsqueeze(1)  # (prompts, width)
            bias = torch.zeros(pad.shape, device=device).masked_fill_(pad, float("-inf"))
            self.prompt_bias = bias.repeat_interleave(self.kv_heads, 0).unsqueeze(1)

    def _set_rows(self, row_prompt: list[int]) -> None:
        # Rows of one prompt fill consecutive slots of a (prompts, slots_per_prompt) grid,
        # so one batched product covers all rows of all prompts.
        counts = [0] * len(self.prompt_lengths)
        for p in row_prompt:
            counts[p] += 1
        self.slots_per_prompt = max(counts)
        seen = [0] * len(counts)
        slots = []
        for p in row_prompt:
            slots.append(p * self.slots_per_prompt + seen[p])
            seen[p] += 1
        self.row_prompt = list(row_prompt)
        # the common case, every prompt with the same number of rows in prompt order
        self.rows_fill_slots = slots == list(range(len(self.prompt_lengths) * max(counts)))
        self.row_slot = torch.tensor(slots, device=self.generated.device, dtype=torch.long)

    @property
    def rows(self) -> int:
        """The number of rows being decoded."""
        return len(self.row_prompt)

    def keep_rows(self, keep: list[int]) -> None:
        """Keep only rows ``keep`` (increasing); prompts left without rows are dropped."""
        device = self.generated.device
        self.generated = self.generated.index_select(2, torch.tensor(keep, device=device))
        for i, layer in enumerate(self.layers):
            layer.keys, layer.values = self.generated[i, 0], self.generated[i, 1]
        row_prompt = [self.row_prompt[r] for r in keep]
        used = sorted(set(row_prompt))
        if len(used) < len(self.prompt_lengths):
            heads = [p * self.kv_heads + h for p in used for h in range(self.kv_heads)]
            index = torch.tensor(heads, device=device)
            self.prompt_keys_t = self.prompt_keys_t.index_select(1, index)
            self.prompt_values = self.prompt_values.index_select(1, index)
            renumber = {p: i for i, p in enumerate(used)}
            self._set_prompts([self.prompt_lengths[p] for p in used])
            row_prompt = [renumber[p] for p in row_prompt]
        self._set_rows(row_prompt)

    @contextmanager
    def active(self, model: Any) -> Iterator[SharedPromptCache]:
        """A context in which ``model`` decodes with this cache (its attention switched to
        :func:`shared_prompt_attention`, restored on exit)."""
        config = model.config
        previous = config._attn_implementation
        token = _ACTIVE.set(self)
        config._attn_implementation = ATTENTION_NAME
        try:
            yield self
        finally:
            config._attn_implementation = previous
            _ACTIVE.reset(token)


def shared_prompt_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention of one new token per row over its prompt and its generated tokens.

    ``query``: ``(rows, heads, 1, head_dim)``; ``key``/``value``: the rows' generated
    tokens so far, the new one included, ``(rows, kv_heads, steps, head_dim)``. The prompt
    states come from the active :class:`SharedPromptCache`. Returns ``(rows, 1, heads,
    head_dim)`` as transformers' attention functions do.
    """
    cache = _ACTIVE.get()
    if cache is None:
        raise RuntimeError(f"{ATTENTION_NAME} attention runs only inside SharedPromptCache")
    rows, heads, steps_q, head_dim = query.shape
    if steps_q != 1:
        raise RuntimeError(f"{ATTENTION_NAME} attention decodes one token per row")
    kv_heads = key.shape[1]
    group = heads // kv_heads
    if scaling is None:
        scaling = head_dim**-0.5
    prompts = len(cache.prompt_lengths)
    slots = cache.slots_per_prompt
    # query head h reads key/value head h // group (transformers' repeat_kv layout)
    q = query.reshape(rows, kv_heads, group, head_dim).float() * scaling

    # Over the prompt: the queries of all rows of a prompt in one (slots * group, width)
    # product per key/value head.
    if cache.rows_fill_slots:
        grid = q
    else:
        grid = q.new_zeros((prompts * slots, kv_heads, group, head_dim))
        grid.index_copy_(0, cache.row_slot, q)
    grid = grid.view(prompts, slots, kv_heads, group, head_dim).transpose(1, 2)
    grid = grid.reshape(prompts * kv_heads, slots * group, head_dim)
    keys_t = cache.prompt_keys_t[module.layer_idx]
    scores = torch.bmm(grid, keys_t)
    if cache.prompt_bias is not None:
        scores.add_(cache.prompt_bias)
    prompt_max = scores.amax(-1, keepdim=True)
    weights = scores.sub_(prompt_max).exp_()
    prompt_sum = weights.sum(-1, keepdim=True)
    prompt_out = torch.bmm(weights, cache.prompt_values[module.layer_idx])

    def to_rows(x: torch.Tensor) -> torch.Tensor:
        x = x.view(prompts, kv_heads, slots, group, x.shape[-1]).transpose(1, 2)
        x = x.reshape(prompts * slots, kv_heads, group, x.shape[-1])
        return x if cache.rows_fill_slots else x.index_select(0, cache.row_slot)

    prompt_max, prompt_sum, prompt_out = (
        to_rows(prompt_max),
        to_rows(prompt_sum),
        to_rows(prompt_out),
    )

    # over the row's own generated tokens
    scores = torch.matmul(q, key.float().transpose(-1, -2))  # (rows, kv_heads, group, steps)
    own_max = scores.amax(-1, keepdim=True)
    weights = scores.sub_(own_max).exp_()
    own_sum = weights.sum(-1, keepdim=True)
    own_out = torch.matmul(weights, value.float())

    top = torch.maximum(prompt_max, own_max)
    prompt_scale = (prompt_max - top).exp_()
    own_scale = (own_max - top).exp_()
    out = (prompt_out * prompt_scale + own_out * own_scale) / (
        prompt_sum * prompt_scale + own_sum * own_scale
    )
    return out.reshape(rows, 1, heads, head_dim).to(query.dtype), None


def register_attention() -> None:
    """Make :func:`shared_prompt_attention` known to transformers (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, shared_prompt_attention)
