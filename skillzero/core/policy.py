"""The trained policy: an FSDP2-sharded causal LM, its optimizer, and the PPO-style update.

The model is wrapped with ``torch.distributed.fsdp.fully_shard`` (each decoder layer, then
the whole model) on a one-dimensional device mesh over all ranks, so the same code runs
on one CPU process, N CPU processes (gloo) or N GPUs (NCCL).

Data parallelism: every rank holds the whole collected batch. A mini-batch (a slice of
the batch, ``minibatch_size`` samples over all ranks) is split evenly over the ranks and
each rank's share into micro-batches of ``microbatch_size``. Each micro-batch carries
``token_weight = response_mask / (response tokens of the whole mini-batch)``, so token
means are exact whatever the micro-batch size or the number of ranks (verl averages
per micro-batch instead, which weighs a token by the length of its micro-batch); the
gradient of a rank is scaled by the world size because FSDP averages over ranks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from tensordict import TensorDict

from skillzero.contracts.losses import PolicyOutputs, WeightedTerm, combine
from skillzero.contracts.trajectory import K, left_pad, model_inputs, pad_to_multiple, trim_padding
from skillzero.core.config import cfg_get
from skillzero.core.distributed import DistContext
from skillzero.core.models import (
    resolve_attn_implementation,
    resolve_compute_dtype,
    set_compute_dtype,
    torch_dtype,
)

MIXED = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16}


def load_causal_lm(path: str, model_cfg: Any, device: torch.device) -> torch.nn.Module:
    """Load a causal LM for training (float32 master weights unless ``model.dtype`` says
    otherwise) on ``device``, computing in ``model.compute_dtype`` where set."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        path,
        dtype=torch_dtype(str(cfg_get(model_cfg, "dtype", "float32"))),
        attn_implementation=resolve_attn_implementation(
            str(cfg_get(model_cfg, "attn_implementation", "sdpa")), device.type
        ),
        trust_remote_code=bool(cfg_get(model_cfg, "trust_remote_code", False)),
    )
    model.config.use_cache = False
    model = model.to(device)
    compute = resolve_compute_dtype(cfg_get(model_cfg, "compute_dtype", None), device.type)
    return set_compute_dtype(model, compute)


