"""Retrieval server throughput: skillzero's micro-batching server against a reference
server written the way Search-R1 and verl-agent serve.

    python benchmarks/retrieval.py [--retrievers dense,bm25] [--clients 1,8,32]
                                   [--seconds 10] [--threads N] [--corpus FILE]

Both servers load the same index (same corpus, same encoder, same faiss or bm25s index)
in their own process on this machine and are driven by the same load generator.

``reference``
    FastAPI with a synchronous ``/retrieve`` handler, as in Search-R1's
    ``retrieval_server.py``: FastAPI runs each request on its thread pool, where the
    request's own queries are encoded and searched; requests are never combined. The
    clients send one query per request, as verl-agent's search tool does.
``skillzero``
    ``python -m skillzero.plugins.search.server``: concurrent requests are encoded and
    searched together (dynamic micro-batching, :mod:`skillzero.plugins.search.server`).

The load generator is one asyncio process with C concurrent clients, each with its own
kept-alive HTTP/1.1 connection, sending ``{"query": q, "topk": 3, "return_scores":
true}`` back to back for ``--seconds`` (after a warm-up), with queries drawn from the
corpus's questions. Reported per retriever and C: requests per second, the median and
99th-percentile latency, errors, and the throughput ratio skillzero / reference.

The default corpus is the generated QA world (536 passages; its 2,700 questions are the
queries). ``--corpus`` takes any wiki-18 JSONL (e.g. the gold paragraphs of a QA set,
``skillzero search gold-corpus``); the queries are then its passages' titles.
"""

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------------------
# the reference server (run in its own process: --serve-reference)
# ----------------------------------------------------------------------------------------


def serve_reference(index: str, port: int, threads: int) -> None:
    """Search-R1's serving pattern over our retriever: one synchronous handler per
    request, no batching across requests."""
    import torch
    import uvicorn
    from fastapi import FastAPI
    from pydantic import BaseModel

    from skillzero.plugins.search.index import open_retriever

    torch.set_num_threads(threads)
    retriever = open_retriever(index)
    retriever.search(["warm up"], 1)

    class QueryRequest(BaseModel):
        queries: list[str] | None = None
        query: str | None = None
        topk: int = 3
        return_scores: bool = False

    app = FastAPI()

    @app.post("/retrieve")
    def retrieve(request: QueryRequest) -> dict[str, Any]:
        queries = request.queries if request.queries is not None else [request.query or ""]
        rows = retriever.search(queries, request.topk)
        if request.return_scores:
            return {"result": [[{"document": d, "score": s} for d, s in row] for row in rows]}
        return {"result": [[d for d, _ in row] for row in rows]}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ----------------------------------------------------------------------------------------
# load generation
# ----------------------------------------------------------------------------------------


async def _client(
    port: int, queries: list[str], seed: int, warmup_end: float, stop: float, out: dict[str, Any]
) -> None:
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            now = time.perf_counter()
            if now >= stop:
                return
            body = json.dumps({"query": rng.choice(queries), "topk": 3, "return_scores": True})
            data = body.encode()
            writer.write(
                b"POST /retrieve HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(data)}\r\n\r\n".encode()
                + data
            )
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            payload = await reader.readexactly(length)
            done = time.perf_counter()
            if now < warmup_end:
                continue
            if b" 200 " not in status_line or b'"result"' not in payload:
                out["errors"] += 1
            else:
                out["latencies"].append(done - now)
    finally:
        writer.close()


