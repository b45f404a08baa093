"""The structured schema of the ``env=search`` config entry.

Imported at plugin discovery (it is the env's config schema), so it stays light: no
faiss, no torch, no FastAPI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skillzero.core.config import EnvConfig

__all__ = ["RetrieverConfig", "SearchConfig"]


@dataclass
class RetrieverConfig:
    """Where the env's searches go, and the server skillzero starts when none is given.

    ``url``: a running retrieval server (``http://host:port``; ``/retrieve`` is added);
    null: the trainer and ``skillzero eval`` start one on a free local port for
    ``index`` and stop it at exit. ``index``: an index folder written by ``skillzero
    search index`` (null: the generated world's BM25 index, when ``env.splits`` is null).
    ``topk``: passages per search. ``request``: ``batch`` (one request with all of a
    worker's queries of a turn, Search-R1's shape) or ``single`` (one request per query,
    sent concurrently, for servers that take only ``{"query": ...}``).
    ``timeout`` / ``retries`` / ``backoff`` / ``max_backoff``: per-request timeout in
    seconds, retries on 5xx, timeouts and refused connections, and the exponential
    back-off between them. ``startup_timeout``: seconds to wait for a started server.
    The rest configures the started server: ``host``, ``max_batch_size`` and
    ``batch_wait_ms`` (micro-batching), ``workers`` (batches searched side by side),
    ``device`` and ``threads`` (of the encoder and faiss, per worker).
    """

    url: str | None = None
    index: str | None = None
    topk: int = 3
    request: str = "batch"
    timeout: float = 60.0
    retries: int = 10
    backoff: float = 0.5
    max_backoff: float = 8.0
    startup_timeout: float = 600.0
    host: str = "127.0.0.1"
    max_batch_size: int = 256
    batch_wait_ms: float = 2.0
    workers: int = 1
    device: str = "cpu"
    threads: int = 1


@dataclass
class SearchConfig(EnvConfig):
    """Settings of the Search-QA env, on top of those every env has (:class:`EnvConfig`).

    Questions
        ``splits``: split name -> list of question files (Search-R1/verl parquet or
        jsonl, FlashRAG jsonl, Search-o1 json, R1-Searcher jsonl, ``{question,
        answers}``); an entry is a path or ``{path, data_source, data_sources, limit}``
        (``data_source`` overrides the file's, ``data_sources`` keeps only those).
        null: the generated world (splits ``train`` and ``test``). ``data_dir``: where
        relative paths start. ``max_per_source``: keep the first N questions of each
        data source (quick evaluations). ``interleave_sources``: order a split's
        questions round-robin over data sources, so any prefix covers every source.
        ``world_seed`` / ``world_dir``: the generated world (null dir: the user cache).
    Episodes
        ``max_steps`` (4, Search-R1's ``max_turns``): the episode ends on an answer or
        after that many turns. ``observation_format``: ``searchr1`` (``Doc 1(Title: t)
        text``) or ``json`` (verl-agent's ``{"result": "Doc 1: ..."}``).
        ``episode_log``: a JSONL file that gets one line per finished episode (question,
        answer, gold answers, EM, F1, searches); null: none.
    """

    name: str = "search"
    num_groups: int = 256
    group_size: int = 5
    max_steps: int = 4
    history_length: int = 4
    invalid_action_penalty: float = 0.01
    train_split: str = "train"
    val_split: str = "test"
    max_prompt_tokens: int = 4096
    splits: dict[str, Any] | None = None
    data_dir: str | None = None
    max_per_source: int | None = None
    interleave_sources: bool = True
    world_seed: int = 1
    world_dir: str | None = None
    observation_format: str = "searchr1"
    episode_log: str | None = None
    retriever: RetrieverConfig = field(default_factory=RetrieverConfig)