def shard_model(model: torch.nn.Module, ctx: DistContext, fsdp_cfg: Any = None) -> torch.nn.Module:
    """Apply FSDP2 to each decoder layer, then to the root module.

    With a single rank and no mixed precision or CPU offload, FSDP has nothing to shard
    and only adds parameter copies (about a quarter of a CPU update): the plain module
    is kept unless ``trainer.fsdp.shard_single_rank`` asks for FSDP anyway. The
    update, state dicts and checkpoints are the same either way."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    if (
        ctx.world_size == 1
        and not cfg_get(fsdp_cfg, "mixed_precision")
        and not cfg_get(fsdp_cfg, "cpu_offload", False)
        and not cfg_get(fsdp_cfg, "shard_single_rank", False)
    ):
        return model
    mesh = init_device_mesh(ctx.device.type, (ctx.world_size,))
    kwargs: dict[str, Any] = {
        "mesh": mesh,
        "reshard_after_forward": bool(cfg_get(fsdp_cfg, "reshard_after_forward", True)),
    }
    mixed = cfg_get(fsdp_cfg, "mixed_precision")
    if mixed:
        if mixed not in MIXED:
            raise ValueError(f"trainer.fsdp.mixed_precision must be one of {sorted(MIXED)}")
        kwargs["mp_policy"] = MixedPrecisionPolicy(
            param_dtype=MIXED[mixed], reduce_dtype=torch.float32
        )
    if cfg_get(fsdp_cfg, "cpu_offload", False):
        kwargs["offload_policy"] = CPUOffloadPolicy()
    layers = _decoder_layers(model)
    for layer in layers:
        fully_shard(layer, **kwargs)
    fully_shard(model, **kwargs)
    return model


def _decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks (``model.model.layers`` in Llama/Qwen-style models)."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        layers = getattr(getattr(inner, "decoder", None), "layers", None)
    return list(layers) if layers is not None else []


def freeze_lower_layers(model: torch.nn.Module, trainable_layers: int) -> int:
    """Leave only the top ``trainable_layers`` decoder blocks and the final norm trainable.

    Why: backpropagation stops at the lowest trainable block, so on a CPU a 135M model
    trained in its top third updates ~1.7x faster. The embeddings stay frozen because
    small models tie them to the LM head: a trainable embedding would pull the gradient
    through every block again. Returns the number of trainable parameters."""
    layers = _decoder_layers(model)
    if not layers:
        raise ValueError("model.trainable_layers needs a model with decoder blocks (model.layers)")
    if not 1 <= trainable_layers <= len(layers):
        raise ValueError(
            f"model.trainable_layers={trainable_layers}: this model has {len(layers)} "
            f"decoder blocks; use 1..{len(layers)} or null (train every weight)"
        )
    model.requires_grad_(False)
    for layer in layers[len(layers) - trainable_layers :]:
        layer.requires_grad_(True)
    inner = getattr(model, "model", None)
    norm = getattr(inner, "norm", None) or getattr(getattr(inner, "decoder", None), "norm", None)
    if isinstance(norm, torch.nn.Module):
        norm.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def response_log_probs(
    model: torch.nn.Module,
    micro: TensorDict,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
    with_greedy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (b, R) of the micro-batch's response tokens, and their entropies (or,
    with ``with_greedy``, whether each token is the model's most likely one there).

    Prompts are left-padded and responses right-padded, so the logits that predict the
    response are the last ``R + 1`` positions but one: only those are computed
    (``logits_to_keep``), which keeps the (b, R, vocab) tensor small. Logits are divided
    by the sampling temperature, as the sampler did.
    """
    input_ids, attention_mask, position_ids = model_inputs(micro)
    device = next(model.parameters()).device
    response_ids = micro[K.RESPONSE_IDS].to(device)
    width = response_ids.shape[1]
    out = model(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        position_ids=position_ids.to(device),
        logits_to_keep=width + 1,
        use_cache=False,
    )
    logits = out.logits[:, :-1, :].float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    log_softmax = torch.log_softmax(logits, dim=-1)
    log_probs = log_softmax.gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
    mask = micro[K.RESPONSE_MASK].to(device)
    log_probs = log_probs.masked_fill(~mask, 0.0)
    if with_greedy:  # padding counts as matched
        return log_probs, (log_softmax.argmax(-1) == response_ids) | ~mask
    entropy = None
    if with_entropy:
        entropy = -(log_softmax.exp() * log_softmax).sum(-1).masked_fill(~mask, 0.0)
    return log_probs, entropy


def lr_lambda(warmup_steps: int, total_steps: int, scheduler: str, min_ratio: float) -> Callable:
    """Linear warm-up over ``warmup_steps``, then constant or cosine down to ``min_ratio``."""

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        if scheduler == "constant":
            return 1.0
        if scheduler == "cosine":
            span = max(1, total_steps - warmup_steps)
            progress = min(1.0, (step - warmup_steps) / span)
            return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        raise ValueError(f"unknown scheduler {scheduler!r}; use constant or cosine")

    return factor