async def _load(
    port: int, queries: list[str], clients: int, seconds: float, warmup: float
) -> dict[str, Any]:
    out: dict[str, Any] = {"latencies": [], "errors": 0}
    begin = time.perf_counter()
    warmup_end = begin + warmup
    stop = warmup_end + seconds
    await asyncio.gather(
        *(_client(port, queries, i, warmup_end, stop, out) for i in range(clients))
    )
    latencies = sorted(out["latencies"])
    if not latencies:
        return {"qps": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan"), "errors": out["errors"]}
    return {
        "qps": len(latencies) / seconds,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "errors": out["errors"],
        "requests": len(latencies),
    }


# ----------------------------------------------------------------------------------------
# orchestration
# ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 600.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not start in time")


def _start(
    design: str, index: Path, threads: int, max_batch: int, workers: int, cpus: str | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if design == "reference":
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-reference",
            str(index),
            "--port",
            str(port),
            "--threads",
            str(threads),
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "skillzero.plugins.search.server",
            "--index",
            str(index),
            "--port",
            str(port),
            "--threads",
            str(threads),
            "--max-batch-size",
            str(max_batch),
            "--workers",
            str(workers),
        ]
    if cpus:
        command = ["taskset", "-c", cpus, *command]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _wait_ready(port, process)
    return process, port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _count_cpus(spec: str) -> int:
    count = 0
    for part in spec.split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


def _queries(corpus: Path, world: Path | None) -> list[str]:
    if world is not None:
        found = []
        for name in ("train.jsonl", "test.jsonl"):
            found += [
                json.loads(line)["question"] for line in (world / name).read_text().splitlines()
            ]
        return found
    titles = []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if line.strip():
            titles.append(json.loads(line)["contents"].split("\n", 1)[0].strip('"'))
    return titles


def _table(rows: list[dict[str, Any]], retrievers: list[str], clients: list[int]) -> str:
    """The Markdown table of the results, with the throughput ratio."""
    lines = [
        "| retriever | clients | reference req/s | skillzero req/s | ratio "
        "| reference p50 / p99 ms | skillzero p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for retriever in retrievers:
        for count in clients:
            ref, ours = (
                next(
                    r
                    for r in rows
                    if (r["retriever"], r["design"], r["clients"]) == (retriever, design, count)
                )
                for design in ("reference", "skillzero")
            )
            ratio = ours["qps"] / ref["qps"] if ref["qps"] else float("inf")
            lines.append(
                f"| {retriever} | {count} | {ref['qps']:.1f} | {ours['qps']:.1f} | {ratio:.2f}x "
                f"| {ref['p50_ms']:.1f} / {ref['p99_ms']:.1f} "
                f"| {ours['p50_ms']:.1f} / {ours['p99_ms']:.1f} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--retrievers", default="dense,bm25")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch/faiss threads per search (both servers; 1 suits a CPU host)",
    )
    parser.add_argument("--max-batch-size", type=int, default=256)
    parser.add_argument(
        "--workers",
        type=int,
        help="skillzero: batches searched side by side (default: CPUs / threads)",
    )
    parser.add_argument(
        "--cpus",
        help="pin both servers to these CPUs (taskset list, e.g. 0 or 0-3): the same compute "
        "budget for both, whatever else runs on the machine",
    )
    parser.add_argument("--corpus", help="a wiki-18 JSONL (default: the generated QA world)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--serve-reference", metavar="INDEX", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_reference:
        serve_reference(args.serve_reference, args.port, args.threads)
        return 0

    from skillzero.plugins.search.generate import generate_world
    from skillzero.plugins.search.index import build_index

    work = Path(tempfile.mkdtemp(prefix="skillzero-retrieval-bench-"))
    world = None
    if args.corpus:
        corpus = Path(args.corpus)
    else:
        world = work / "world"
        generate_world(world, 1)
        corpus = world / "corpus.jsonl"
    queries = _queries(corpus, world)
    clients = [int(c) for c in args.clients.split(",")]
    budget = len(os.sched_getaffinity(0)) if not args.cpus else _count_cpus(args.cpus)
    workers = args.workers or max(1, budget // args.threads)
    rows = []
    print(
        f"corpus: {corpus} ({sum(1 for _ in corpus.open())} passages), {len(queries)} queries, "
        f"{args.seconds:g} s per run after {args.warmup:g} s warm-up, {args.threads} thread(s) "
        f"per search, skillzero with {workers} batch worker(s), {os.cpu_count()} CPU(s)"
        + (f", servers pinned to CPU(s) {args.cpus}" if args.cpus else ""),
        flush=True,
    )
    for retriever in args.retrievers.split(","):
        index = build_index(
            corpus, work / f"index-{retriever}", retriever=retriever, progress=False
        )
        for design in ("reference", "skillzero"):
            process, port = _start(
                design, index, args.threads, args.max_batch_size, workers, args.cpus
            )
            try:
                for count in clients:
                    result = asyncio.run(_load(port, queries, count, args.seconds, args.warmup))
                    rows.append(
                        {"retriever": retriever, "design": design, "clients": count, **result}
                    )
                    print(
                        f"  {retriever:5s} {design:9s} {count:3d} clients: "
                        f"{result['qps']:8.1f} req/s, p50 {result['p50_ms']:7.1f} ms, "
                        f"p99 {result['p99_ms']:7.1f} ms, errors {result['errors']}",
                        flush=True,
                    )
            finally:
                _stop(process)
    print()
    print(_table(rows, args.retrievers.split(","), clients))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
