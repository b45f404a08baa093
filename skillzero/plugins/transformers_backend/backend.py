"""Rollout with plain transformers: one prefill per distinct prompt, then batched decoding.

Agent prompts are long and responses short, so on CPU most of a rollout is prefill. In
GRPO-style training the members of a group share their first prompt, so this backend
de-duplicates prompts, prefills each distinct one once, and copies its KV cache to every
row that samples from it (``DynamicCache.batch_select_indices``). Decoding runs one
batched forward per token over the rows still generating; finished rows are dropped from
the cache so they stop costing compute.

Log-probs are those of the sampled token under the temperature-scaled distribution
``log_softmax(logits / T)`` (``T = 1`` for greedy decoding), before top-k/top-p
filtering: the same quantity the trainer recomputes from the prompt and response.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from skillzero.core.config import cfg_get
from skillzero.core.models import resolve_attn_implementation, resolve_model_path, torch_dtype
from skillzero.core.rollout import Generation, RolloutBackend, SamplingParams
from skillzero.core.trajectory import left_pad


@dataclass
class RolloutStats:
    """Cumulative counters: tokens and seconds spent in prefill and decoding."""

    prompts: int = 0
    distinct_prompts: int = 0
    prefill_tokens: int = 0
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


class TransformersBackend(RolloutBackend):
    """A :class:`RolloutBackend` on a transformers causal LM.

    ``backend_cfg.params``: ``device`` (``auto``, ``cpu``, ``cuda``), ``prefill_batch_size``
    (distinct prompts per prefill forward, default 8), ``share_prefill`` (default true).
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

        params = cfg_get(backend_cfg, "params", {}) or {}
        device = params.get("device", "auto")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.prefill_batch_size = int(params.get("prefill_batch_size", 8))
        self.share_prefill = bool(params.get("share_prefill", True))
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
        self.tokenizer = tokenizer
        self.model = model.to(self.device).eval()
        self.pad_token_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_token_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self.stats = RolloutStats()

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
        # rows: (prompt position, sample number); each row samples from one distinct prompt
        rows = [(p, s) for p in range(len(keys)) for s in range(params.n)]
        if self.share_prefill:
            distinct = list(dict.fromkeys(keys))
            index_of = {k: i for i, k in enumerate(distinct)}
            source = [index_of[keys[p]] for p, _ in rows]
        else:
            distinct = keys
            source = [p for p, _ in rows]
        self.stats.prompts += len(keys)
        self.stats.distinct_prompts += len(distinct)

        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(params.seed)

        outputs: list[list[int]] = [[] for _ in rows]
        log_probs: list[list[float]] = [[] for _ in rows]
        finish: list[str] = ["length"] * len(rows)
        # rows that stopped on EOS: (token, log-prob), reported in Generation.extra
        eos_seen: dict[int, tuple[int, float]] = {}
        # Prefill in chunks of distinct prompts; decode each chunk's rows together.
        for start in range(0, len(distinct), self.prefill_batch_size):
            end = min(start + self.prefill_batch_size, len(distinct))
            chunk_rows = [r for r, src in enumerate(source) if start <= src < end]
            self._generate_chunk(
                distinct[start:end],
                [source[r] - start for r in chunk_rows],
                chunk_rows,
                params,
                generator,
                outputs,
                log_probs,
                finish,
                eos_seen,
            )

        results: list[list[Generation]] = [[] for _ in keys]
        for r, (p, _) in enumerate(rows):
            text = self.tokenizer.decode(outputs[r], skip_special_tokens=True)
            results[p].append(
                Generation(
                    prompt_ids=list(keys[p]),
                    token_ids=outputs[r],
                    text=text,
                    log_probs=log_probs[r],
                    finish_reason=finish[r],
                    extra=(
                        {"eos_token_id": eos_seen[r][0], "eos_log_prob": eos_seen[r][1]}
                        if r in eos_seen
                        else {}
                    ),
                )
            )
        return results

    def _generate_chunk(
        self,
        prompts: list[tuple[int, ...]],
        row_source: list[int],
        row_ids: list[int],
        params: SamplingParams,
        generator: torch.Generator | None,
        outputs: list[list[int]],
        log_probs: list[list[float]],
        finish: list[str],
        eos_seen: dict[int, tuple[int, float]],
    ) -> None:
        from transformers import DynamicCache

        started = time.perf_counter()
        ids, mask = left_pad(prompts, self.pad_token_id)
        ids, mask = ids.to(self.device), mask.long().to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.stats.prefill_tokens += int(mask.sum())
        select = torch.tensor(row_source, device=self.device)
        cache = out.past_key_values
        cache.batch_select_indices(select)
        logits = out.logits[:, -1, :].float().index_select(0, select)
        mask = mask.index_select(0, select)
        next_position = positions[:, -1].index_select(0, select) + 1
        self.stats.prefill_seconds += time.perf_counter() - started

        started = time.perf_counter()
        active = list(range(len(row_ids)))  # positions in the current (shrinking) batch
        temperature = params.temperature if params.temperature > 0 else 1.0
        for step in range(params.max_new_tokens):
            scaled = logits / temperature
            token_log_probs = torch.log_softmax(scaled, dim=-1)
            if params.temperature == 0:
                tokens = scaled.argmax(-1)
            else:
                filtered = filter_logits(scaled, params.top_k, params.top_p)
                probs = filtered.softmax(-1)
                tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            chosen = token_log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
            keep = []
            for b, row in enumerate(active):
                r = row_ids[row]
                token = int(tokens[b])
                if token in self.eos_token_ids:
                    finish[r] = "eos"
                    eos_seen[r] = (token, float(chosen[b]))
                    continue
                outputs[r].append(token)
                log_probs[r].append(float(chosen[b]))
                self.stats.generated_tokens += 1
                if params.stop and self._hit_stop(outputs[r], params.stop):
                    finish[r] = "stop"
                    continue
                keep.append(b)
            if not keep or step == params.max_new_tokens - 1:
                break
            if len(keep) < len(active):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                mask = mask.index_select(0, index)
                next_position = next_position.index_select(0, index)
                tokens = tokens.index_select(0, index)
                active = [active[b] for b in keep]
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            out = self.model(
                input_ids=tokens.unsqueeze(-1),
                attention_mask=mask,
                position_ids=next_position.unsqueeze(-1),
                past_key_values=cache,
                use_cache=True,
            )
            cache = out.past_key_values
            logits = out.logits[:, -1, :].float()
            next_position = next_position + 1
        self.stats.decode_seconds += time.perf_counter() - started

    def _hit_stop(self, tokens: list[int], stop: Sequence[str]) -> bool:
        # Only the tail can complete a stop string: decode a window, not the whole text.
        longest = max(len(s) for s in stop)
        tail = self.tokenizer.decode(tokens[-(longest + 8) :], skip_special_tokens=True)
        return any(s in tail for s in stop)

    # -- weights -------------------------------------------------------------------------
    @torch.no_grad()
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy new weights into the model in place (names as in its ``state_dict``)."""
        state = self.model.state_dict()
        unknown = []
        for name, tensor in named_tensors:
            target = state.get(name)
            if target is None:
                unknown.append(name)
                continue
            target.copy_(tensor.to(device=target.device, dtype=target.dtype))
        if unknown:
            raise KeyError(f"load_weights: the rollout model has no parameters {unknown[:5]}")
