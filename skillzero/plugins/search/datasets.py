"""Question sets: one loader for the formats QA users already have, and the env's tasks.

Formats (detected per record, so mixed files work):

- Search-R1 / verl parquet or jsonl: ``question`` or ``prompt`` (the question after the
  last ``Question:`` of the user message), ``golden_answers`` or
  ``reward_model.ground_truth.target``, ``data_source``; verl-agent's
  ``env_kwargs = {question, ground_truth, data_source}``; the verl files of Agentic-RAG
  (``extra_info.question`` / ``extra_info.answer``).
- FlashRAG jsonl: ``{id, question, golden_answers}``.
- Search-o1 json (a list): ``{id, Question, answer}``.
- R1-Searcher jsonl: ``{idx, question, answer}``.
- plain ``{question, answers}`` (json list or jsonl).

Every question keeps a canonical ``data_source`` (``nq``, ``triviaqa``, ``popqa``,
``hotpotqa``, ``2wikimultihopqa``, ``musique``, ``bamboogle``, ...): the record's own
(``google-research-datasets/nq_open`` becomes ``nq``), else the one the config gives,
else one read from the file name (``hotpotqa_500.jsonl`` is ``hotpotqa``).

A split is a list of files (``env.splits``); with no splits configured the env plays the
generated world (:mod:`skillzero.plugins.search.generate`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skillzero.contracts.env import Task
from skillzero.core.config import cfg_get

__all__ = [
    "KNOWN_SOURCES",
    "SYNTHETIC_SOURCES",
    "TASK_TYPES",
    "DatasetError",
    "Question",
    "SearchExpert",
    "canonical_source",
    "gold_corpus",
    "list_tasks",
    "load_questions",
    "select_split",
]

KNOWN_SOURCES: tuple[str, ...] = (
    "nq",
    "triviaqa",
    "popqa",
    "hotpotqa",
    "2wikimultihopqa",
    "musique",
    "bamboogle",
)
"""The seven QA sets Search-R1, verl-agent, SKILL0 and SDAR report, in their order."""
SYNTHETIC_SOURCES: tuple[str, str] = ("synthetic_1hop", "synthetic_2hop")
"""The data sources of the generated world: one-hop and two-hop questions."""
TASK_TYPES: tuple[str, ...] = (*KNOWN_SOURCES, *SYNTHETIC_SOURCES)
"""The env's task types: a task's type is its question's data source."""

_ALIASES: dict[str, str] = {
    "nq": "nq",
    "nq_open": "nq",
    "natural_questions": "nq",
    "naturalquestions": "nq",
    "triviaqa": "triviaqa",
    "trivia_qa": "triviaqa",
    "tqa": "triviaqa",
    "popqa": "popqa",
    "hotpotqa": "hotpotqa",
    "hotpot_qa": "hotpotqa",
    "hotpot": "hotpotqa",
    "2wikimultihopqa": "2wikimultihopqa",
    "2wikimultihop_qa": "2wikimultihopqa",
    "2wikimultihop": "2wikimultihopqa",
    "2wiki": "2wikimultihopqa",
    "2wikimqa": "2wikimultihopqa",
    "musique": "musique",
    "bamboogle": "bamboogle",
}
_SUFFIX = re.compile(
    r"[_\-.](test|dev|train|val|valid|validation|qa|questions|and|answers|search|\d+)$"
)
_UNSAFE = re.compile(r"[^a-z0-9_.\-]+")
_QUESTION_MARKER = "Question:"


class DatasetError(ValueError):
    """A question file that cannot be read; the message names the file and record."""


@dataclass(frozen=True)
class Question:
    """One question with its gold answers and the data set it comes from."""

    qid: str
    question: str
    answers: tuple[str, ...]
    data_source: str
    expert_queries: tuple[str, ...] = ()
    """Searches that find the answer, in order (the generated world has them)."""


def canonical_source(name: str) -> str:
    """The canonical name of a data source (``voidful/2WikiMultihopQA`` ->
    ``2wikimultihopqa``, ``nq_test_qa`` -> ``nq``); unknown names come back lower-cased
    with unusual characters replaced by ``_``."""
    lowered = str(name).strip().lower()
    for candidate in (lowered, lowered.rsplit("/", 1)[-1]):
        if candidate in _ALIASES:
            return _ALIASES[candidate]
    stem = lowered.rsplit("/", 1)[-1]
    while True:
        if stem in _ALIASES:
            return _ALIASES[stem]
        shorter = _SUFFIX.sub("", stem)
        if shorter == stem or not shorter:
            break
        stem = shorter
    return _UNSAFE.sub("_", lowered.rsplit("/", 1)[-1]).strip("_") or "unknown"


