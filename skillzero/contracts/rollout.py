"""The rollout-backend contract: batched generation with per-token log-probs.

A backend (transformers, vLLM, an OpenAI-compatible server, ...) is registered with
``register_rollout_backends`` and built from the ``model`` and ``backend`` config groups.
It generates ``n`` samples for each prompt and reports, for every sampled token, the
log-probability under the sampling policy; the trainer compares those with its own
recomputed log-probs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch stays out of plugin discovery
    import torch


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings; ``top_k=-1`` and ``top_p=1.0`` disable those filters,
    ``temperature=0`` means greedy."""

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")


@dataclass
class Generation:
    """One sampled response.

    ``token_ids`` are the response tokens (stop strings included when generation stopped
    on one, the EOS token excluded), ``log_probs[i]`` the sampling policy's log-prob of
    ``token_ids[i]``; ``finish_reason`` is ``stop``, ``length`` or ``eos``. When it is
    ``eos``, backends put the EOS token and its log-prob in ``extra`` (``eos_token_id``,
    ``eos_log_prob``): the trainer appends that token to the response so the policy also
    learns when to stop.
    """

    prompt_ids: list[int]
    token_ids: list[int]
    text: str
    log_probs: list[float]
    finish_reason: str = "length"
    extra: dict[str, Any] = field(default_factory=dict)


class RolloutBackend(ABC):
    """Generates responses for chat prompts. Implementations must be usable from one
    thread; the collector batches all active envs into one :meth:`generate` call."""

    #: the tokenizer the prompts are templated and counted with
    tokenizer: Any

    @abstractmethod
    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Generation]]:
        """Sample ``params.n`` responses for each tokenized prompt (one list per prompt)."""

    def generate_chats(
        self, chats: Sequence[list[dict[str, str]]], params: SamplingParams
    ) -> list[list[Generation]]:
        """Sample for chat prompts. The default templates each chat with
        :meth:`apply_chat_template` and calls :meth:`generate`; backends that only see
        chats (a served model behind an OpenAI-compatible API) override it."""
        return self.generate([self.apply_chat_template(chat) for chat in chats], params)

    def apply_chat_template(self, messages: list[dict[str, str]]) -> list[int]:
        """Tokenize one chat, ending with the assistant's generation prompt."""
        return list(
            self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=False
            )
        )

    @abstractmethod
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Replace the policy weights in place (after a training update)."""

    def sleep(self) -> None:  # noqa: B027 - optional hook
        """Release accelerator memory while the trainer runs (where supported)."""

    def wake(self) -> None:  # noqa: B027 - optional hook
        """Undo :meth:`sleep`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Free resources (engines, worker processes)."""
