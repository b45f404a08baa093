"""Rollout with plain transformers: prompt prefixes prefilled once, then batched decoding.

Agent prompts are long and responses short, so on CPU much of a rollout is prefill, and
prompts repeat each other: the members of a group share their first prompt, all prompts
of an env share their instructions, all prompts of an episode its task, and group members
share their first observation for a few turns. The backend therefore

- de-duplicates the prompts of a call and prefills each distinct prompt once;
- keeps the key/value states of prompt prefixes across calls in a
  :class:`~skillzero.plugins.transformers_backend.prefix_cache.PrefixCache` (keyed by token
  ids, LRU-bounded, cleared when the weights change) and prefills only what follows the
  longest cached prefix; distinct prompts are prefilled in sorted order, so prompts of one
  call that share a prefix reuse it too;
- decodes all rows of a batch together with a
  :class:`~skillzero.plugins.transformers_backend.decode.SharedPromptCache`: each distinct
  prompt's states are read once per step for all its rows, generated tokens go into
  preallocated buffers, and finished rows leave the batch.

Log-probs are those of the sampled token under the temperature-scaled distribution
``log_softmax(logits / T)`` (``T = 1`` for greedy decoding), before top-k/top-p
filtering: the same quantity the trainer recomputes from the prompt and response.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from skillzero.contracts.rollout import Generation, RolloutBackend, SamplingParams
from skillzero.core.config import cfg_get
from skillzero.core.models import (
    autocast,
    resolve_attn_implementation,
    resolve_compute_dtype,
    resolve_model_path,
    set_compute_dtype,
    torch_dtype,
)
from skillzero.plugins.transformers_backend.decode import (
    SharedPromptCache,
    register_attention,
    supports_shared_prompt_decoding,
)
from skillzero.plugins.transformers_backend.prefix_cache import PrefixCache

PARAMS: dict[str, Any] = {
    "device": "auto",
    "share_prefill": True,
    "prefix_cache": True,
    "prefix_cache_max_tokens": 8192,
    "prefix_cache_block_size": 16,
    "max_batch_rows": 64,
}
"""The settings of ``backend.params`` and their defaults."""


@dataclass
class RolloutStats:
    """Cumulative counters: prompts, tokens and seconds spent in prefill and decoding.

    ``prefill_tokens`` counts the prompt tokens computed, ``reused_prefix_tokens`` those
    whose states came from the prefix cache instead."""

    prompts: int = 0
    distinct_prompts: int = 0
    prefill_tokens: int = 0
    reused_prefix_tokens: int = 0
    generated_tokens: int = 0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Mask logits outside the top-k and the top-p nucleus with ``-inf``."""
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token when the tokens before it already reach top_p
        drop = (cumulative - sorted_logits.softmax(-1)) >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One index per row of ``probs`` (rows, vocab; non-negative, not necessarily
    normalised), drawn with probability proportional to its entry.

    Inverse-CDF sampling with one uniform number per row. (``torch.multinomial`` draws one
    exponential number per vocabulary entry for a single sample, which on CPU costs more
    than the rest of the step's sampling.) The uniform number is a float32 below 1 and the
    cumulative sums are float64, so the target ``u * total`` stays below the total and the
    index found always has a positive probability.
    """
    cumulative = probs.double().cumsum(-1)
    uniform = torch.rand((probs.shape[0], 1), generator=generator, device=probs.device)
    target = uniform.double() * cumulative[:, -1:]
    return torch.searchsorted(cumulative, target, right=True).squeeze(-1)


def sample_tokens(
    logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row of ``logits`` (rows, vocab) and its log-prob under
    ``log_softmax(logits / T)``. One normaliser per row is all the vocabulary-wide work
    beyond the draw itself (filters only when top-k/top-p are on)."""
    temperature = params.temperature
    scaled = logits if temperature in (0.0, 1.0) else logits / temperature
    top = scaled.amax(-1, keepdim=True)
    weights = (scaled - top).exp_()  # unnormalised probabilities, enough for the draw
    log_norm = top + weights.sum(-1, keepdim=True).log_()
    if temperature == 0:
        tokens = scaled.argmax(-1)
    elif (0 < params.top_k < scaled.shape[-1]) or params.top_p < 1.0:
        tokens = draw(filter_logits(scaled, params.top_k, params.top_p).softmax(-1), generator)
    else:
        tokens = draw(weights, generator)
    chosen = scaled.gather(-1, tokens.unsqueeze(-1)) - log_norm
    return tokens, chosen.squeeze(-1)


class TransformersBackend(RolloutBackend):
    """A :class:`RolloutBackend` on a transformers causal LM.

    ``backend_cfg.params`` (defaults in :data:`PARAMS`): ``device`` (``auto``, ``cpu``,
    ``cuda``); ``share_prefill`` (identical prompts of a call are prefilled once);
    ``prefix_cache`` (keep prompt-prefix states across calls), ``prefix_cache_max_tokens``
    (its memory bound, in tokens), ``prefix_cache_block_size`` (its granularity);
    ``max_batch_rows`` (rows decoded together; more rows wait for the next batch).
    """

    def __init__(
        self,
        model_cfg: Mapping[str, Any] | Any,
        backend_cfg: Mapping[str, Any] | Any = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        given = cfg_get(backend_cfg, "params", {}) or {}
        unknown = sorted(str(k) for k in given if k not in PARAMS)
        if unknown:
            raise ValueError(
                f"backend.params: unknown setting(s) {', '.join(unknown)} for the transformers "
                f"backend; known: {', '.join(PARAMS)}"
            )
        params = {key: given.get(key, default) for key, default in PARAMS.items()}
        device = params["device"]
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.share_prefill = bool(params["share_prefill"])
        self.max_batch_rows = int(params["max_batch_rows"])
        if self.max_batch_rows < 1:
            raise ValueError(
                f"backend.params.max_batch_rows must be >= 1, got {self.max_batch_rows}"
            )
        self.prefix_cache: PrefixCache | None = None
        if params["prefix_cache"]:
            self.prefix_cache = PrefixCache(
                block_size=int(params["prefix_cache_block_size"]),
                max_tokens=int(params["prefix_cache_max_tokens"]),
            )
        if model is None or tokenizer is None:
            path = resolve_model_path(model_cfg)
            dtype = torch_dtype(str(cfg_get(model_cfg, "dtype", "float32")))
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(
                path,
                dtype=dtype,
                attn_implementation=resolve_attn_implementation(
                    str(cfg_get(model_cfg, "attn_implementation", "sdpa")), self.device.type
                ),
            )
        if not supports_shared_prompt_decoding(model):
            raise ValueError(
                f"the transformers backend needs a model whose layers all use full attention "
                f"through transformers' AttentionInterface; {type(model).__name__} does not "
                "(sliding-window or linear-attention layers): use backend=vllm"
            )
        register_attention()
        self.tokenizer = tokenizer
        self.model = model.to(self.device).eval()
        # the trainer's mixed precision (model.compute_dtype), so that the sampler's
        # log-probs are the trainer's function of the same weights
        self.compute_dtype = resolve_compute_dtype(
            cfg_get(model_cfg, "compute_dtype", None), self.device.type
        )
        set_compute_dtype(self.model, self.compute_dtype)
        self.pad_token_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_token_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self.stats = RolloutStats()
        #: the clock of ``stats``' seconds (benchmarks on shared machines may use CPU time)
        self.clock: Callable[[], float] = time.perf_counter
        self._weights_version = self._parameter_version()

    # -- generation ----------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Generation]]:
        if not prompts:
            return []
        keys = [tuple(int(t) for t in p) for p in prompts]
        if any(len(k) == 0 for k in keys):
            raise ValueError("cannot generate from an empty prompt")
        self._check_weights()
        # Distinct prompts in token order: prompts that share a prefix are neighbours, so
        # the prefix cache serves the later ones. Rows: (prompt position, sample number).
        if self.share_prefill:
            distinct = sorted(set(keys))
            index_of = {k: i for i, k in enumerate(distinct)}
            source = [index_of[k] for k in keys]
        else:
            order = sorted(range(len(keys)), key=keys.__getitem__)
            distinct = [keys[p] for p in order]
            source = [0] * len(keys)
            for i, p in enumerate(order):
                source[p] = i
        rows_of: list[list[tuple[int, int]]] = [[] for _ in distinct]
        for p, d in enumerate(source):
            rows_of[d].extend((p, s) for s in range(params.n))
        self.stats.prompts += len(keys)
        self.stats.distinct_prompts += len(distinct)

        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(params.seed)

        results: list[list[Generation | None]] = [[None] * params.n for _ in keys]
        # One autocast context for the whole call: the weights are cast once, not at
        # every decoded token. Batches of whole prompts (all rows of a prompt decode
        # together), in prompt order.
        with autocast(self.device.type, self.compute_dtype):
            start = 0
            while start < len(distinct):
                end, rows = start, 0
                while end < len(distinct) and (
                    end == start or rows + len(rows_of[end]) <= self.max_batch_rows
                ):
                    rows += len(rows_of[end])
                    end += 1
                batch_rows = [row for d in range(start, end) for row in rows_of[d]]
                row_prompt = [d - start for d in range(start, end) for _ in rows_of[d]]
                for (p, s), generation in zip(
                    batch_rows,
                    self._generate_batch(distinct[start:end], row_prompt, params, generator),
                    strict=True,
                ):
                    results[p][s] = generation
                start = end
        return [[g for g in gens if g is not None] for gens in results]

    def _prefill(self, prompt: tuple[int, ...]) -> tuple[list[Any], torch.Tensor]:
        """The prompt's per-layer cache (keys and values of every prompt token) and the
        logits of its last position, computing only what the prefix cache lacks."""
        from transformers import DynamicCache

        reused, blocks = 0, []
        if self.prefix_cache is not None:
            reused, blocks = self.prefix_cache.match(prompt, len(prompt) - 1)
        cache = DynamicCache(config=self.model.config)
        if reused:
            prefix = torch.cat(blocks, dim=3) if len(blocks) > 1 else blocks[0]
            for layer, states in zip(cache.layers, prefix, strict=True):
                # the layer's first update would copy the prefix once more
                layer.lazy_initialization(states[0], states[1])
                layer.keys, layer.values = states[0].unsqueeze(0), states[1].unsqueeze(0)
        out = self.model(
            input_ids=torch.tensor([prompt[reused:]], device=self.device),
            position_ids=torch.arange(reused, len(prompt), device=self.device).unsqueeze(0),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.stats.prefill_tokens += len(prompt) - reused
        self.stats.reused_prefix_tokens += reused
        return out.past_key_values.layers, out.logits[0, -1].float()

    def _generate_batch(
        self,
        prompts: list[tuple[int, ...]],
        row_prompt: list[int],
        params: SamplingParams,
        generator: torch.Generator | None,
    ) -> list[Generation]:
        """Prefill ``prompts`` and decode one row per entry of ``row_prompt`` (the index
        of the row's prompt)."""
        started = self.clock()
        cache: SharedPromptCache | None = None
        last_logits = []
        for index, prompt in enumerate(prompts):
            layers, logits = self._prefill(prompt)
            last_logits.append(logits)
            states = [(layer.keys[0], layer.values[0]) for layer in layers]
            if cache is None:
                kv_heads, _, head_dim = states[0][0].shape
                cache = SharedPromptCache(
                    [len(p) for p in prompts],
                    row_prompt,
                    max(1, params.max_new_tokens - 1),
                    layers=len(states),
                    kv_heads=kv_heads,
                    head_dim=head_dim,
                    dtype=states[0][0].dtype,
                    device=self.device,
                )
            cache.set_prompt(index, states)
            if self.prefix_cache is not None:
                self.prefix_cache.insert(prompt, states)
        assert cache is not None
        select = torch.tensor(row_prompt, device=self.device)
        logits = torch.stack(last_logits).index_select(0, select)
        positions = torch.tensor([len(prompts[p]) for p in row_prompt], device=self.device)
        self.stats.prefill_seconds += self.clock() - started

        started = self.clock()
        count = len(row_prompt)
        tokens_of: list[list[int]] = [[] for _ in range(count)]
        log_probs_of: list[list[float]] = [[] for _ in range(count)]
        finish = ["length"] * count
        eos_seen: dict[int, tuple[int, float]] = {}
        live = list(range(count))  # the row of each batch position
        with cache.active(self.model):
            for step in range(params.max_new_tokens):
                tokens, chosen = sample_tokens(logits, params, generator)
                finished = []
                for b, (token, log_prob) in enumerate(
                    zip(tokens.tolist(), chosen.tolist(), strict=True)
                ):
                    row = live[b]
                    if row < 0:
                        continue  # finished, waiting to leave the batch
                    if token in self.eos_token_ids:
                        finish[row] = "eos"
                        eos_seen[row] = (token, log_prob)
                        finished.append(b)
                        continue
                    tokens_of[row].append(token)
                    log_probs_of[row].append(log_prob)
                    if params.stop and self._hit_stop(tokens_of[row], params.stop):
                        finish[row] = "stop"
                        finished.append(b)
                for b in finished:
                    live[b] = -1
                waiting = live.count(-1)
                if waiting == len(live) or step == params.max_new_tokens - 1:
                    break
                # Finished rows leave once they are an eighth of the batch: a compaction
                # copies the generated states, a waiting row costs one row of compute.
                if waiting and waiting * 8 >= len(live):
                    keep = [b for b, row in enumerate(live) if row >= 0]
                    index = torch.tensor(keep, device=self.device)
                    cache.keep_rows(keep)
                    tokens = tokens.index_select(0, index)
                    positions = positions.index_select(0, index)
                    live = [live[b] for b in keep]
                out = self.model(
                    input_ids=tokens.unsqueeze(-1),
                    position_ids=positions.unsqueeze(-1),
                    past_key_values=cache,
                    use_cache=True,
                )
                logits = out.logits[:, -1, :].float()
                positions = positions + 1
        self.stats.generated_tokens += sum(len(t) for t in tokens_of)
        self.stats.decode_seconds += self.clock() - started

        return [
            Generation(
                prompt_ids=list(prompts[row_prompt[r]]),
                token_ids=tokens_of[r],
                text=self.tokenizer.decode(tokens_of[r], skip_special_tokens=True),
                log_probs=log_probs_of[r],
                finish_reason=finish[r],
                extra=(
                    {"eos_token_id": eos_seen[r][0], "eos_log_prob": eos_seen[r][1]}
                    if r in eos_seen
                    else {}
                ),
            )
            for r in range(count)
        ]

    def _hit_stop(self, tokens: list[int], stop: Sequence[str]) -> bool:
        # Only the tail can complete a stop string: decode a window, not the whole text.
        longest = max(len(s) for s in stop)
        tail = self.tokenizer.decode(tokens[-(longest + 8) :], skip_special_tokens=True)
        return any(s in tail for s in stop)

    # -- weights -------------------------------------------------------------------------
    def _parameter_version(self) -> int:
        # Every in-place change of a tensor bumps its version counter.
        return sum(p._version for p in self.model.parameters())

    def _check_weights(self) -> None:
        """Cached prefix states belong to the weights they were computed with."""
        version = self._parameter_version()
        if version != self._weights_version:
            if self.prefix_cache is not None:
                self.prefix_cache.clear()
            self._weights_version = version

    @torch.no_grad()
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy new weights into the model in place (names as in its ``state_dict``); the
        prefix cache is cleared."""
        state = self.model.state_dict()
        unknown = []
        try:
            for name, tensor in named_tensors:
                target = state.get(name)
                if target is None:
                    unknown.append(name)
                    continue
                target.copy_(tensor.to(device=target.device, dtype=target.dtype))
        finally:
            if self.prefix_cache is not None:
                self.prefix_cache.clear()
            self._weights_version = self._parameter_version()
        if unknown:
            raise KeyError(f"load_weights: the rollout model has no parameters {unknown[:5]}")
