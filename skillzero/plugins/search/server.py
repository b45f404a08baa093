"""The retrieval server: FastAPI + uvicorn, with dynamic micro-batching.

API (compatible with the clients in use):

``POST /retrieve``
    Search-R1's batched shape ``{"queries": [str, ...], "topk": k, "return_scores":
    bool}`` or verl-agent's single ``{"query": str, "topk": k, "return_scores": bool}``.
    The answer is ``{"result": [...]}`` with one list per query: ``{"document": {"id",
    "contents"}, "score": float}`` items with ``return_scores``, else the documents
    themselves. ``topk`` defaults to the server's ``--topk``.
``GET /health``
    ``{"status": "ok", "retriever", "num_docs", ...}`` and batching statistics.

Malformed requests get a 4xx status and ``{"error": message}``: 400 for a body that is
not JSON, 413 for a body over the size limit, 422 for a JSON body of the wrong shape.

Batching: requests are not searched one at a time. Every request's queries go into a
queue; one loop takes everything queued (up to ``max_batch_size`` queries, waiting at
most ``batch_wait_ms`` for company when the queue is empty and the previous batch held
more than one request, so that a lone client never waits), encodes and searches the
whole batch in one call on a worker thread, and hands each request its rows. While a
batch is searched, the next one gathers, so under load the batch grows with the number
of concurrent clients and the cost per query falls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

if TYPE_CHECKING:
    from skillzero.plugins.search.index import Retriever

__all__ = ["MicroBatcher", "RequestError", "create_app", "main", "parse_request", "run_server"]

MAX_BODY_BYTES = 8 << 20
MAX_QUERIES = 4096
MAX_QUERY_CHARS = 4096
MAX_TOPK = 100
MAX_PENDING_QUERIES = 1 << 16


class RequestError(ValueError):
    """A request the server rejects; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SearchRequest:
    """A validated ``/retrieve`` request."""

    queries: list[str]
    topk: int
    return_scores: bool


