"""A client for OpenAI-compatible servers (vLLM's server, and others), for evaluation.

``generate_chats`` posts to ``/chat/completions``; ``generate`` posts token-id prompts to
``/completions`` (servers such as vLLM accept token arrays). Requests run concurrently
up to ``max_concurrency``; connection errors, timeouts, 429 and 5xx answers are retried
with exponential backoff; any other error answer raises :class:`ServerError` with the
server's own message. The weights of a served model are not ours to change, so
``load_weights`` is refused: use this backend with ``skillzero eval``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from skillzero.contracts.rollout import Generation, RolloutBackend, SamplingParams
from skillzero.core.config import cfg_get

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class ServerError(RuntimeError):
    """The server answered with an error (or could not be reached after retries)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class OpenAIBackend(RolloutBackend):
    """``backend_cfg.params``: ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``),
    ``api_key_env`` (name of the variable holding the key; none by default),
    ``served_model`` (default: ``model.path`` or ``model.name``), ``max_concurrency`` (8),
    ``timeout_s`` (120), ``max_retries`` (4), ``backoff_s`` (0.5), ``tokenizer`` (an
    optional HF tokenizer path, for counting prompt tokens locally)."""

    def __init__(self, model_cfg: Mapping[str, Any] | Any, backend_cfg: Mapping[str, Any] | Any):
        params = dict(cfg_get(backend_cfg, "params", {}) or {})
        base_url = params.get("base_url")
        if not base_url:
            raise ValueError("backend=openai needs backend.params.base_url (e.g. http://host/v1)")
        self.base_url = str(base_url).rstrip("/")
        self.model = (
            params.get("served_model") or cfg_get(model_cfg, "path") or cfg_get(model_cfg, "name")
        )
        self.max_concurrency = max(1, int(params.get("max_concurrency", 8)))
        self.timeout_s = float(params.get("timeout_s", 120.0))
        self.max_retries = max(0, int(params.get("max_retries", 4)))
        self.backoff_s = float(params.get("backoff_s", 0.5))
        self.session = requests.Session()
        key_env = params.get("api_key_env")
        if key_env:
            key = os.environ.get(key_env)
            if not key:
                raise ValueError(f"backend.params.api_key_env names {key_env!r}, which is unset")
            self.session.headers["Authorization"] = f"Bearer {key}"
        self.tokenizer = None
        if params.get("tokenizer"):
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(params["tokenizer"])

    # -- HTTP ----------------------------------------------------------------------------
    def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{route}"
        last_error = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = self.backoff_s * (2 ** (attempt - 1))
                time.sleep(delay * (1 + 0.25 * random.random()))  # jitter spreads retries
            try:
                response = self.session.post(url, json=body, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 200:
                try:
                    return response.json()
                except ValueError:
                    raise ServerError(f"{url} answered 200 with a body that is not JSON") from None
            message = _error_message(response)
            if response.status_code in RETRY_STATUS:
                last_error = f"HTTP {response.status_code}: {message}"
                continue
            raise ServerError(
                f"{url} answered HTTP {response.status_code}: {message}", response.status_code
            )
        raise ServerError(
            f"{url} failed after {self.max_retries + 1} attempts; last error: {last_error}"
        )

    def _sampling_body(self, params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
        }
        if params.top_k > 0:
            body["top_k"] = params.top_k  # an extension most open servers accept
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    def _map(self, function: Any, items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1 or self.max_concurrency == 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(items))) as pool:
            return list(pool.map(function, items))

    # -- generation ----------------------------------------------------------------------
    def generate_chats(
        self, chats: Sequence[list[dict[str, str]]], params: SamplingParams
    ) -> list[list[Generation]]:
        def one(chat: list[dict[str, str]]) -> list[Generation]:
            body = self._sampling_body(params) | {
                "messages": chat,
                "logprobs": True,
                "top_logprobs": 0,
            }
            answer = self._post("chat/completions", body)
            generations = []
            for choice in sorted(answer.get("choices", []), key=lambda c: c.get("index", 0)):
                content = (choice.get("message") or {}).get("content") or ""
                entries = (choice.get("logprobs") or {}).get("content") or []
                generations.append(
                    Generation(
                        prompt_ids=[],
                        token_ids=[],
                        text=content,
                        log_probs=[float(e.get("logprob", 0.0)) for e in entries],
                        finish_reason=_finish(choice.get("finish_reason")),
                        extra={
                            "tokens": [e.get("token", "") for e in entries],
                            "usage": answer.get("usage", {}),
                        },
                    )
                )
            return generations

        return self._map(one, list(chats))

    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Generation]]:
        def one(prompt: Sequence[int]) -> list[Generation]:
            body = self._sampling_body(params) | {
                "prompt": [int(t) for t in prompt],
                "logprobs": 0,
                "return_tokens_as_token_ids": True,  # vLLM: tokens come back as ids
            }
            answer = self._post("completions", body)
            generations = []
            for choice in sorted(answer.get("choices", []), key=lambda c: c.get("index", 0)):
                logprobs = choice.get("logprobs") or {}
                tokens = logprobs.get("tokens") or []
                token_ids = [_token_id(t) for t in tokens]
                if any(t is None for t in token_ids):
                    token_ids = []  # the server did not return ids
                generations.append(
                    Generation(
                        prompt_ids=list(prompt),
                        token_ids=[t for t in token_ids if t is not None],
                        text=choice.get("text") or "",
                        log_probs=[float(x) for x in logprobs.get("token_logprobs") or []],
                        finish_reason=_finish(choice.get("finish_reason")),
                    )
                )
            return generations

        return self._map(one, list(prompts))

    def apply_chat_template(self, messages: list[dict[str, str]]) -> list[int]:
        if self.tokenizer is None:
            raise RuntimeError(
                "backend=openai has no local tokenizer: set backend.params.tokenizer, or "
                "let the server template chats (generate_chats)"
            )
        return super().apply_chat_template(messages)

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        raise NotImplementedError(
            "backend=openai evaluates a served model; its weights cannot be updated "
            "(train with backend=transformers or backend=vllm)"
        )

    def close(self) -> None:
        self.session.close()


def _finish(reason: str | None) -> str:
    return {"stop": "stop", "length": "length"}.get(reason or "", reason or "length")


def _token_id(token: str) -> int | None:
    if isinstance(token, str) and token.startswith("token_id:"):
        try:
            return int(token.split(":", 1)[1])
        except ValueError:
            return None
    return None


def _error_message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300] or response.reason
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        return str(error.get("message") or error)[:500]
    return str(error)[:500]
