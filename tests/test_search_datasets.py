"""Search-QA question sets: every format of the shared benchmark files loads with the
right counts and data sources; split selection; the generated world."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skillzero.plugins.search.datasets import (
    KNOWN_SOURCES,
    DatasetError,
    SearchExpert,
    canonical_source,
    gold_corpus,
    list_tasks,
    load_questions,
    select_split,
)
from skillzero.plugins.search.generate import WorldSizes, generate_world
from skillzero.plugins.search.manager import ManagedServerError
from skillzero.plugins.search.scoring import normalize_answer

# the retriever is never contacted when listing tasks with a URL set
NO_SERVER = {"url": "http://127.0.0.1:9"}


@pytest.fixture(scope="module")
def searchqa(shared_data: Path) -> Path:
    root = shared_data / "searchqa"
    if not root.is_dir():
        pytest.skip(f"Search-QA data not found at {root}")
    return root


# file (relative to searchqa/), count, data source
SHARED_FILES = [
    ("full_eval_agentic-rag/nq_test.jsonl", 3610, "nq"),
    ("full_eval_agentic-rag/hotpotqa_dev.jsonl", 7405, "hotpotqa"),
    ("full_eval_agentic-rag/musique_dev.jsonl", 2417, "musique"),
    ("full_eval_agentic-rag/bamboogle_test.jsonl", 125, "bamboogle"),
    ("full_eval_agentic-rag/2wikimultihopqa_dev.parquet", 12576, "2wikimultihopqa"),
    ("full_eval_agentic-rag/nq_test_qa.json", 3610, "nq"),
    ("full_eval_agentic-rag/hotpotqa_dev_qa.json", 7405, "hotpotqa"),
    ("full_eval_agentic-rag/musique_dev_qa.json", 2417, "musique"),
    ("full_eval_agentic-rag/bamboogle_test_qa.json", 125, "bamboogle"),
    ("full_eval_agentic-rag/2wikimultihopqa_dev_qa.json", 12576, "2wikimultihopqa"),
    ("searchr1_nq/nq_search_test.parquet", 3610, "nq"),
    ("r1-searcher/bamboogle.jsonl", 125, "bamboogle"),
    ("r1-searcher/hotpotqa_500.jsonl", 500, "hotpotqa"),
    ("r1-searcher/2wiki_500.jsonl", 500, "2wikimultihopqa"),
    ("r1-searcher/musique_500.jsonl", 500, "musique"),
    ("r1-searcher/train_stage_1.jsonl", 350, "train_stage_1"),
    ("r1-searcher/train_stage_2.jsonl", 8148, "train_stage_2"),
    ("subsets_500_prunerag/popqa.json", 500, "popqa"),
    ("subsets_500_prunerag/triviaqa.json", 500, "triviaqa"),
    ("subsets_500_prunerag/nq.json", 500, "nq"),
    ("subsets_500_prunerag/2wiki.json", 500, "2wikimultihopqa"),
    ("subsets_500_prunerag/hotpotqa.json", 500, "hotpotqa"),
    ("subsets_500_prunerag/musique.json", 500, "musique"),
    ("subsets_500_prunerag/bamboogle.json", 125, "bamboogle"),
]


@pytest.mark.parametrize(("relpath", "count", "source"), SHARED_FILES)
def test_shared_files_load(searchqa: Path, relpath: str, count: int, source: str) -> None:
    questions = load_questions(searchqa / relpath)
    assert len(questions) == count
    assert {q.data_source for q in questions} == {source}
    for q in questions:
        assert q.question.strip()
        assert q.answers
        assert all(isinstance(a, str) and a.strip() for a in q.answers)
    assert len({q.qid for q in questions}) == count  # ids are unique within a file


def test_formats_agree_on_the_same_questions(searchqa: Path) -> None:
    verl = load_questions(searchqa / "full_eval_agentic-rag/nq_test.jsonl")
    plain = load_questions(searchqa / "full_eval_agentic-rag/nq_test_qa.json")
    assert [(q.question, q.answers) for q in verl] == [(q.question, q.answers) for q in plain]
    # the verl file's ground_truth is a comma-joined string; the list answers are used
    assert verl[0].question == "when was the last time anyone was on the moon"
    assert verl[0].answers == ("14 December 1972 UTC", "December 1972")
    searchr1 = load_questions(searchqa / "searchr1_nq/nq_search_test.parquet")
    assert searchr1[0].question == "who got the first nobel prize in physics?"
    assert searchr1[0].answers == ("Wilhelm Conrad Röntgen",)
    assert searchr1[0].qid == "test_0"
    r1 = load_questions(searchqa / "r1-searcher/bamboogle.jsonl")
    agentic = load_questions(searchqa / "full_eval_agentic-rag/bamboogle_test.jsonl")
    assert [q.question for q in r1] == [q.question for q in agentic]
    assert r1[0].answers == ("james madison",)
    popqa = load_questions(searchqa / "subsets_500_prunerag/popqa.json")
    assert popqa[0].question == "Who is the author of The Book of the Law?"
    assert popqa[0].answers == ("Aiwass", "Aleister Crowley")


def test_flashrag_fixture_with_an_explicit_source(searchqa: Path) -> None:
    questions = load_questions(searchqa / "fixtures/flashrag_quickstart_nq_test16.jsonl", "nq")
    # test_0 ... test_16: 17 rows (the last line has no newline)
    assert len(questions) == 17
    assert {q.data_source for q in questions} == {"nq"}
    assert questions[0].qid == "test_0"
    assert questions[0].answers == ("Wilhelm Conrad Röntgen",)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("google-research-datasets/nq_open", "nq"),
        ("voidful/2WikiMultihopQA", "2wikimultihopqa"),
        ("hotpotqa/hotpot_qa", "hotpotqa"),
        ("chiayewken/bamboogle", "bamboogle"),
        ("bdsaglam/musique", "musique"),
        ("2wikimultihopqa_dev_qa", "2wikimultihopqa"),
        ("bamboogle_test_questions_and_answers", "bamboogle"),
        ("trivia_qa", "triviaqa"),
        ("PopQA", "popqa"),
        ("nq_search_test", "nq"),
        ("My Data/Set!", "set"),
        ("synthetic_2hop", "synthetic_2hop"),
    ],
)
def test_canonical_source(raw: str, canonical: str) -> None:
    assert canonical_source(raw) == canonical


def test_split_selection_caps_and_interleaves(searchqa: Path) -> None:
    seven = [
        "full_eval_agentic-rag/nq_test.jsonl",
        "subsets_500_prunerag/triviaqa.json",
        "subsets_500_prunerag/popqa.json",
        "full_eval_agentic-rag/hotpotqa_dev.jsonl",
        "full_eval_agentic-rag/2wikimultihopqa_dev.parquet",
        "full_eval_agentic-rag/musique_dev.jsonl",
        {"path": "full_eval_agentic-rag/bamboogle_test.jsonl", "limit": 3},
    ]
    cfg = {
        "data_dir": str(searchqa),
        "splits": {"train": ["full_eval_agentic-rag/nq_test.jsonl"], "test": seven},
        "max_per_source": 5,
        "retriever": NO_SERVER,
    }
    tasks = list_tasks(cfg, "test")
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task.task_type] = counts.get(task.task_type, 0) + 1
    assert counts == {**dict.fromkeys(KNOWN_SOURCES, 5), "bamboogle": 3}
    # round-robin: the first seven tasks cover the seven sets, in the configured order
    assert [t.task_type for t in tasks[:7]] == list(KNOWN_SOURCES)
    assert len({t.task_id for t in tasks}) == len(tasks)
    first = tasks[0]
    assert first.split == "test"
    assert first.payload["question"] == "when was the last time anyone was on the moon"
    assert first.payload["answers"] == ["14 December 1972 UTC", "December 1972"]
    assert first.payload["data_source"] == "nq"
    ordered = select_split({**cfg, "interleave_sources": False}, "test")
    assert [q.data_source for q in ordered[:5]] == ["nq"] * 5
    with pytest.raises(DatasetError, match="no split 'valid'"):
        list_tasks(cfg, "valid")


def test_data_source_filter_and_override(tmp_path: Path) -> None:
    mixed = tmp_path / "train.jsonl"
    rows = [
        {"question": f"q{i}", "golden_answers": [f"a{i}"], "data_source": src}
        for i, src in enumerate(["nq", "hotpotqa", "nq", "triviaqa"])
    ]
    mixed.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {
        "splits": {"train": [{"path": str(mixed), "data_sources": ["nq", "trivia_qa"]}]},
        "interleave_sources": False,
    }
    assert [q.question for q in select_split(cfg, "train")] == ["q0", "q2", "q3"]
    cfg = {"splits": {"train": [{"path": str(mixed), "data_source": "popqa"}]}}
    assert {q.data_source for q in select_split(cfg, "train")} == {"popqa"}
    # duplicate ids get distinct task ids
    twice = {"splits": {"train": [str(mixed), str(mixed)]}, "retriever": NO_SERVER}
    ids = [t.task_id for t in list_tasks(twice, "train")]
    assert len(ids) == len(set(ids)) == 8


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "bad.jsonl",
            '{"question": "q", "answers": ["a"]}\n{not json\n',
            "bad.jsonl:2: not a JSON",
        ),
        ("noanswer.jsonl", '{"question": "q"}\n', "no gold answer"),
        ("noquestion.jsonl", '{"answers": ["a"]}\n', "no question text"),
        ("scalar.jsonl", "[1, 2]\n", "expected a JSON object"),
        ("dict.json", '{"question": "q"}', "expected a JSON list"),
        ("empty.jsonl", "\n\n", "holds no questions"),
        ("broken.parquet", "not parquet", "not a readable parquet"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_questions(path)
    with pytest.raises(DatasetError, match="not found"):
        load_questions(tmp_path / "missing.jsonl")


def test_real_sets_need_an_index_or_a_url(searchqa: Path) -> None:
    cfg = {"splits": {"test": [str(searchqa / "r1-searcher/bamboogle.jsonl")]}}
    with pytest.raises(ManagedServerError, match=r"env.retriever.index"):
        list_tasks(cfg, "test")


def test_gold_corpus(searchqa: Path) -> None:
    files = [
        searchqa / "subsets_500_prunerag/2wiki.json",
        searchqa / "subsets_500_prunerag/hotpotqa.json",
    ]
    expected: dict[str, None] = {}
    for file in files:
        for record in json.loads(file.read_text()):
            for paragraph in record.get("golden_context", []):
                if paragraph.strip():
                    expected[paragraph.strip()] = None
    docs = gold_corpus(files)
    assert len(docs) == len(expected)
    assert [d["id"] for d in docs] == [str(i) for i in range(len(docs))]
    first = docs[0]["contents"]
    assert first.startswith('"Panam Paduthum Padu"\n')
    assert "directed by Y. R. Swamy" in first


# ----------------------------------------------------------------------------------------
# the generated world
# ----------------------------------------------------------------------------------------


def test_world_is_deterministic_per_seed(tmp_path: Path) -> None:
    generate_world(tmp_path / "a", 7, WorldSizes.small())
    generate_world(tmp_path / "b", 7, WorldSizes.small())
    generate_world(tmp_path / "c", 8, WorldSizes.small())
    for name in ("corpus.jsonl", "train.jsonl", "test.jsonl", "world.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "corpus.jsonl").read_bytes() != (
        tmp_path / "c" / "corpus.jsonl"
    ).read_bytes()


def test_world_questions_need_retrieval(tmp_path: Path) -> None:
    manifest = generate_world(tmp_path, 1)
    corpus = [json.loads(line) for line in (tmp_path / "corpus.jsonl").read_text().splitlines()]
    assert len(corpus) == manifest["passages"] > 400
    titles = {}
    for doc in corpus:
        title, _, text = doc["contents"].partition("\n")
        assert title.startswith('"')
        assert title.endswith('"')
        assert text
        titles[title.strip('"')] = text
    train = load_questions(tmp_path / "train.jsonl")
    test = load_questions(tmp_path / "test.jsonl")
    assert {q.data_source for q in test} == {"synthetic_1hop", "synthetic_2hop"}
    assert sum(q.data_source == "synthetic_2hop" for q in test) == 100
    assert [q.data_source for q in test[:4]] == ["synthetic_1hop", "synthetic_2hop"] * 2
    assert not {q.question for q in train} & {q.question for q in test}
    for q in train + test:
        answer = normalize_answer(q.answers[0])
        # never in the question, always in the last supporting passage
        assert answer not in normalize_answer(q.question)
        hops = 2 if q.data_source == "synthetic_2hop" else 1
        assert len(q.expert_queries) == hops
        assert answer in normalize_answer(titles[q.expert_queries[-1]])
        if hops == 2:  # the bridge entity is named in the first passage, not the question
            bridge = q.expert_queries[1]
            assert bridge in titles[q.expert_queries[0]]
            assert normalize_answer(bridge) not in normalize_answer(q.question)
    expert = SearchExpert()
    task = list_tasks({"world_dir": str(tmp_path), "retriever": NO_SERVER}, "test")[1]
    plan = expert.actions(task)
    assert plan is not None
    assert plan[-1] == f"<answer>{task.payload['answers'][0]}</answer>"
    assert [a.startswith("<search>") for a in plan] == [True, True, False]