def _source_from_path(path: Path) -> str:
    name = path.name
    for suffix in (".jsonl", ".json", ".parquet"):
        name = name.removesuffix(suffix)
    return canonical_source(name)


# ----------------------------------------------------------------------------------------
# reading records
# ----------------------------------------------------------------------------------------


def _read_records(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, record) for every record of a parquet, jsonl or json file."""
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DatasetError(
                f"{path}: reading parquet needs pyarrow (`pip install skillzero[search]`)"
            ) from None
        try:
            table = pq.ParquetFile(path)
            row = 0
            for batch in table.iter_batches(batch_size=4096):
                for record in batch.to_pylist():
                    yield f"{path} row {row}", record
                    row += 1
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: not a readable parquet file ({exc})") from None
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError:
            data = None  # maybe JSON lines under a .json name
        if data is not None:
            if isinstance(data, Mapping) and isinstance(data.get("data"), list):
                data = data["data"]
            if not isinstance(data, list):
                raise DatasetError(
                    f"{path}: expected a JSON list of questions (or {{'data': [...]}}), "
                    f"got {type(data).__name__}"
                )
            for index, record in enumerate(data):
                yield f"{path} item {index}", record
            return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{path}:{number}: not a JSON line ({exc})") from None
        yield f"{path}:{number}", record


def _get(record: Mapping[str, Any], *keys: str) -> Any:
    """``record[k0][k1]...``, or None when any level is missing."""
    value: Any = record
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _answers(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        values: Iterable[Any] = [value]
    elif isinstance(value, Mapping):
        return _answers(value.get("target"))
    elif isinstance(value, Iterable):
        values = value
    else:
        return []
    answers: dict[str, None] = {}
    for item in values:
        if isinstance(item, str | int | float) and not isinstance(item, bool):
            text = str(item).strip()
            if text:
                answers[text] = None
    return list(answers)


_ANSWER_FIELDS: tuple[tuple[str, ...], ...] = (
    ("golden_answers",),
    ("answers",),
    ("answer",),
    ("extra_info", "golden_answers"),
    ("extra_info", "answers"),
    ("extra_info", "answer"),
    ("reward_model", "ground_truth", "target"),
    ("env_kwargs", "ground_truth", "target"),
    ("env_kwargs", "ground_truth"),
    ("reward_model", "ground_truth"),
)
_QUESTION_FIELDS: tuple[tuple[str, ...], ...] = (
    ("question",),
    ("Question",),
    ("extra_info", "question"),
    ("env_kwargs", "question"),
)


def _question_from_prompt(prompt: Any) -> str:
    if isinstance(prompt, str):
        content = prompt
    elif isinstance(prompt, Sequence):
        users = [m for m in prompt if isinstance(m, Mapping) and m.get("role") == "user"]
        content = str(users[-1].get("content", "")) if users else ""
    else:
        return ""
    if _QUESTION_MARKER in content:  # Search-R1's template ends with "Question: ..."
        content = content.rsplit(_QUESTION_MARKER, 1)[1]
    return content.strip()


def question_from_record(record: Any, where: str, default_source: str) -> Question:
    """A :class:`Question` from one record of any supported format (see the module
    docstring); raises :class:`DatasetError` naming ``where`` when it has no question
    text or no gold answer."""
    if not isinstance(record, Mapping):
        raise DatasetError(f"{where}: expected a JSON object, got {type(record).__name__}")
    text = ""
    for keys in _QUESTION_FIELDS:
        value = _get(record, *keys)
        if isinstance(value, str) and value.strip():
            text = value.strip()
            break
    if not text:
        text = _question_from_prompt(record.get("prompt"))
    if not text:
        raise DatasetError(
            f"{where}: no question text (looked for question, Question, "
            "extra_info.question, env_kwargs.question, prompt)"
        )
    answers: list[str] = []
    for keys in _ANSWER_FIELDS:
        answers = _answers(_get(record, *keys))
        if answers:
            break
    if not answers:
        raise DatasetError(
            f"{where}: no gold answer (looked for golden_answers, answers, answer, "
            "extra_info.answer, reward_model.ground_truth.target, env_kwargs.ground_truth)"
        )
    qid = None
    for keys in (("id",), ("idx",), ("_id",), ("extra_info", "index")):
        value = _get(record, *keys)
        if value is not None and str(value).strip():
            qid = str(value).strip()
            break
    source = record.get("data_source") or _get(record, "env_kwargs", "data_source")
    queries = record.get("expert_queries")
    return Question(
        qid=qid if qid is not None else where.rsplit(" ", 1)[-1].rsplit(":", 1)[-1],
        question=text,
        answers=tuple(answers),
        data_source=canonical_source(str(source)) if source else default_source,
        expert_queries=tuple(str(q) for q in queries if str(q).strip())
        if isinstance(queries, list)
        else (),
    )


_FILE_CACHE: dict[tuple[str, int, int, str | None], list[Question]] = {}
_CACHE_LOCK = threading.Lock()


def load_questions(path: str | os.PathLike[str], data_source: str | None = None) -> list[Question]:
    """Every question of a file, in file order. ``data_source`` overrides the records'
    own (and the one read from the file name). Results are cached per process while the
    file's size and modification time are unchanged."""
    path = Path(os.path.expandvars(os.path.expanduser(os.fspath(path))))
    if not path.is_file():
        raise DatasetError(f"question file not found: {path}")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, data_source)
    with _CACHE_LOCK:
        if key in _FILE_CACHE:
            return list(_FILE_CACHE[key])
    default = canonical_source(data_source) if data_source else _source_from_path(path)
    questions = [question_from_record(r, where, default) for where, r in _read_records(path)]
    if data_source:
        source = canonical_source(data_source)
        questions = [dataclasses.replace(q, data_source=source) for q in questions]
    if not questions:
        raise DatasetError(f"{path}: holds no questions")
    with _CACHE_LOCK:
        _FILE_CACHE[key] = questions
    return list(questions)