class Policy:
    """The sharded policy model with its optimizer, scheduler and optional reference."""

    def __init__(
        self,
        model_path: str,
        model_cfg: Any,
        trainer_cfg: Any,
        ctx: DistContext,
        *,
        need_reference: bool = False,
        reference_path: str | None = None,
        temperature: float = 1.0,
    ) -> None:
        self.ctx = ctx
        self.temperature = temperature
        self.trainer_cfg = trainer_cfg
        self.microbatch_size = int(cfg_get(trainer_cfg, "microbatch_size", 8))
        self.log_prob_microbatch_size = int(
            cfg_get(trainer_cfg, "log_prob_microbatch_size", 2 * self.microbatch_size)
        )
        fsdp_cfg = cfg_get(trainer_cfg, "fsdp", {})
        self.model = load_causal_lm(model_path, model_cfg, ctx.device)
        if cfg_get(model_cfg, "gradient_checkpointing", False):
            # (recent transformers renamed it; keep working with both names)
            kwargs = {"use_reentrant": False}
            if hasattr(self.model, "activation_checkpointing_enable"):
                self.model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            else:
                self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        trainable_layers = cfg_get(model_cfg, "trainable_layers", None)
        if trainable_layers is not None:
            freeze_lower_layers(self.model, int(trainable_layers))
        shard_model(self.model, ctx, fsdp_cfg)
        self.reference: torch.nn.Module | None = None
        if need_reference:
            self.reference = load_causal_lm(reference_path or model_path, model_cfg, ctx.device)
            self.reference.requires_grad_(False)
            shard_model(self.reference, ctx, fsdp_cfg)
            self.reference.eval()
        optim = cfg_get(trainer_cfg, "optim", {})
        self.grad_clip = float(cfg_get(optim, "grad_clip", 1.0))
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=float(cfg_get(optim, "lr", 1e-6)),
            betas=tuple(cfg_get(optim, "betas", [0.9, 0.999])),
            eps=float(cfg_get(optim, "eps", 1e-8)),
            weight_decay=float(cfg_get(optim, "weight_decay", 0.01)),
            # foreach kernels differ across world sizes in the last bits; keep one path
            foreach=False,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lr_lambda(
                int(cfg_get(optim, "warmup_steps", 0)),
                int(cfg_get(trainer_cfg, "total_steps", 1)),
                str(cfg_get(optim, "scheduler", "constant")),
                float(cfg_get(optim, "min_lr_ratio", 0.0)),
            ),
        )

    # -- scoring -------------------------------------------------------------------------
    @torch.no_grad()
    def compute_log_probs(
        self,
        batch: TensorDict,
        *,
        reference: bool = False,
        prompts: Sequence[Sequence[int]] | None = None,
        pad_token_id: int = 0,
        greedy: bool = False,
    ) -> Any:
        """(B, R) log-probs of the batch's responses under the current (or reference)
        weights; with ``prompts``, under those prompts instead of the batch's own. With
        ``greedy``, a pair: the log-probs and a (B, R) bool tensor, true where the
        response token is the model's most likely next token (teacher forcing; padding
        counts as true), from the same forward pass.
        Collective: every rank calls it with the same batch."""
        model = self.reference if reference else self.model
        if model is None:
            raise RuntimeError("no reference model: no loss term requires ref_log_probs")
        was_training = model.training
        model.eval()
        n = batch.shape[0]
        width = batch[K.RESPONSE_IDS].shape[1]
        work = batch.select(K.PROMPT_IDS, K.PROMPT_MASK, K.RESPONSE_IDS, K.RESPONSE_MASK)
        if prompts is not None:
            ids, mask = left_pad(prompts, pad_token_id)
            work = TensorDict(
                {
                    K.PROMPT_IDS: ids,
                    K.PROMPT_MASK: mask,
                    K.RESPONSE_IDS: batch[K.RESPONSE_IDS],
                    K.RESPONSE_MASK: batch[K.RESPONSE_MASK],
                },
                batch_size=[n],
            )
        work = pad_to_multiple(work, self.ctx.world_size)
        share = work.shape[0] // self.ctx.world_size
        mine = work[self.ctx.rank * share : (self.ctx.rank + 1) * share]
        out = torch.zeros(share, width)
        greedy_out = torch.ones(share, width, dtype=torch.bool) if greedy else None
        for start in range(0, share, self.log_prob_microbatch_size):
            micro = trim_padding(mine[start : start + self.log_prob_microbatch_size])
            log_probs, matched = response_log_probs(
                model, micro, temperature=self.temperature, with_greedy=greedy
            )
            rows = slice(start, start + micro.shape[0])
            out[rows, : log_probs.shape[1]] = log_probs.float().cpu()
            if greedy_out is not None:
                greedy_out[rows, : matched.shape[1]] = matched.cpu()
        if was_training:
            model.train()
        gathered = self.ctx.all_gather_rows(out)[:n]
        if greedy_out is None:
            return gathered
        # (as bytes: not every collective backend takes bool tensors)
        return gathered, self.ctx.all_gather_rows(greedy_out.to(torch.uint8))[:n].bool()

    # -- the update ----------------------------------------------------------------------
    def update(
        self,
        batch: TensorDict,
        terms: Sequence[WeightedTerm],
        *,
        minibatch_size: int,
        ppo_epochs: int = 1,
        generator: torch.Generator | None = None,
        needs_entropy: bool = False,
        progress: Any = None,
    ) -> dict[str, float]:
        """PPO-style epochs of mini-batch updates; returns metrics averaged over the
        mini-batches (``train/grad_norm``, ``train/lr``, and every term's metrics)."""
        self.model.train()
        totals: dict[str, float] = {}
        updates = 0
        skipped = 0
        for _ in range(ppo_epochs):
            order = torch.randperm(batch.shape[0], generator=generator)
            for start in range(0, batch.shape[0], minibatch_size):
                minibatch = batch[order[start : start + minibatch_size]]
                metrics = self._minibatch_step(minibatch, terms, needs_entropy)
                if progress is not None:
                    progress.update(1)
                if metrics is None:
                    continue
                if not math.isfinite(metrics["train/grad_norm"]):
                    skipped += 1
                for key, value in metrics.items():
                    totals[key] = totals.get(key, 0.0) + value
                updates += 1
        self.scheduler.step()
        result = {key: value / max(1, updates) for key, value in totals.items()}
        result["train/updates"] = float(updates)
        result["train/skipped_updates"] = float(skipped)
        result["train/lr"] = float(self.optimizer.param_groups[0]["lr"])
        return result

    def _minibatch_step(
        self, minibatch: TensorDict, terms: Sequence[WeightedTerm], needs_entropy: bool
    ) -> dict[str, float] | None:
        world = self.ctx.world_size
        minibatch = pad_to_multiple(minibatch, world)
        total_tokens = float(minibatch[K.RESPONSE_MASK].sum())
        if total_tokens == 0:
            return None
        share = minibatch.shape[0] // world
        mine = minibatch[self.ctx.rank * share : (self.ctx.rank + 1) * share]
        starts = list(range(0, share, self.microbatch_size))
        sums: dict[str, float] = {}
        for i, start in enumerate(starts):
            micro = trim_padding(mine[start : start + self.microbatch_size])
            micro = micro.clone(recurse=False)
            micro.set(K.TOKEN_WEIGHT, micro[K.RESPONSE_MASK].float() / total_tokens)
            # reduce gradients over ranks only after the last micro-batch
            if hasattr(self.model, "set_requires_gradient_sync"):  # FSDP (not one plain rank)
                self.model.set_requires_gradient_sync(i == len(starts) - 1)
            log_probs, entropy = response_log_probs(
                self.model, micro, temperature=self.temperature, with_entropy=needs_entropy
            )
            device = log_probs.device
            micro = micro.to(device)
            out = combine(terms, micro, PolicyOutputs(log_probs=log_probs, entropy=entropy))
            # FSDP averages gradients over ranks; the loss is already a global token mean
            (out.loss * world).backward()
            for key, value in out.metrics.items():
                sums[key] = sums.get(key, 0.0) + value
        sums = self.ctx.all_reduce_sum(sums)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        if hasattr(grad_norm, "full_tensor"):
            grad_norm = grad_norm.full_tensor()
        grad_norm = float(grad_norm)
        if math.isfinite(grad_norm):
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        sums["train/grad_norm"] = grad_norm
        return sums

    # -- weights -------------------------------------------------------------------------
    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """The unsharded weights on rank 0 (CPU); an empty dict on other ranks.
        Collective."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(
            self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )

    def optimizer_state(self) -> dict[str, Any]:
        """The full optimizer state on rank 0 (CPU). Collective."""
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_optimizer_state_dict,
        )

        return get_optimizer_state_dict(
            self.model,
            self.optimizer,
            options=StateDictOptions(full_state_dict=True, cpu_offload=True),
        )

    def load_optimizer_state(self, state: Mapping[str, Any] | None) -> None:
        """Restore :meth:`optimizer_state` (read on rank 0, broadcast). Collective."""
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_optimizer_state_dict,
        )

        set_optimizer_state_dict(
            self.model,
            self.optimizer,
            optim_state_dict=dict(state or {}),
            options=StateDictOptions(
                full_state_dict=True, broadcast_from_rank0=self.ctx.world_size > 1
            ),
        )

    def save_pretrained(
        self, path: str, state: Mapping[str, torch.Tensor], tokenizer: Any = None
    ) -> None:
        """Write a Hugging Face folder (rank 0 passes :meth:`full_state_dict`)."""
        self.model.save_pretrained(path, state_dict=dict(state), safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(path)
