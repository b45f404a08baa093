"""Retrieval indexes over a wiki-18 style corpus: BM25 (``bm25s``) and dense (``faiss``).

A corpus is a JSONL file of passages, ``{"id", "contents": "\\"Title\\"\\ntext"}`` (the
wiki-18 format of Search-R1 and FlashRAG); ``{"id", "title", "text"}`` lines are read
too. An index is a folder:

``index.json``
    the manifest: retriever kind, the corpus it indexes (by path), passage count, BM25
    parameters or the dense encoder's recipe and the faiss index kind;
``offsets.npy``
    the byte offset of every passage in the corpus (passages are read from the corpus
    file on demand, so a 21M-passage corpus is not held in memory);
``bm25/``
    the bm25s index (``retriever=bm25``), or ``dense.faiss`` (``retriever=dense``), or a
    reference to an existing faiss file (Search-R1's ``e5_Flat.index``, adopted without
    re-encoding).

Builds are atomic: everything is written into a temporary folder beside the target and
renamed into place at the end, so a half-written index is never served. Dense builds
are also resumable: passage embeddings are kept in ``.<name>.partial/`` chunk by chunk
until the index is complete, and an interrupted build continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skillzero.plugins.search.encoder import EncoderSpec, TextEncoder, resolve_encoder

__all__ = [
    "FAISS_KINDS",
    "BM25Searcher",
    "Corpus",
    "DenseSearcher",
    "Retriever",
    "SearchIndexError",
    "adopt_faiss_index",
    "build_index",
    "is_index",
    "open_retriever",
    "read_manifest",
]

MANIFEST = "index.json"
OFFSETS = "offsets.npy"
BM25_DIR = "bm25"
FAISS_FILE = "dense.faiss"
INDEX_VERSION = 1
FAISS_KINDS = ("flat", "ivf", "hnsw")
BM25_PARAMS = {"k1": 0.9, "b": 0.4, "method": "lucene", "stopwords": "en"}
"""Pyserini's BM25 defaults (what Search-R1's BM25 retriever uses), on bm25s."""
CHUNK_DOCS = 4096


class SearchIndexError(RuntimeError):
    """An index that cannot be built or opened; the message says why and what to do."""


# ----------------------------------------------------------------------------------------
# the corpus
# ----------------------------------------------------------------------------------------


def _document(record: Any, where: str) -> dict[str, str]:
    """``{"id", "contents"}`` of one corpus record (wiki-18, or title/text)."""
    if not isinstance(record, dict):
        raise SearchIndexError(f"{where}: a passage must be a JSON object")
    doc_id = str(record.get("id", record.get("_id", "")))
    contents = record.get("contents")
    if not isinstance(contents, str):
        text = record.get("text")
        if not isinstance(text, str):
            raise SearchIndexError(f"{where}: a passage needs 'contents' or 'text'")
        title = record.get("title")
        contents = f'"{title}"\n{text}' if isinstance(title, str) and title else text
    return {"id": doc_id, "contents": contents}


def scan_offsets(path: Path, progress: bool = False) -> np.ndarray:
    """Byte offsets of the non-empty lines of ``path``, plus the file size at the end
    (``len - 1`` passages)."""
    offsets = []
    position = 0
    total = path.stat().st_size
    bar = _bar(total, f"scan {path.name}", progress, unit="B")
    with open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                offsets.append(position)
            position += len(line)
            bar.update(len(line))
    bar.close()
    offsets.append(position)
    return np.asarray(offsets, dtype=np.int64)


class Corpus:
    """Random access to the passages of a corpus file through their byte offsets."""

    def __init__(self, path: str | os.PathLike[str], offsets: np.ndarray) -> None:
        self.path = Path(path)
        self.offsets = offsets
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def get(self, index: int) -> dict[str, str]:
        """Passage ``index`` as ``{"id", "contents"}`` (thread-safe: positioned reads)."""
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        raw = os.pread(self._fd, end - start, start)
        return _document(json.loads(raw), f"{self.path} passage {index}")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def iter_documents(path: Path) -> Iterator[dict[str, str]]:
    """Every passage of a corpus file, in order; a clear error names a bad line."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise SearchIndexError(f"{path}:{number}: not a JSON line ({exc})") from None
            yield _document(record, f"{path}:{number}")