def parse_request(body: bytes, default_topk: int = 3) -> SearchRequest:
    """Validate a ``/retrieve`` body; raises :class:`RequestError` (4xx) saying what is
    wrong with it."""
    if len(body) > MAX_BODY_BYTES:
        raise RequestError(413, f"request body over {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RequestError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RequestError(422, f"the body must be a JSON object, not {type(data).__name__}")
    if "queries" in data and "query" in data:
        raise RequestError(422, "give either 'queries' (a list) or 'query' (a string), not both")
    if "queries" in data:
        queries = data["queries"]
        if not isinstance(queries, list):
            raise RequestError(422, "'queries' must be a list of strings")
        if not queries:
            raise RequestError(422, "'queries' is empty")
        if len(queries) > MAX_QUERIES:
            raise RequestError(422, f"at most {MAX_QUERIES} queries per request")
    elif "query" in data:
        queries = [data["query"]]
    else:
        raise RequestError(422, "the body needs 'queries' (a list of strings) or 'query'")
    for position, query in enumerate(queries):
        where = "'query'" if "query" in data else f"query {position}"
        if not isinstance(query, str):
            raise RequestError(422, f"{where} is not a string but {type(query).__name__}")
        if not query.strip():
            raise RequestError(422, f"{where} is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise RequestError(422, f"{where} is longer than {MAX_QUERY_CHARS} characters")
        try:
            query.encode("utf-8")
        except UnicodeEncodeError:
            raise RequestError(422, f"{where} is not valid Unicode text") from None
    topk = data.get("topk", default_topk)
    if topk is None:
        topk = default_topk
    if not isinstance(topk, int) or isinstance(topk, bool) or not 1 <= topk <= MAX_TOPK:
        raise RequestError(422, f"'topk' must be an integer from 1 to {MAX_TOPK}, got {topk!r}")
    return_scores = data.get("return_scores", False)
    if not isinstance(return_scores, bool):
        raise RequestError(422, f"'return_scores' must be true or false, got {return_scores!r}")
    return SearchRequest(list(queries), topk, return_scores)


@dataclass
class _Pending:
    queries: list[str]
    topk: int
    future: asyncio.Future[Any]


@dataclass
class BatchStats:
    """What the batcher has done so far."""

    requests: int = 0
    queries: int = 0
    batches: int = 0
    largest_batch: int = 0
    search_seconds: float = 0.0
    failed_batches: int = 0
    duplicate_queries: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "queries": self.queries,
            "batches": self.batches,
            "largest_batch": self.largest_batch,
            "mean_batch": self.queries / self.batches if self.batches else 0.0,
            "search_seconds": round(self.search_seconds, 3),
            "failed_batches": self.failed_batches,
            "duplicate_queries": self.duplicate_queries,
        }


@dataclass
class MicroBatcher:
    """Gathers concurrent requests into batches searched on ``workers`` threads (see the
    module docstring).

    A new batch is gathered only when a worker is free, so while every worker is busy
    the waiting requests pile up into the next, larger batch. ``workers`` > 1 runs
    batches side by side (torch and faiss release the GIL): on a CPU host, several
    single-threaded batches use the cores better than one batch on several threads.
    """

    retriever: Retriever
    max_batch_size: int = 256
    max_wait_s: float = 0.002
    workers: int = 1
    stats: BatchStats = field(default_factory=BatchStats)

    def __post_init__(self) -> None:
        self.workers = max(1, int(self.workers))
        self._queue: asyncio.Queue[_Pending] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._carry: _Pending | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._pending_queries = 0
        # whether the last batch held several requests: only then is waiting for
        # company likely to pay (a lone client would wait on every request)
        self._company = False
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="search")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._slots = asyncio.Semaphore(self.workers)
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def search(
        self, queries: list[str], topk: int
    ) -> list[list[tuple[dict[str, str], float]]]:
        """The top ``topk`` passages of each query (searched together with whatever
        other requests are waiting)."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        if self._pending_queries + len(queries) > MAX_PENDING_QUERIES:
            raise RequestError(503, "the server is overloaded; retry later")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending_queries += len(queries)
        self.stats.requests += 1
        await self._queue.put(_Pending(queries, topk, future))
        try:
            return await future
        finally:
            self._pending_queries -= len(queries)

    def _take(self) -> _Pending | None:
        assert self._queue is not None
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    async def _loop(self) -> None:
        assert self._queue is not None
        assert self._slots is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()  # gather only when a worker can take the batch
            first = self._take() or await self._queue.get()
            if self._queue.empty() and self.max_wait_s > 0 and self._company:
                await asyncio.sleep(self.max_wait_s)  # let concurrent requests join
            batch, size = [first], len(first.queries)
            while size < self.max_batch_size:
                item = self._take()
                if item is None:
                    break
                if size + len(item.queries) > self.max_batch_size:
                    self._carry = item
                    break
                batch.append(item)
                size += len(item.queries)
            self._company = len(batch) > 1
            task = asyncio.create_task(self._run_and_release(loop, batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run_and_release(
        self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]
    ) -> None:
        assert self._slots is not None
        try:
            await self._run(loop, batch)
        except Exception as exc:  # never lose a waiter: every request gets an answer
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
        finally:
            self._slots.release()

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.future.done()]  # a client may have gone away
        if not live:
            return
        queries = [q for p in live for q in p.queries]
        # a query asked twice in a batch (the members of a training group often search
        # the same words) is searched once
        unique = list(dict.fromkeys(queries))
        topk = max(p.topk for p in live)
        begin = time.perf_counter()
        try:
            found = await loop.run_in_executor(self._executor, self.retriever.search, unique, topk)
        except Exception as exc:
            self.stats.failed_batches += 1
            if len(live) > 1:
                # one bad request must not fail the others: search each on its own
                for pending in live:
                    await self._run(loop, [pending])
                return
            if not live[0].future.done():
                live[0].future.set_exception(exc)
            return
        self.stats.search_seconds += time.perf_counter() - begin
        self.stats.batches += 1
        self.stats.queries += len(queries)
        self.stats.duplicate_queries += len(queries) - len(unique)
        self.stats.largest_batch = max(self.stats.largest_batch, len(queries))
        by_query = dict(zip(unique, found, strict=True))
        results = [by_query[q] for q in queries]
        position = 0
        for pending in live:
            rows = results[position : position + len(pending.queries)]
            position += len(pending.queries)
            if not pending.future.done():
                pending.future.set_result([row[: pending.topk] for row in rows])


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(
    retriever: Retriever,
    *,
    max_batch_size: int = 256,
    batch_wait_ms: float = 2.0,
    default_topk: int = 3,
    workers: int = 1,
) -> Any:
    """The FastAPI application serving ``retriever`` (see the module docstring)."""
    batcher = MicroBatcher(
        retriever, int(max_batch_size), float(batch_wait_ms) / 1000.0, workers=int(workers)
    )
    started = time.time()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="skillzero retrieval server", lifespan=lifespan)
    app.state.batcher = batcher

    @app.post("/retrieve")
    async def retrieve(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            parsed = parse_request(await request.body(), default_topk)
            rows = await batcher.search(parsed.queries, parsed.topk)
        except RequestError as exc:
            return _error(exc.status, str(exc))
        except Exception as exc:  # a fault of the server, not of the request
            return _error(500, f"search failed: {type(exc).__name__}: {exc}")
        if parsed.return_scores:
            result = [[{"document": doc, "score": score} for doc, score in row] for row in rows]
        else:
            result = [[doc for doc, _ in row] for row in rows]
        return JSONResponse({"result": result})

    @app.get("/health")
    async def health() -> Any:
        return {
            "status": "ok",
            **retriever.description,
            "uptime_seconds": round(time.time() - started, 1),
            "max_batch_size": batcher.max_batch_size,
            "workers": batcher.workers,
            "batching": batcher.stats.as_dict(),
        }

    return app


def _watch_parent(parent_pid: int, server: Any) -> None:
    """Stop the server when the process that started it is gone (so a killed trainer
    leaves no server behind)."""
    while not server.should_exit:
        if os.getppid() != parent_pid:
            server.should_exit = True
            return
        time.sleep(1.0)


def run_server(
    retriever: Retriever,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    sock: socket.socket | None = None,
    parent_pid: int | None = None,
    max_batch_size: int = 256,
    batch_wait_ms: float = 2.0,
    default_topk: int = 3,
    workers: int = 1,
) -> None:
    """Serve ``retriever`` until interrupted (on ``sock`` when given, else on
    ``host:port``)."""
    import uvicorn

    app = create_app(
        retriever,
        max_batch_size=max_batch_size,
        batch_wait_ms=batch_wait_ms,
        default_topk=default_topk,
        workers=workers,
    )
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, timeout_keep_alive=60
    )
    server = uvicorn.Server(config)
    if parent_pid:
        threading.Thread(target=_watch_parent, args=(parent_pid, server), daemon=True).start()
    where = sock.getsockname() if sock is not None else (host, port)
    print(
        f"search server: {retriever.description.get('retriever')} over "
        f"{retriever.num_docs} passages on http://{where[0]}:{where[1]}",
        file=sys.stderr,
        flush=True,
    )
    server.run(sockets=[sock] if sock is not None else None)


# ----------------------------------------------------------------------------------------
# command line (`skillzero search serve` and the managed server's process)
# ----------------------------------------------------------------------------------------


def serve_from_args(args: argparse.Namespace) -> int:
    """Open the index named by ``args`` and serve it (blocks)."""
    from skillzero.plugins.search.index import open_retriever

    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        import torch

        torch.set_num_threads(int(args.threads))
        with contextlib.suppress(ImportError):
            import faiss

            faiss.omp_set_num_threads(int(args.threads))
    if args.host not in ("127.0.0.1", "localhost", "::1") and args.fd is None:
        print(
            f"search server: warning: binding {args.host} exposes the server (which has no "
            "authentication) beyond this machine",
            file=sys.stderr,
        )
    retriever = open_retriever(
        args.index,
        corpus=args.corpus,
        encoder=args.encoder,
        device=args.device,
        nprobe=args.nprobe,
        ef_search=args.ef_search,
        mmap=args.mmap,
    )
    # the first query loads the encoder and touches the index: pay it before serving
    retriever.search(["warm up"], 1)
    sock = socket.socket(fileno=args.fd) if args.fd is not None else None
    run_server(
        retriever,
        host=args.host,
        port=args.port,
        sock=sock,
        parent_pid=args.parent_pid,
        max_batch_size=args.max_batch_size,
        batch_wait_ms=args.batch_wait_ms,
        default_topk=args.topk,
        workers=args.workers,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m skillzero.plugins.search.server --index DIR ...``."""
    from skillzero.plugins.search.cli import add_serve_arguments

    parser = argparse.ArgumentParser(prog="skillzero-search-server")
    add_serve_arguments(parser)
    return serve_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
