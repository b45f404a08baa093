"""The env's HTTP client of a retrieval server.

One pooled ``requests`` session per process and server (kept-alive connections), all
of one call's queries in one batched ``POST /retrieve`` (Search-R1's shape) or, for
servers that take one query per request (``request="single"``), in concurrent
requests. Failures that may pass (5xx answers, timeouts, refused connections) are
retried with exponential back-off and jitter; a rejected request (4xx) is not retried.
When the retries run out the error names the URL and says how to start a server.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = [
    "Hit",
    "RetrievalClient",
    "RetrievalRequestError",
    "RetrieverError",
    "RetrieverUnavailableError",
    "get_client",
]

Hit = dict[str, Any]
"""One retrieved passage: ``{"id", "contents", "score"}`` (score None when the server
does not return scores)."""


class RetrieverError(RuntimeError):
    """The retrieval server could not answer a search."""


class RetrieverUnavailableError(RetrieverError):
    """The server did not answer (down, overloaded, failing) after every retry."""


class RetrievalRequestError(RetrieverError):
    """The server rejected the request (4xx); retrying would not help."""


def base_url(url: str) -> str:
    """``http://host:port`` of a server URL given with or without ``/retrieve``."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url.removesuffix("/retrieve")


class RetrievalClient:
    """Searches a retrieval server (see the module docstring).

    ``timeout``: seconds per request; ``retries``: retries after the first attempt;
    ``backoff`` / ``max_backoff``: the first and the longest wait between attempts
    (doubling, with up to 50% jitter); ``request``: ``batch`` or ``single``;
    ``pool_size``: kept-alive connections (and concurrent single requests).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        retries: int = 10,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        request: str = "batch",
        pool_size: int = 32,
    ) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        if request not in ("batch", "single"):
            raise ValueError(f"request must be 'batch' or 'single', got {request!r}")
        self.url = base_url(url)
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.request = request
        self.pool_size = max(1, int(pool_size))
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.requests_sent = 0

    # -- searching -----------------------------------------------------------------------
    def retrieve(self, queries: Sequence[str], topk: int = 3) -> list[list[Hit]]:
        """The top ``topk`` passages of every query, one list per query."""
        queries = [str(q) for q in queries]
        if not queries:
            return []
        if self.request == "batch":
            body = {"queries": queries, "topk": int(topk), "return_scores": True}
            result = self._post(body)
            if len(result) != len(queries):
                raise RetrieverError(
                    f"{self.url}/retrieve answered {len(result)} result lists for "
                    f"{len(queries)} queries"
                )
            return [_hits(row, self.url) for row in result]
        if len(queries) == 1:
            return [self._single(queries[0], topk)]
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.pool_size, thread_name_prefix="search")
        return list(self._executor.map(lambda q: self._single(q, topk), queries))

    def _single(self, query: str, topk: int) -> list[Hit]:
        result = self._post({"query": query, "topk": int(topk), "return_scores": True})
        if not result:
            raise RetrieverError(f"{self.url}/retrieve answered no result list")
        return _hits(result[0], self.url)

    def _post(self, body: Mapping[str, Any]) -> list[Any]:
        import requests

        endpoint = f"{self.url}/retrieve"
        last = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                wait = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                time.sleep(wait * (1.0 + 0.5 * random.random()))
            try:
                self.requests_sent += 1
                response = self.session.post(endpoint, json=body, timeout=self.timeout)
            except requests.Timeout:
                last = f"no answer within {self.timeout:g} s"
                continue
            except requests.ConnectionError as exc:
                last = f"cannot connect ({_short(exc)})"
                continue
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}: {_detail(response)}"
                continue
            if response.status_code >= 400:
                raise RetrievalRequestError(
                    f"{endpoint} rejected the request (HTTP {response.status_code}): "
                    f"{_detail(response)}"
                )
            try:
                data = response.json()
            except ValueError:
                last = "the answer is not JSON"
                continue
            result = data.get("result") if isinstance(data, dict) else None
            if not isinstance(result, list):
                raise RetrieverError(f"{endpoint} answered without a 'result' list: {data!r:.200}")
            return result
        raise RetrieverUnavailableError(
            f"retrieval server {self.url} did not answer after {self.retries + 1} attempt(s) "
            f"(last: {last}). Start one with `skillzero search serve --index DIR`, or leave "
            "env.retriever.url null so that skillzero starts one"
        )

    # -- health --------------------------------------------------------------------------
    def health(self, timeout: float = 5.0) -> dict[str, Any]:
        """The server's ``/health`` answer (raises ``requests`` errors as they come)."""
        response = self.session.get(f"{self.url}/health", timeout=timeout)
        response.raise_for_status()
        return dict(response.json())

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        self.session.close()


def _hits(row: Any, url: str) -> list[Hit]:
    if not isinstance(row, list):
        raise RetrieverError(f"{url}/retrieve answered a result that is not a list: {row!r:.200}")
    hits = []
    for item in row:
        score = None
        if isinstance(item, Mapping) and isinstance(item.get("document"), Mapping):
            score = item.get("score")
            item = item["document"]
        if not isinstance(item, Mapping):
            raise RetrieverError(f"{url}/retrieve answered a passage that is not an object")
        contents = item.get("contents")
        if not isinstance(contents, str):
            title, text = item.get("title"), item.get("text")
            contents = f'"{title}"\n{text}' if title else str(text or "")
        hits.append({"id": str(item.get("id", "")), "contents": contents, "score": score})
    return hits


def _detail(response: Any) -> str:
    try:
        data = response.json()
        if isinstance(data, dict):
            message = data.get("error") or data.get("detail") or data
            return str(message)[:300]
    except ValueError:
        pass
    return response.text[:300] or response.reason or ""


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 160 else text[:157] + "..."


_CLIENTS: dict[tuple[Any, ...], RetrievalClient] = {}
_CLIENTS_LOCK = threading.Lock()


def get_client(url: str, **options: Any) -> RetrievalClient:
    """The process-wide client of ``url`` with ``options`` (created on first use)."""
    key = (base_url(url), *sorted(options.items()))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = RetrievalClient(url, **options)
        return client