# ----------------------------------------------------------------------------------------
# splits and tasks
# ----------------------------------------------------------------------------------------


def _entries(value: Any, split: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if isinstance(value, str | Mapping):
        value = [value]
    if not isinstance(value, Iterable):
        raise DatasetError(f"env.splits.{split}: expected a list of files, got {value!r}")
    entries = []
    for item in value:
        if isinstance(item, str):
            entries.append({"path": item})
        elif isinstance(item, Mapping) and item.get("path"):
            entries.append(item)
        else:
            raise DatasetError(
                f"env.splits.{split}: each entry is a path or {{path, data_source, "
                f"data_sources, limit}}; got {item!r}"
            )
    return entries


def _resolve(path: str, data_dir: str | None) -> Path:
    resolved = Path(os.path.expandvars(os.path.expanduser(path)))
    if not resolved.is_absolute() and data_dir:
        resolved = Path(os.path.expandvars(os.path.expanduser(data_dir))) / resolved
    return resolved


def _interleave(questions: list[Question]) -> list[Question]:
    """Round-robin over data sources (in order of first appearance), keeping each
    source's own order."""
    by_source: dict[str, list[Question]] = {}
    for question in questions:
        by_source.setdefault(question.data_source, []).append(question)
    queues = list(by_source.values())
    out: list[Question] = []
    for position in range(max((len(q) for q in queues), default=0)):
        out += [queue[position] for queue in queues if position < len(queue)]
    return out


def split_names(env_cfg: Mapping[str, Any] | Any | None) -> list[str]:
    """The splits the config offers (the generated world's when none are configured)."""
    splits = cfg_get(env_cfg, "splits")
    if not splits:
        from skillzero.plugins.search.generate import WORLD_SPLITS

        return list(WORLD_SPLITS)
    return list(splits.keys())


def select_split(env_cfg: Mapping[str, Any] | Any | None, split: str) -> list[Question]:
    """The questions of ``split``: its files in order, filtered and capped as configured
    (``max_per_source``), interleaved by data source when ``interleave_sources``."""
    splits = cfg_get(env_cfg, "splits")
    data_dir = cfg_get(env_cfg, "data_dir")
    if not splits:
        from skillzero.plugins.search.generate import WORLD_SPLITS, world_dir_for

        if split not in WORLD_SPLITS:
            raise DatasetError(
                f"the generated world has splits {', '.join(WORLD_SPLITS)}, not {split!r} "
                "(or configure env.splits)"
            )
        entries: list[Mapping[str, Any]] = [
            {"path": str(world_dir_for(env_cfg) / WORLD_SPLITS[split])}
        ]
    else:
        if split not in splits:
            raise DatasetError(
                f"no split {split!r} in env.splits (it has: {', '.join(splits) or 'none'})"
            )
        entries = _entries(splits[split], split)
        if not entries:
            raise DatasetError(f"env.splits.{split} lists no files")
    questions: list[Question] = []
    for entry in entries:
        loaded = load_questions(_resolve(str(entry["path"]), data_dir), entry.get("data_source"))
        wanted = entry.get("data_sources")
        if wanted:
            keep = {canonical_source(s) for s in ([wanted] if isinstance(wanted, str) else wanted)}
            loaded = [q for q in loaded if q.data_source in keep]
        limit = entry.get("limit")
        if limit is not None:
            loaded = loaded[: int(limit)]
        questions += loaded
    cap = cfg_get(env_cfg, "max_per_source")
    if cap is not None:
        counts: dict[str, int] = {}
        kept = []
        for question in questions:
            seen = counts.get(question.data_source, 0)
            if seen < int(cap):
                kept.append(question)
            counts[question.data_source] = seen + 1
        questions = kept
    if bool(cfg_get(env_cfg, "interleave_sources", True)):
        questions = _interleave(questions)
    return questions


def tasks_from_questions(questions: Sequence[Question], split: str) -> list[Task]:
    """One :class:`Task` per question: ``task_type`` is the data source, ``task_id``
    ``<data_source>/<id>`` (made unique within the split)."""
    tasks = []
    seen: dict[str, int] = {}
    for question in questions:
        task_id = f"{question.data_source}/{question.qid}"
        count = seen.get(task_id, 0)
        seen[task_id] = count + 1
        if count:
            task_id = f"{task_id}~{count + 1}"
        tasks.append(
            Task(
                task_id=task_id,
                task_type=question.data_source,
                split=split,
                payload={
                    "question": question.question,
                    "answers": list(question.answers),
                    "data_source": question.data_source,
                    "expert_queries": list(question.expert_queries),
                },
            )
        )
    return tasks


class SearchExpert:
    """The env's expert (for ``skillzero sft``): the searches a question's file records
    (``expert_queries``; the generated world has them), then the first gold answer.
    Real QA sets have no such plan: ``None``."""

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        del env_cfg  # the plan is in the task

    def actions(self, task: Task) -> list[str] | None:
        payload = task.payload or {}
        queries = payload.get("expert_queries") or []
        answers = payload.get("answers") or []
        if not queries or not answers:
            return None
        return [f"<search>{q}</search>" for q in queries] + [f"<answer>{answers[0]}</answer>"]


def list_tasks(env_cfg: Mapping[str, Any] | Any | None, split: str) -> list[Task]:
    """The tasks of ``split`` (see :func:`select_split`).

    With ``env.retriever.url`` unset, this also starts the retrieval server the env's
    workers will use (on the main process only; see
    :mod:`skillzero.plugins.search.manager`) and writes its URL into ``env_cfg``, so
    that the pool built from the same mapping finds it.
    """
    if split not in split_names(env_cfg):
        raise DatasetError(
            f"no split {split!r} (available: {', '.join(split_names(env_cfg))}); "
            "configure env.splits"
        )
    if not cfg_get(env_cfg, "splits"):
        from skillzero.plugins.search.generate import ensure_world_for

        ensure_world_for(env_cfg)
    tasks = tasks_from_questions(select_split(env_cfg, split), split)
    from skillzero.plugins.search.manager import attach_server

    attach_server(env_cfg)
    return tasks


def gold_corpus(paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, str]]:
    """A wiki-18 style corpus (``{"id", "contents": '"Title"\\ntext'}``) of the distinct
    gold paragraphs (``golden_context``: ``"Title\\n text"`` strings) of question files,
    in first-seen order."""
    seen: dict[str, None] = {}
    for path in paths:
        for where, record in _read_records(Path(path)):
            context = record.get("golden_context") if isinstance(record, Mapping) else None
            if context is None:
                continue
            if not isinstance(context, list):
                raise DatasetError(f"{where}: golden_context is not a list")
            for paragraph in context:
                if isinstance(paragraph, str) and paragraph.strip():
                    seen[paragraph.strip()] = None
    docs = []
    for index, paragraph in enumerate(seen):
        title, _, text = paragraph.partition("\n")
        docs.append({"id": str(index), "contents": f'"{title.strip()}"\n{text.strip()}'})
    return docs