def _bar(total: int, desc: str, enabled: bool, unit: str = "doc") -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit == "B",
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
    )


# ----------------------------------------------------------------------------------------
# manifests
# ----------------------------------------------------------------------------------------


def read_manifest(index_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an index folder; raises :class:`SearchIndexError` when it has none."""
    path = Path(index_dir) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SearchIndexError(
            f"{index_dir} is not a skillzero search index (no readable {MANIFEST}: {exc}); "
            "build one with `skillzero search index --corpus CORPUS --out DIR`"
        ) from None
    if data.get("version") != INDEX_VERSION or data.get("retriever") not in ("bm25", "dense"):
        raise SearchIndexError(f"{path}: unsupported index manifest {data!r}")
    return data


def is_index(index_dir: str | os.PathLike[str]) -> bool:
    """Whether ``index_dir`` holds a complete index."""
    try:
        read_manifest(index_dir)
    except SearchIndexError:
        return False
    return True


def _corpus_fields(corpus: Path, out: Path) -> dict[str, Any]:
    stat = corpus.stat()
    return {
        "corpus": str(corpus.resolve()),
        "corpus_relative": os.path.relpath(corpus.resolve(), out.resolve()),
        "corpus_bytes": stat.st_size,
    }


def corpus_path(index_dir: Path, manifest: dict[str, Any]) -> Path:
    """The corpus file of an index (its absolute path, else its path relative to the
    index folder, so a moved folder of world + index still works)."""
    for candidate in (Path(manifest["corpus"]), index_dir / manifest.get("corpus_relative", "")):
        if candidate.is_file():
            return candidate
    raise SearchIndexError(
        f"the corpus of index {index_dir} is gone: {manifest['corpus']} (pass --corpus)"
    )


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    if out.exists():
        if not overwrite and is_index(out):
            shutil.rmtree(tmp, ignore_errors=True)
            raise SearchIndexError(f"{out} already holds an index (use --overwrite to replace it)")
        shutil.rmtree(out)
    os.replace(tmp, out)


# ----------------------------------------------------------------------------------------
# building
# ----------------------------------------------------------------------------------------


def build_index(
    corpus: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    retriever: str = "bm25",
    encoder: str | EncoderSpec | None = None,
    faiss_kind: str = "flat",
    nlist: int | None = None,
    hnsw_m: int = 32,
    device: str = "cpu",
    batch_size: int = 64,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Index ``corpus`` into the folder ``out`` (atomic; dense builds resume).

    ``retriever``: ``bm25`` or ``dense``. Dense options: ``encoder`` (a name, a folder
    or an :class:`EncoderSpec`; default all-MiniLM-L6-v2), ``faiss_kind`` (``flat``
    exact inner product; ``ivf`` with ``nlist`` lists; ``hnsw`` with ``hnsw_m``
    neighbours), ``device`` and ``batch_size`` of the encoder.
    """
    corpus, out = Path(corpus), Path(out)
    if not corpus.is_file():
        raise SearchIndexError(f"corpus file not found: {corpus}")
    if retriever not in ("bm25", "dense"):
        raise SearchIndexError(f"unknown retriever {retriever!r}; choose bm25 or dense")
    if out.exists() and is_index(out) and not overwrite:
        raise SearchIndexError(f"{out} already holds an index (use --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    started = time.perf_counter()
    try:
        offsets = scan_offsets(corpus, progress)
        if len(offsets) < 2:
            raise SearchIndexError(f"{corpus} holds no passages")
        np.save(tmp / OFFSETS, offsets)
        manifest: dict[str, Any] = {
            "version": INDEX_VERSION,
            "retriever": retriever,
            **_corpus_fields(corpus, out),
            "num_docs": len(offsets) - 1,
        }
        if retriever == "bm25":
            manifest["bm25"] = _build_bm25(corpus, tmp, len(offsets) - 1, progress)
        else:
            spec = encoder if isinstance(encoder, EncoderSpec) else resolve_encoder(encoder)
            manifest["dense"] = _build_dense(
                corpus,
                out,
                tmp,
                spec,
                num_docs=len(offsets) - 1,
                faiss_kind=faiss_kind,
                nlist=nlist,
                hnsw_m=hnsw_m,
                device=device,
                batch_size=batch_size,
                progress=progress,
            )
        manifest["build_seconds"] = round(time.perf_counter() - started, 2)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        _publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _build_bm25(corpus: Path, tmp: Path, num_docs: int, progress: bool) -> dict[str, Any]:
    import bm25s

    bar = _bar(num_docs, "read passages", progress)
    texts = []
    for doc in iter_documents(corpus):
        texts.append(doc["contents"])
        bar.update(1)
    bar.close()
    tokens = bm25s.tokenize(texts, stopwords=BM25_PARAMS["stopwords"], show_progress=progress)
    del texts
    model = bm25s.BM25(k1=BM25_PARAMS["k1"], b=BM25_PARAMS["b"], method=BM25_PARAMS["method"])
    model.index(tokens, show_progress=progress)
    model.save(str(tmp / BM25_DIR), show_progress=False)
    return dict(BM25_PARAMS)


def _fingerprint(corpus: Path, spec: EncoderSpec) -> str:
    stat = corpus.stat()
    key = json.dumps(
        [str(corpus.resolve()), stat.st_size, stat.st_mtime_ns, spec.as_dict(), CHUNK_DOCS],
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _build_dense(
    corpus: Path,
    out: Path,
    tmp: Path,
    spec: EncoderSpec,
    *,
    num_docs: int,
    faiss_kind: str,
    nlist: int | None,
    hnsw_m: int,
    device: str,
    batch_size: int,
    progress: bool,
) -> dict[str, Any]:
    import faiss

    if faiss_kind not in FAISS_KINDS:
        raise SearchIndexError(
            f"unknown faiss index kind {faiss_kind!r}; choose one of {FAISS_KINDS}"
        )
    # embeddings survive an interrupted build here, chunk by chunk
    work = out.parent / f".{out.name}.partial"
    fingerprint = _fingerprint(corpus, spec)
    stamp = work / "fingerprint"
    if work.exists() and (not stamp.is_file() or stamp.read_text() != fingerprint):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)
    encoder = TextEncoder(spec, device=device, batch_size=batch_size)
    bar = _bar(num_docs, f"encode passages ({spec.name})", progress)
    chunk_files = []
    batch: list[str] = []
    chunk = 0

    def flush() -> None:
        nonlocal chunk, batch
        path = work / f"emb-{chunk:06d}.npy"
        if not path.is_file():
            vectors = encoder.encode_passages(batch)
            partial = path.with_suffix(".tmp.npy")
            np.save(partial, vectors)
            os.replace(partial, path)
        chunk_files.append(path)
        bar.update(len(batch))
        chunk += 1
        batch = []

    for doc in iter_documents(corpus):
        batch.append(doc["contents"])
        if len(batch) == CHUNK_DOCS:
            flush()
    if batch:
        flush()
    bar.close()
    dim = int(np.load(chunk_files[0], mmap_mode="r").shape[1])
    metric = faiss.METRIC_INNER_PRODUCT
    info: dict[str, Any] = {"encoder": spec.as_dict(), "faiss": faiss_kind, "dim": dim}
    if faiss_kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif faiss_kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, int(hnsw_m), metric)
        info["hnsw_m"] = int(hnsw_m)
    else:
        lists = int(nlist or max(1, min(65536, int(4 * np.sqrt(num_docs)))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, lists, metric)
        sample = np.concatenate(
            [np.load(f) for f in chunk_files[: max(1, (lists * 64) // CHUNK_DOCS + 1)]]
        )
        index.train(sample[: lists * 64])
        info["nlist"] = lists
    bar = _bar(num_docs, "add to faiss", progress)
    for path in chunk_files:
        vectors = np.load(path)
        index.add(vectors)
        bar.update(len(vectors))
    bar.close()
    faiss.write_index(index, str(tmp / FAISS_FILE))
    info["faiss_file"] = FAISS_FILE
    shutil.rmtree(work, ignore_errors=True)
    return info


def adopt_faiss_index(
    faiss_file: str | os.PathLike[str],
    corpus: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    encoder: str | EncoderSpec,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """An index folder for an existing faiss file built over ``corpus`` (Search-R1's
    ``e5_Flat.index`` over ``wiki-18.jsonl`` with ``intfloat/e5-base-v2``): no passage
    is re-encoded; the folder refers to the faiss file by path. Checks that the faiss
    index holds one vector per passage."""
    import faiss

    faiss_file, corpus, out = Path(faiss_file).resolve(), Path(corpus), Path(out)
    spec = encoder if isinstance(encoder, EncoderSpec) else resolve_encoder(encoder)
    if not faiss_file.is_file():
        raise SearchIndexError(f"faiss index not found: {faiss_file}")
    if not corpus.is_file():
        raise SearchIndexError(f"corpus file not found: {corpus}")
    index = faiss.read_index(str(faiss_file), faiss.IO_FLAG_MMAP)
    offsets = scan_offsets(corpus, progress)
    if index.ntotal != len(offsets) - 1:
        raise SearchIndexError(
            f"{faiss_file} holds {index.ntotal} vectors but {corpus} has {len(offsets) - 1} "
            "passages: they were not built together"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        np.save(tmp / OFFSETS, offsets)
        manifest = {
            "version": INDEX_VERSION,
            "retriever": "dense",
            **_corpus_fields(corpus, out),
            "num_docs": len(offsets) - 1,
            "dense": {
                "encoder": spec.as_dict(),
                "faiss": type(index).__name__,
                "dim": int(index.d),
                "faiss_file": str(faiss_file),
            },
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        _publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# ----------------------------------------------------------------------------------------
# searching
# ----------------------------------------------------------------------------------------


class BM25Searcher:
    """BM25 over a bm25s index (memory-mapped)."""

    kind = "bm25"

    def __init__(self, index_dir: Path, params: dict[str, Any]) -> None:
        import bm25s

        self._bm25s = bm25s
        self.stopwords = params.get("stopwords", "en")
        self.model = bm25s.BM25.load(str(index_dir / BM25_DIR), mmap=True)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each ``(len(queries), k)``, best first."""
        tokens = self._bm25s.tokenize(
            list(queries), stopwords=self.stopwords, return_ids=False, show_progress=False
        )
        ids, scores = self.model.retrieve(tokens, k=k, show_progress=False, n_threads=0)
        return np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float32)


class DenseSearcher:
    """Inner-product search of encoded queries in a faiss index."""

    kind = "dense"

    def __init__(
        self,
        faiss_file: Path,
        encoder: TextEncoder,
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
        mmap: bool = False,
    ) -> None:
        import faiss

        self.encoder = encoder
        self.index = faiss.read_index(str(faiss_file), faiss.IO_FLAG_MMAP if mmap else 0)
        if nprobe is not None and hasattr(self.index, "nprobe"):
            self.index.nprobe = int(nprobe)
        if ef_search is not None and hasattr(self.index, "hnsw"):
            self.index.hnsw.efSearch = int(ef_search)
        if encoder.device.startswith("cuda") and hasattr(faiss, "StandardGpuResources"):
            options = faiss.GpuMultipleClonerOptions()
            options.useFloat16 = True
            options.shard = True
            self.index = faiss.index_cpu_to_all_gpus(self.index, co=options)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each ``(len(queries), k)``, best first (-1: no passage)."""
        vectors = self.encoder.encode_queries(list(queries))
        scores, ids = self.index.search(vectors, k)
        return np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float32)


@dataclass
class Retriever:
    """A searcher and the corpus its ids point into."""

    searcher: BM25Searcher | DenseSearcher
    corpus: Corpus
    description: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.searcher.kind

    @property
    def num_docs(self) -> int:
        return len(self.corpus)

    def search(self, queries: Sequence[str], k: int) -> list[list[tuple[dict[str, str], float]]]:
        """The top ``k`` passages of every query, as ``(passage, score)`` pairs."""
        if not queries:
            return []
        k = max(1, min(int(k), self.num_docs))
        ids, scores = self.searcher.search(queries, k)
        results = []
        for row_ids, row_scores in zip(ids, scores, strict=True):
            results.append(
                [
                    (self.corpus.get(int(i)), float(s))
                    for i, s in zip(row_ids, row_scores, strict=True)
                    if 0 <= int(i) < self.num_docs
                ]
            )
        return results

    def close(self) -> None:
        self.corpus.close()


def _offsets_for(corpus: Path) -> np.ndarray:
    """Offsets of a corpus without an index folder, cached in the user cache."""
    stat = corpus.stat()
    key = hashlib.sha256(
        f"{corpus.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    ).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    cached = Path(base) / "skillzero" / "search-offsets" / f"{key}.npy"
    if cached.is_file():
        return np.load(cached)
    offsets = scan_offsets(corpus, progress=sys.stderr.isatty())
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(partial, offsets)
        os.replace(partial, cached)
    except OSError:
        pass  # a read-only cache only costs a re-scan
    return offsets


def open_retriever(
    index: str | os.PathLike[str],
    *,
    corpus: str | os.PathLike[str] | None = None,
    encoder: str | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    nprobe: int | None = None,
    ef_search: int | None = None,
    mmap: bool = False,
) -> Retriever:
    """Open an index folder, or a bare faiss file with its ``corpus`` and ``encoder``
    (Search-R1's ``e5_Flat.index`` + ``wiki-18.jsonl`` + ``intfloat/e5-base-v2``).

    ``corpus`` overrides the folder's corpus path; ``encoder`` its encoder (dense);
    ``device``/``batch_size``: the query encoder's; ``nprobe`` (IVF), ``ef_search``
    (HNSW); ``mmap``: memory-map the faiss file instead of reading it.
    """
    path = Path(os.path.expandvars(os.path.expanduser(os.fspath(index))))
    if path.is_file():
        if corpus is None or encoder is None:
            raise SearchIndexError(
                f"{path} is a bare faiss file: also give its corpus and encoder "
                "(--corpus wiki-18.jsonl --encoder intfloat/e5-base-v2 for Search-R1's "
                "e5_Flat.index), or adopt it once with `skillzero search index --from-faiss`"
            )
        corpus_file = Path(corpus)
        if not corpus_file.is_file():
            raise SearchIndexError(f"corpus file not found: {corpus_file}")
        spec = resolve_encoder(encoder)
        text_encoder = TextEncoder(spec, device=device, batch_size=batch_size)
        searcher: BM25Searcher | DenseSearcher = DenseSearcher(
            path, text_encoder, nprobe=nprobe, ef_search=ef_search, mmap=mmap
        )
        store = Corpus(corpus_file, _offsets_for(corpus_file))
        if searcher.index.ntotal != len(store):
            raise SearchIndexError(
                f"{path} holds {searcher.index.ntotal} vectors but {corpus_file} has "
                f"{len(store)} passages: they were not built together"
            )
        description = {
            "retriever": "dense",
            "encoder": spec.name,
            "faiss": str(path),
            "num_docs": len(store),
        }
        return Retriever(searcher, store, description)
    if not path.is_dir():
        raise SearchIndexError(f"index not found: {path}")
    manifest = read_manifest(path)
    corpus_file = Path(corpus) if corpus is not None else corpus_path(path, manifest)
    offsets = np.load(path / OFFSETS) if corpus is None else _offsets_for(corpus_file)
    store = Corpus(corpus_file, offsets)
    if len(store) != int(manifest["num_docs"]):
        store.close()
        raise SearchIndexError(
            f"{corpus_file} has {len(store)} passages but the index {path} was built over "
            f"{manifest['num_docs']}"
        )
    if manifest["retriever"] == "bm25":
        searcher = BM25Searcher(path, manifest.get("bm25", {}))
        description = {"retriever": "bm25", "index": str(path)}
    else:
        dense = manifest["dense"]
        spec = (
            resolve_encoder(encoder)
            if encoder is not None
            else EncoderSpec.from_dict(dense["encoder"])
        )
        text_encoder = TextEncoder(spec, device=device, batch_size=batch_size)
        faiss_file = Path(dense["faiss_file"])
        if not faiss_file.is_absolute():
            faiss_file = path / faiss_file
        searcher = DenseSearcher(
            faiss_file, text_encoder, nprobe=nprobe, ef_search=ef_search, mmap=mmap
        )
        description = {
            "retriever": "dense",
            "index": str(path),
            "encoder": spec.name,
            "faiss": dense.get("faiss"),
        }
    description["num_docs"] = len(store)
    return Retriever(searcher, store, description)
