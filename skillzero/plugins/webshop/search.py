"""The product search engine: BM25 over WebShop's search documents, with bm25s.

WebShop indexes one document per product (:func:`~skillzero.plugins.webshop.catalogue.
search_document`) with Lucene (pyserini, BM25 with k1=0.9, b=0.4, English analyzer)
and shows the top 50 hits. Here the index is bm25s's sparse BM25 matrix with Lucene's
scoring (``method="lucene"``, the same k1 and b), and the analysis approximates
Lucene's English analyzer: lower-case, split on non-word characters, drop Lucene's 33
English stop words, Porter stemming (PyStemmer, the ``porter`` algorithm). Ties are
broken by catalogue order, and only products that match at least one query term are
hits, as in Lucene.

Building (:class:`IndexBuilder`) streams the documents: each one is tokenised and its
term counts appended to arrays, so memory grows with the number of postings, not with
the text; the postings are then sorted by term and written in bm25s's on-disk format.
Loading (:class:`SearchIndex`) memory-maps the score arrays, so worker processes share
them through the page cache; only the vocabulary is read into memory.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

K1 = 0.9
B = 0.4
"""Lucene/pyserini's BM25 defaults (WebShop searches with pyserini's defaults)."""

SEARCH_RETURN_N = 50
_TOKEN = re.compile(r"\w+")
_FLUSH_POSTINGS = 4_000_000


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


class Analyzer:
    """Text -> index terms (see the module docstring). ``stem=False`` skips stemming."""

    def __init__(self, stem: bool = True) -> None:
        self.stop = _stopwords()
        self._stemmer: Any = None
        if stem:
            import Stemmer

            self._stemmer = Stemmer.Stemmer("porter")
        self._cache: dict[str, str] = {}

    def __call__(self, text: str) -> list[str]:
        words = [w for w in _TOKEN.findall(text.lower()) if w not in self.stop]
        if self._stemmer is None:
            return words
        cache = self._cache
        out = []
        for word in words:
            stem = cache.get(word)
            if stem is None:
                stem = self._stemmer.stemWord(word)
                if len(cache) < 1_000_000:
                    cache[word] = stem
            out.append(stem)
        return out


class IndexBuilder:
    """Collects documents one at a time, then writes a bm25s index folder.

    ``add(text)`` gives documents ids 0, 1, 2, ... in call order. Postings are kept as
    int32 term ids, int32 doc ids and uint16 term counts, flushed to temporary ``.npy``
    files under the output folder every few million postings.
    """

    def __init__(self, out_dir: str | os.PathLike[str], stem: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.analyzer = Analyzer(stem=stem)
        self.stem = stem
        self.vocab: dict[str, int] = {}
        self.doc_lengths: list[int] = []
        self._terms: list[int] = []
        self._docs: list[int] = []
        self._counts: list[int] = []
        self._parts: list[Path] = []

    @property
    def num_docs(self) -> int:
        return len(self.doc_lengths)

    def add(self, text: str) -> int:
        """Index one document; returns its id."""
        doc = len(self.doc_lengths)
        terms = self.analyzer(text)
        self.doc_lengths.append(len(terms))
        vocab = self.vocab
        for term, count in Counter(terms).items():
            term_id = vocab.get(term)
            if term_id is None:
                term_id = vocab[term] = len(vocab)
            self._terms.append(term_id)
            self._docs.append(doc)
            self._counts.append(min(count, 65535))
        if len(self._terms) >= _FLUSH_POSTINGS:
            self._flush()
        return doc

    def _flush(self) -> None:
        if not self._terms:
            return
        part = self.out_dir / f".postings-{len(self._parts)}.npz"
        np.savez(
            part,
            terms=np.asarray(self._terms, dtype=np.int32),
            docs=np.asarray(self._docs, dtype=np.int32),
            counts=np.asarray(self._counts, dtype=np.uint16),
        )
        self._parts.append(part)
        self._terms, self._docs, self._counts = [], [], []

    def finish(self) -> dict[str, Any]:
        """Compute the BM25 weights and write the index; returns its parameters."""
        import bm25s

        self._flush()
        num_docs, num_terms = self.num_docs, len(self.vocab)
        lengths = np.asarray(self.doc_lengths, dtype=np.float32)
        avg_length = float(lengths.mean()) if num_docs else 0.0
        # postings of all parts, concatenated (term ids, doc ids, counts)
        parts = [np.load(p) for p in self._parts]
        terms = np.concatenate([p["terms"] for p in parts]) if parts else np.zeros(0, np.int32)
        docs = np.concatenate([p["docs"] for p in parts]) if parts else np.zeros(0, np.int32)
        counts = np.concatenate([p["counts"] for p in parts]) if parts else np.zeros(0, np.uint16)
        del parts
        for part in self._parts:
            part.unlink(missing_ok=True)
        df = np.bincount(terms, minlength=num_terms).astype(np.float64)
        idf = np.log(1.0 + (num_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = (K1 * (1.0 - B + B * lengths / max(avg_length, 1e-9))).astype(np.float32)
        tf = counts.astype(np.float32)
        weights = idf[terms] * (tf / (tf + norm[docs]))
        del tf, counts
        order = np.argsort(terms, kind="stable")  # by term, then by doc (docs were added in order)
        data = weights[order].astype(np.float32)
        del weights
        indices = docs[order].astype(np.int32)
        del docs, order
        indptr = np.zeros(num_terms + 1, dtype=np.int64)
        np.cumsum(np.bincount(terms, minlength=num_terms), out=indptr[1:])
        del terms

        retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
        retriever.scores = {
            "data": data,
            "indices": indices,
            "indptr": indptr,
            "num_docs": num_docs,
        }
        retriever.vocab_dict = self.vocab
        retriever.nonoccurrence_array = None
        retriever.save(self.out_dir, show_progress=False)
        params = {"num_docs": num_docs, "num_terms": num_terms, "stem": self.stem}
        (self.out_dir / "analyzer.json").write_text(json.dumps(params) + "\n", encoding="utf-8")
        return params


class SearchIndex:
    """A built index, memory-mapped (see the module docstring)."""

    def __init__(self, index_dir: str | os.PathLike[str], mmap: bool = True) -> None:
        import bm25s

        self.index_dir = Path(index_dir)
        params = json.loads((self.index_dir / "analyzer.json").read_text(encoding="utf-8"))
        self.analyzer = Analyzer(stem=bool(params.get("stem", True)))
        self.retriever = bm25s.BM25.load(self.index_dir, mmap=mmap, show_progress=False)
        self.num_docs = int(self.retriever.scores["num_docs"])

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> list[int]:
        """Ids of the best ``k`` documents matching any term of ``query``, best first."""
        vocab = self.retriever.vocab_dict
        ids = [vocab[t] for t in self.analyzer(query) if t in vocab]
        if not ids or self.num_docs == 0:
            return []
        scores = self.retriever.get_scores_from_ids(ids)
        hits = np.flatnonzero(scores > 0)
        if hits.size == 0:
            return []
        hit_scores = scores[hits]
        if hits.size > k:
            # keep every hit at least as good as the k-th best, so that ties at the
            # boundary are broken by catalogue order too
            kth = np.partition(hit_scores, hits.size - k)[hits.size - k]
            keep = hit_scores >= kth
            hits, hit_scores = hits[keep], hit_scores[keep]
        # best first; equal scores in catalogue order
        order = np.lexsort((hits, -hit_scores))[:k]
        return [int(h) for h in hits[order]]

    def search_many(self, queries: Iterable[str], k: int = SEARCH_RETURN_N) -> list[list[int]]:
        """:meth:`search` for each query."""
        return [self.search(q, k) for q in queries]


def build_index(
    documents: Iterable[str], out_dir: str | os.PathLike[str], stem: bool = True
) -> dict[str, Any]:
    """Index ``documents`` (ids in iteration order) into ``out_dir``."""
    builder = IndexBuilder(out_dir, stem=stem)
    for text in documents:
        builder.add(text)
    return builder.finish()
