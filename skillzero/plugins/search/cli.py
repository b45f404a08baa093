"""``skillzero search ...``: serve, index, generate, gold-corpus, query.

Only argparse is imported at plugin discovery; each handler imports what it needs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["setup_command"]


def _serve(args: argparse.Namespace) -> int:
    from skillzero.plugins.search.server import serve_from_args

    return serve_from_args(args)


def _index(args: argparse.Namespace) -> int:
    from skillzero.plugins.search.encoder import resolve_encoder
    from skillzero.plugins.search.index import adopt_faiss_index, build_index, read_manifest

    progress = not args.quiet
    if args.from_faiss:
        if not args.encoder:
            print(
                "error: --from-faiss needs the --encoder the index was built with "
                "(intfloat/e5-base-v2 for Search-R1's e5_Flat.index)",
                file=sys.stderr,
            )
            return 2
        spec = resolve_encoder(args.encoder, pooling=args.pooling, query_prefix=args.query_prefix)
        out = adopt_faiss_index(
            args.from_faiss,
            args.corpus,
            args.out,
            encoder=spec,
            overwrite=args.overwrite,
            progress=progress,
        )
    else:
        spec = None
        if args.retriever == "dense":
            spec = resolve_encoder(
                args.encoder,
                pooling=args.pooling,
                query_prefix=args.query_prefix,
                passage_prefix=args.passage_prefix,
                max_length=args.max_length,
            )
        out = build_index(
            args.corpus,
            args.out,
            retriever=args.retriever,
            encoder=spec,
            faiss_kind=args.faiss,
            nlist=args.nlist,
            hnsw_m=args.hnsw_m,
            device=args.device,
            batch_size=args.batch_size,
            overwrite=args.overwrite,
            progress=progress,
        )
    manifest = read_manifest(out)
    print(
        f"{manifest['retriever']} index of {manifest['num_docs']} passages in {out}"
        + (f" ({manifest['build_seconds']} s)" if "build_seconds" in manifest else "")
    )
    return 0


def _generate(args: argparse.Namespace) -> int:
    from skillzero.plugins.search.generate import WorldSizes, ensure_world_index, generate_world

    out = Path(args.out)
    sizes = WorldSizes.small() if args.small else WorldSizes()
    manifest = generate_world(out, args.seed, sizes)
    counts = manifest["questions"]
    print(
        f"world of {manifest['passages']} passages, {sum(counts['train'].values())} train "
        f"and {sum(counts['test'].values())} test questions in {out} (seed {args.seed})"
    )
    if args.index != "none":
        index = ensure_world_index(out, args.index)
        print(f"{args.index} index in {index}")
    return 0


def _gold_corpus(args: argparse.Namespace) -> int:
    from skillzero.plugins.search.datasets import gold_corpus

    docs = gold_corpus(args.files)
    if not docs:
        print("error: none of the files has golden_context paragraphs", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as handle:
        for doc in docs:
            handle.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"{len(docs)} passages in {out}")
    return 0


def _query(args: argparse.Namespace) -> int:
    from skillzero.plugins.search.client import RetrievalClient
    from skillzero.plugins.search.env import format_information

    client = RetrievalClient(args.url, retries=args.retries)
    for query, hits in zip(args.queries, client.retrieve(args.queries, args.topk), strict=True):
        print(f"<search>{query}</search>")
        print(format_information(hits))
    return 0


def _wrap(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        from skillzero.plugins.search.client import RetrieverError
        from skillzero.plugins.search.datasets import DatasetError
        from skillzero.plugins.search.index import SearchIndexError

        try:
            return int(handler(args) or 0)
        except (SearchIndexError, DatasetError, RetrieverError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``skillzero search serve``."""
    parser.add_argument("--index", required=True, help="an index folder, or a bare faiss file")
    parser.add_argument("--corpus", help="the corpus JSONL (default: the index's own)")
    parser.add_argument("--encoder", help="the query encoder (default: the index's own)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--topk", type=int, default=3, help="passages per query by default")
    parser.add_argument("--device", default="cpu", help="query encoder device (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=0, help="torch/faiss threads (0: all)")
    parser.add_argument("--max-batch-size", type=int, default=256)
    parser.add_argument("--batch-wait-ms", type=float, default=2.0)
    parser.add_argument(
        "--workers", type=int, default=1, help="batches searched side by side (CPU: one per core)"
    )
    parser.add_argument("--nprobe", type=int, help="IVF lists probed per query")
    parser.add_argument("--ef-search", type=int, help="HNSW search breadth")
    parser.add_argument("--mmap", action="store_true", help="memory-map the faiss index")
    parser.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)


def setup_command(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``skillzero search``."""
    sub = parser.add_subparsers(dest="search_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=lambda _args: (parser.print_help(), 2)[1])

    p = sub.add_parser(
        "serve", help="serve an index over HTTP (Search-R1 / verl-agent /retrieve API)"
    )
    add_serve_arguments(p)
    p.set_defaults(handler=_wrap(_serve))

    p = sub.add_parser("index", help="build a BM25 or dense index of a wiki-18 style corpus")
    p.add_argument("--corpus", required=True, help="JSONL of {id, contents} (or {id, title, text})")
    p.add_argument("--out", required=True, help="the index folder to write")
    p.add_argument("--retriever", choices=("bm25", "dense"), default="bm25")
    p.add_argument(
        "--encoder", help="dense: a Hugging Face encoder name or folder (default all-MiniLM-L6-v2)"
    )
    p.add_argument("--pooling", choices=("mean", "cls", "pooler"), help="override the family's")
    p.add_argument("--query-prefix", help="override the family's (e5: 'query: ')")
    p.add_argument("--passage-prefix", help="override the family's (e5: 'passage: ')")
    p.add_argument("--max-length", type=int, help="encoder tokens per text (default 256)")
    p.add_argument("--faiss", choices=("flat", "ivf", "hnsw"), default="flat")
    p.add_argument("--nlist", type=int, help="IVF lists (default 4 sqrt(N))")
    p.add_argument("--hnsw-m", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--from-faiss",
        metavar="FILE",
        help="adopt an existing faiss index of --corpus (e.g. Search-R1's e5_Flat.index) "
        "without re-encoding",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing index")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_wrap(_index))

    p = sub.add_parser("generate", help="write the fictional QA world (corpus + questions)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--small", action="store_true", help="a world of ~70 passages (tests)")
    p.add_argument(
        "--index", choices=("bm25", "dense", "none"), default="bm25", help="also index it"
    )
    p.set_defaults(handler=_wrap(_generate))

    p = sub.add_parser(
        "gold-corpus", help="a wiki-18 style corpus of the golden_context paragraphs of QA files"
    )
    p.add_argument("files", nargs="+", help="question files with golden_context")
    p.add_argument("--out", required=True)
    p.set_defaults(handler=_wrap(_gold_corpus))

    p = sub.add_parser("query", help="search a running server and print the observation")
    p.add_argument("queries", nargs="+")
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--topk", type=int, default=3)
    p.add_argument("--retries", type=int, default=2)
    p.set_defaults(handler=_wrap(_query))
