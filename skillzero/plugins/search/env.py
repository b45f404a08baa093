"""The Search-QA text environment (Search-R1's protocol, as verl-agent runs it).

An episode is one question. The first observation is the question itself. Each step
the agent's action is a search (``<search>query</search>``: the observation is the top
``topk`` passages, ``<information>Doc 1(Title: "t") text ...</information>``) or an
answer (``<answer>text</answer>``: the episode ends). The reward is 1 when the answer is
an exact match of a gold answer after normalisation (lower case, no punctuation or
articles, single spaces) and 0 otherwise; ``info["won"]`` is that exact match, and the
answer's token F1 is reported too (``info["f1"]``, and the episode log). The base class
truncates the episode after ``max_steps`` turns (Search-R1's ``max_turns``, 4).

An invalid response (no block, both kinds, an empty query; see
:mod:`~skillzero.plugins.search.prompt`) costs a turn: the observation explains the
format and nothing is searched; the trainer subtracts ``invalid_action_penalty``.

Searches go to the retrieval server through the process's pooled client. A pool worker
shows the env class all of its envs' actions of a turn first (:meth:`prepare_steps`), so
their searches leave in one batched request. If the server stays unreachable after the
client's retries, the step raises: the pool ends that episode as truncated with the
error in its info (the trainer counts it in ``env_errors``), the episode log records
it, and training goes on.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from skillzero.contracts.env import Task, TextEnv
from skillzero.core.config import cfg_get
from skillzero.plugins.search.client import (
    Hit,
    RetrievalClient,
    RetrievalRequestError,
    RetrieverError,
    get_client,
)
from skillzero.plugins.search.prompt import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    SEARCH_CLOSE,
    SEARCH_OPEN,
    parse_response,
)
from skillzero.plugins.search.scoring import exact_match, f1_score

__all__ = ["SearchEnv", "format_information"]

MAX_QUERY_CHARS = 1000
"""Longer queries are cut (servers reject very long ones; no useful query is this long)."""
INVALID_OBSERVATION = (
    "Your last response had no valid action ({reason}). Write <search> query </search> "
    "to search, or <answer> text </answer> to answer."
)


def format_information(hits: Sequence[Hit], style: str = "searchr1") -> str:
    """The observation of a search: ``searchr1`` gives Search-R1's ``Doc i(Title: t)
    text`` lines, ``json`` verl-agent's ``{"result": "Doc i: contents\\n..."}``; both
    inside ``<information> ... </information>``."""
    if style == "json":
        text = "".join(f"Doc {i}: {hit['contents']}\n" for i, hit in enumerate(hits, start=1))
        return f"<information>{json.dumps({'result': text})}</information>"
    lines = []
    for i, hit in enumerate(hits, start=1):
        title, _, text = str(hit["contents"]).partition("\n")
        lines.append(f"Doc {i}(Title: {title}) {text}")
    return "<information>" + ("\n".join(lines) or "No passage found.") + "</information>"


def _split_action(action: str) -> tuple[str, str]:
    """(kind, content) of a canonical action: ``("search", q)``, ``("answer", a)``."""
    if action.startswith(SEARCH_OPEN):
        return "search", action[len(SEARCH_OPEN) : -len(SEARCH_CLOSE)]
    return "answer", action[len(ANSWER_OPEN) : -len(ANSWER_CLOSE)]


class SearchEnv(TextEnv):
    """Answers one question per episode with a retrieval server (see the module
    docstring).

    ``env_cfg`` (:class:`~skillzero.plugins.search.config.SearchConfig`): reads
    ``max_steps``, ``observation_format``, ``episode_log`` and ``retriever`` (``url``,
    ``topk``, ``request``, ``timeout``, ``retries``, ``backoff``, ``max_backoff``). A
    task's payload holds ``question``, ``answers`` and ``data_source``.
    """

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        super().__init__(max_steps=int(cfg_get(env_cfg, "max_steps", 4)))
        self.env_cfg = env_cfg
        self.retriever_cfg = cfg_get(env_cfg, "retriever", {}) or {}
        self.topk = int(cfg_get(self.retriever_cfg, "topk", 3))
        self.observation_format = str(cfg_get(env_cfg, "observation_format", "searchr1"))
        if self.observation_format not in ("searchr1", "json"):
            raise ValueError(
                f"search: observation_format must be 'searchr1' or 'json', got "
                f"{self.observation_format!r}"
            )
        log = cfg_get(env_cfg, "episode_log")
        self.episode_log = Path(str(log)) if log else None
        self._client: RetrievalClient | None = None
        self._prefetched: tuple[str, list[Hit] | Exception] | None = None
        self._question = ""
        self._answers: list[str] = []
        self._source = ""
        self._searches = 0
        self._invalid = 0
        self._logged = False

    # -- the retrieval server ------------------------------------------------------------
    @property
    def client(self) -> RetrievalClient:
        """The pooled client of the configured (or started) server."""
        if self._client is None:
            url = cfg_get(self.retriever_cfg, "url")
            if not url:
                from skillzero.plugins.search.manager import managed_url_for

                url = managed_url_for(self.env_cfg)
            if not url:
                raise RetrieverError(
                    "no retrieval server: env.retriever.url is null and this process did "
                    "not start one (the trainer and `skillzero eval` start one when they "
                    "list the tasks; otherwise run `skillzero search serve --index DIR`)"
                )
            r = self.retriever_cfg
            self._client = get_client(
                str(url),
                timeout=float(cfg_get(r, "timeout", 60.0)),
                retries=int(cfg_get(r, "retries", 10)),
                backoff=float(cfg_get(r, "backoff", 0.5)),
                max_backoff=float(cfg_get(r, "max_backoff", 8.0)),
                request=str(cfg_get(r, "request", "batch")),
            )
        return self._client

    @classmethod
    def prepare_steps(cls, steps: Sequence[tuple[TextEnv, str]]) -> None:
        """Send the searches of all these steps in one request per server; each env's
        step then uses its row (or re-raises the shared failure)."""
        groups: dict[tuple[int, int], tuple[RetrievalClient, list[tuple[SearchEnv, str]]]] = {}
        for env, action in steps:
            if not isinstance(env, SearchEnv) or env.task is None:
                continue
            env._prefetched = None
            parsed = parse_response(action)
            if not parsed.valid:
                continue
            kind, content = _split_action(parsed.action)
            if kind != "search":
                continue
            try:
                client = env.client
            except RetrieverError:
                continue  # the step reports it
            key = (id(client), env.topk)
            groups.setdefault(key, (client, []))[1].append((env, content[:MAX_QUERY_CHARS]))
        for (_, topk), (client, members) in groups.items():
            try:
                rows: list[list[Hit] | Exception] = list(
                    client.retrieve([query for _, query in members], topk)
                )
            except RetrievalRequestError:
                continue  # one query may be at fault: each env asks on its own
            except RetrieverError as exc:
                rows = [exc] * len(members)
            for (env, query), row in zip(members, rows, strict=True):
                env._prefetched = (query, row)

    def _search(self, query: str) -> list[Hit]:
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and prefetched[0] == query:
            if isinstance(prefetched[1], Exception):
                raise prefetched[1]
            return prefetched[1]
        return self.client.retrieve([query], self.topk)[0]

    # -- episodes ------------------------------------------------------------------------
    def _reset(self, task: Task, seed: int | None) -> tuple[str, dict[str, Any]]:
        payload = task.payload or {}
        question = payload.get("question")
        answers = payload.get("answers")
        if not question or not answers:
            raise ValueError(f"task {task.task_id!r} needs payload['question'] and ['answers']")
        self._question = str(question)
        self._answers = [str(a) for a in answers]
        self._source = str(payload.get("data_source", task.task_type))
        self._searches = 0
        self._invalid = 0
        self._logged = False
        self._prefetched = None
        return self._question, self._info()

    def _info(self, **extra: Any) -> dict[str, Any]:
        # em and f1 in every step's info: an episode cut at max_steps scores 0 on both
        return {
            "won": False,
            "admissible_actions": None,
            "data_source": self._source,
            "searches": self._searches,
            "em": 0.0,
            "f1": 0.0,
            **extra,
        }

    def _step(self, action: str) -> tuple[str, float, bool, dict[str, Any]]:
        last_turn = self.steps_taken + 1 >= self.max_steps
        parsed = parse_response(action)
        if not parsed.valid:
            self._prefetched = None
            self._invalid += 1
            if last_turn:
                self._log("max_turns")
            return INVALID_OBSERVATION.format(reason=parsed.reason), 0.0, False, self._info()
        kind, content = _split_action(parsed.action)
        if kind == "answer":
            self._prefetched = None
            won = exact_match(content, self._answers)
            f1 = f1_score(content, self._answers)
            self._log("answer", answer=content, em=won, f1=f1)
            info = self._info(won=won, em=float(won), f1=f1, answer=content)
            return f"Answer submitted: {content}", float(won), True, info
        query = content[:MAX_QUERY_CHARS]
        try:
            hits = self._search(query)
        except RetrievalRequestError as exc:
            # the server refused this query (not this run's fault): say so and go on
            self._searches += 1
            if last_turn:
                self._log("max_turns")
            observation = f"<information>The search failed: {exc}</information>"
            return observation, 0.0, False, self._info(search_error=str(exc))
        except RetrieverError as exc:
            print(
                f"search: task {self.task.task_id if self.task else '?'} ends truncated: {exc}",
                file=sys.stderr,
            )
            self._log("retriever_error", error=str(exc))
            raise
        self._searches += 1
        if last_turn:
            self._log("max_turns")
        return format_information(hits, self.observation_format), 0.0, False, self._info()

    def _log(self, ended: str, **fields: Any) -> None:
        """Append the finished episode to ``episode_log`` (once per episode)."""
        if self.episode_log is None or self._logged or self.task is None:
            return
        self._logged = True
        record = {
            "time": round(time.time(), 3),
            "task_id": self.task.task_id,
            "split": self.task.split,
            "data_source": self._source,
            "question": self._question,
            "golden_answers": self._answers,
            "answer": None,
            "em": 0.0,
            "f1": 0.0,
            "turns": self.steps_taken + 1,
            "searches": self._searches,
            "invalid": self._invalid,
            "ended": ended,
        }
        record.update({k: float(v) if isinstance(v, bool) else v for k, v in fields.items()})
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            self.episode_log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.episode_log, "a", encoding="utf-8") as handle:
                with contextlib.suppress(ImportError):
                    import fcntl

                    fcntl.flock(handle, fcntl.LOCK_EX)  # workers append to one file
                handle.write(line)
        except OSError as exc:
            print(
                f"search: cannot write the episode log {self.episode_log}: {exc}", file=sys.stderr
            )
            self.episode_log = None
