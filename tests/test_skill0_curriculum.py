"""The SKILL0 curriculum: budget schedule, helpfulness ranking, and the trainer callback."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from skillzero import registry
from skillzero.contracts.env import Task
from skillzero.contracts.skills import NoSkills, Skill, SkillProvider, render_skill_block
from skillzero.core.collector import EpisodeResult
from skillzero.core.config import compose, to_container, validate
from skillzero.plugins.skill0.callback import Skill0Curriculum
from skillzero.plugins.skill0.curriculum import SkillCurriculum, paper_schedule
from skillzero.plugins.skills.bank import SkillBank
from skillzero.plugins.skills.providers import CategorySkillProvider

G = "general_skills.md"
TASK_FILES = ("a.md", "b.md", "c.md", "d.md", "e.md")
SOURCES = (G, *TASK_FILES)


def curriculum(**kwargs: Any) -> SkillCurriculum:
    kwargs.setdefault("total_steps", 180)
    return SkillCurriculum(SOURCES, [G], **kwargs)


def episode(task_id: str, won: bool, *sources: str) -> EpisodeResult:
    return EpisodeResult(
        task=Task(task_id, "t"),
        won=won,
        length=3,
        valid_actions=3,
        env_return=10.0 * won,
        skill_sources=tuple(sources),
    )


def passes(outcomes: dict[str, tuple[str, bool, bool]]) -> tuple[list, list]:
    """``{task_id: (file, won_with, won_without)}`` -> (with-skill, without-skill) episodes;
    with-skill prompts hold the general file and the task's file."""
    with_skills = [episode(t, w, G, f) for t, (f, w, _) in outcomes.items()]
    without = [episode(t, wo) for t, (_, _, wo) in outcomes.items()]
    return with_skills, without


# Round 1: deltas a = (1 + 0)/2 = 0.5, b = 1, c = -1, d = 0, e = 1; general = 2/6.
ROUND_1 = {
    "t1": ("a.md", True, False),
    "t2": ("a.md", False, False),
    "t3": ("b.md", True, False),
    "t4": ("c.md", False, True),
    "t5": ("d.md", True, True),
    "t6": ("e.md", True, False),
}


# ----------------------------------------------------------------------------------------
# budget schedule
# ----------------------------------------------------------------------------------------


def test_budget_phases_180_steps() -> None:
    c = curriculum()
    budgets = [c.budget(t) for t in range(1, 181)]
    assert budgets == [6] * 60 + [3] * 60 + [0] * 60
    assert [c.stage(t) for t in (1, 60, 61, 120, 121, 180)] == [0, 0, 1, 1, 2, 2]
    # step 0 (a validation before training) is in the first stage, not the last
    assert c.budget(0) == 6


def test_budget_phases_not_divisible() -> None:
    # stage = floor((t-1)*3/100): t=34 -> 99/100 -> 0, t=35 -> 102/100 -> 1,
    # t=67 -> 198/100 -> 1, t=68 -> 201/100 -> 2
    c = curriculum(total_steps=100)
    budgets = [c.budget(t) for t in range(1, 101)]
    assert budgets == [6] * 34 + [3] * 33 + [0] * 33
    c = curriculum(total_steps=7, max_set_schedule=(4, 2))
    assert [c.budget(t) for t in range(1, 8)] == [4, 4, 4, 4, 2, 2, 2]  # floor((t-1)*2/7)
    c = curriculum(total_steps=2)  # fewer steps than stages: stages 0 and 1 only
    assert [c.budget(t) for t in (1, 2)] == [6, 3]


def test_paper_schedule() -> None:
    assert paper_schedule(6, 3) == [6, 3, 0]  # ALFWorld, as in the training script
    assert paper_schedule(5, 3) == [5, 3, 0]  # Search
    assert paper_schedule(4, 4) == [4, 3, 2, 0]  # ceil(4*3/3), ceil(4*2/3), ceil(4/3), 0
    assert paper_schedule(3, 1) == [3]
    c = curriculum(max_set_schedule=None)
    assert c.schedule == [6, 3, 0]
    c = SkillCurriculum(SOURCES, [G], 40, max_set_schedule=None, num_stages=4)
    assert c.schedule == [6, 4, 2, 0]  # ceil(6*3/3), ceil(6*2/3), ceil(6/3), 0
    assert [c.budget(t) for t in (10, 11, 20, 21, 30, 31)] == [6, 4, 4, 2, 2, 0]


def test_initial_active_set_uses_the_first_budget_in_bank_order() -> None:
    assert curriculum().active_sources(1) == list(SOURCES)
    c = curriculum(max_set_schedule=(3, 1, 0))
    assert c.active_sources(1) == [G, "a.md", "b.md"]
    assert c.active_sources(61) == [G]  # budget 1: the general file alone
    assert c.active_sources(121) == []  # budget 0: no skills at all


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="total_steps"):
        curriculum(total_steps=0)
    with pytest.raises(ValueError, match="max_set_schedule"):
        curriculum(max_set_schedule=(3, -1))


# ----------------------------------------------------------------------------------------
# helpfulness
# ----------------------------------------------------------------------------------------


def test_ranking_and_drop_threshold() -> None:
    c = curriculum()
    rows = c.update(10, *passes(ROUND_1))
    assert c.helpfulness == pytest.approx(
        {G: 2 / 6, "a.md": 0.5, "b.md": 1.0, "c.md": -1.0, "d.md": 0.0, "e.md": 1.0}
    )
    # c dropped (delta < 0); b and e tie at 1: previous rank order (bank order) keeps b first
    assert c.ranking == ["b.md", "e.md", "a.md", "d.md"]
    assert c.active_sources(11) == [G, "b.md", "e.md", "a.md", "d.md"]
    assert c.active_sources(61) == [G, "b.md", "e.md"]
    by_source = {r.source: r for r in rows}
    assert (by_source["c.md"].rank, by_source["c.md"].active) == (None, False)
    assert (by_source["b.md"].rank, by_source["b.md"].active, by_source["b.md"].tasks) == (
        0,
        True,
        1,
    )
    assert (by_source["a.md"].delta, by_source["a.md"].tasks) == (0.5, 2)
    assert (by_source[G].general, by_source[G].rank, by_source[G].active) == (True, None, True)
    assert [r.source for r in rows] == list(SOURCES)
    assert c.history[-1]["step"] == 10
    assert c.history[-1]["budget"] == 6
    assert c.history[-1]["paired_tasks"] == 6


def test_strict_drops_zero_delta() -> None:
    c = curriculum(strict=True)
    c.update(10, *passes(ROUND_1))
    assert c.ranking == ["b.md", "e.md", "a.md"]  # d (delta 0) dropped too
    c = curriculum(threshold=0.5)
    c.update(10, *passes(ROUND_1))
    assert c.ranking == ["b.md", "e.md", "a.md"]  # a = 0.5 >= 0.5 kept
    c = curriculum(threshold=0.5, strict=True)
    c.update(10, *passes(ROUND_1))
    assert c.ranking == ["b.md", "e.md"]


def test_update_at_a_phase_boundary_cuts_to_the_next_budget() -> None:
    c = curriculum()
    rows = c.update(60, *passes(ROUND_1))
    assert [r.source for r in rows if r.active] == [G, "b.md", "e.md"]  # budget(61) = 3
    rows = c.update(120, *passes(ROUND_1))
    assert not any(r.active for r in rows)  # budget(121) = 0
    assert c.history[-1]["budget"] == 0


def test_ties_follow_previous_rank_then_bank_order() -> None:
    c = curriculum()
    round_1 = dict(ROUND_1, t3=("b.md", False, False))  # b = 0 now, e = 1
    c.update(10, *passes(round_1))
    assert c.ranking == ["e.md", "a.md", "b.md", "d.md"]  # b and d tie at 0: bank order
    # Round 2: b and e tie at 1 -> e stays ahead (previous rank), although b is first in
    # the bank; a and d tie at 0 -> a (previously ranked higher) first.
    round_2 = {
        "t1": ("a.md", False, False),
        "t3": ("b.md", True, False),
        "t5": ("d.md", False, False),
        "t6": ("e.md", True, False),
    }
    c.update(20, *passes(round_2))
    assert c.ranking == ["e.md", "b.md", "a.md", "d.md"]


def test_dropped_source_returns_and_missing_evidence_keeps_old_helpfulness() -> None:
    c = curriculum()
    c.update(10, *passes(ROUND_1))
    assert "c.md" not in c.ranking
    # Round 2: c now helps (+1); e is not measured (task t6 absent): it keeps delta 1.
    round_2 = {
        "t1": ("a.md", False, False),
        "t3": ("b.md", False, True),
        "t4": ("c.md", True, False),
        "t5": ("d.md", True, True),
    }
    rows = c.update(20, *passes(round_2))
    assert c.helpfulness["e.md"] == 1.0
    assert c.helpfulness["c.md"] == 1.0
    assert c.helpfulness["b.md"] == -1.0
    # e and c tie at 1: e was ranked before (c had no rank) -> e first
    assert c.ranking == ["e.md", "c.md", "a.md", "d.md"]
    by_source = {r.source: r for r in rows}
    assert by_source["e.md"].tasks == 0
    assert by_source["e.md"].delta == 1.0
    assert by_source["c.md"].active
    assert not by_source["b.md"].active


def test_general_kept_when_every_task_source_is_dropped() -> None:
    c = curriculum(max_set_schedule=(3, 3, 0))
    bad = {t: (f, False, True) for t, (f, _, _) in ROUND_1.items()}
    c.update(10, *passes(bad))
    assert c.ranking == []
    assert c.active_sources(11) == [G]
    assert c.active_sources(121) == []


def test_never_measured_sources_rank_after_measured_ones() -> None:
    c = curriculum()
    c.update(10, *passes({"t5": ("d.md", True, True)}))  # only d measured, delta 0
    assert c.ranking == ["d.md", "a.md", "b.md", "c.md", "e.md"]


def test_tasks_in_one_pass_only_are_ignored_and_repeats_averaged() -> None:
    c = curriculum()
    with_skills = [
        episode("t1", True, G, "a.md"),
        episode("t1", False, G, "a.md"),  # t1 with skills: 0.5
        episode("t2", True, G, "b.md"),  # no without-skill run: ignored
    ]
    without = [episode("t1", False), episode("t9", True)]
    c.update(10, with_skills, without)
    assert c.helpfulness == {G: 0.5, "a.md": 0.5}
    assert c.history[-1]["paired_tasks"] == 1


def test_state_round_trip() -> None:
    c = curriculum()
    c.update(10, *passes(ROUND_1))
    state = json.loads(json.dumps(c.state_dict()))  # plain data: fits any checkpoint
    restored = curriculum()
    restored.load_state_dict(state)
    assert restored.ranking == c.ranking
    assert restored.helpfulness == c.helpfulness
    assert restored.history == c.history
    assert restored.active_sources(61) == c.active_sources(61)
    restored.update(20, *passes(ROUND_1))
    c.update(20, *passes(ROUND_1))
    assert restored.state_dict() == c.state_dict()
    other = SkillCurriculum((G, "a.md", "z.md"), [G], 180)
    with pytest.raises(ValueError, match="other skill sources"):
        other.load_state_dict(state)


# ----------------------------------------------------------------------------------------
# the callback, with a fake trainer
# ----------------------------------------------------------------------------------------

FILES = {"A": "a.md", "B": "b.md", "C": "c.md"}


def small_bank() -> SkillBank:
    skills = [Skill("g1", "general", "G", "general rule", G)]
    skills += [Skill(f"{t}1", t, t, f"rule for {t}", f) for t, f in FILES.items()]
    return SkillBank(tuple(skills), {t: (f,) for t, f in FILES.items()}, (G,))


@dataclass
class Result:
    episodes: list[EpisodeResult]
    metrics: dict[str, float] = field(default_factory=dict)


class FakeTrainer:
    """The trainer attributes the callback uses. ``validate`` plays each validation task
    with the given provider: type A wins only with a.md in the prompt (helpful), type B
    only without b.md (harmful), type C always (neutral)."""

    def __init__(self, total_steps: int) -> None:
        self.total_steps = total_steps
        self.step = 0
        self.is_main_process = True
        self.skill_provider: SkillProvider = CategorySkillProvider(small_bank())
        self.val_tasks = [Task(f"{t}-{i}", t, "valid") for t in FILES for i in range(2)]
        self.validations: list[tuple[str, SkillProvider, list[EpisodeResult]]] = []
        self.logged: list[tuple[int, dict[str, float]]] = []
        self.tables: list[tuple[str, list[dict], int]] = []

    def validate(self, *, skill_provider=None, tasks=None, tag="val") -> Result:
        provider = skill_provider if skill_provider is not None else self.skill_provider
        episodes = []
        for task in tasks or self.val_tasks:
            sources = render_skill_block(provider.skills_for(task)).sources
            won = {
                "A": "a.md" in sources,
                "B": "b.md" not in sources,
                "C": True,
            }[task.task_type]
            episodes.append(
                EpisodeResult(task, won, 5, 5, 10.0 * won, skill_sources=tuple(sources))
            )
        self.validations.append((tag, provider, episodes))
        return Result(episodes)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.logged.append((step, dict(metrics)))

    def log_table(self, name: str, rows: list[dict], step: int) -> None:
        self.tables.append((name, rows, step))

    def run(self, callback: Skill0Curriculum, steps: range) -> None:
        for step in steps:
            callback.before_rollout(self, step)
            self.step = step
            callback.after_update(self, step, {})


def metrics_at(trainer: FakeTrainer, step: int) -> dict[str, float]:
    merged: dict[str, float] = {}
    for logged_step, metrics in trainer.logged:
        if logged_step == step:
            merged.update(metrics)
    return merged


def test_callback_drives_the_training_provider() -> None:
    trainer = FakeTrainer(total_steps=30)
    callback = Skill0Curriculum(every=10, max_set_schedule=[4, 2, 0])
    callback.on_train_start(trainer)
    provider = trainer.skill_provider
    assert provider.active_sources == frozenset({G, "a.md", "b.md", "c.md"})  # budget 4

    trainer.run(callback, range(1, 11))
    tags = [tag for tag, _, _ in trainer.validations]
    assert tags == ["curriculum/with_skills", "curriculum/without_skills"]
    with_pass = trainer.validations[0][2]
    assert {e.skill_sources for e in with_pass} == {(G, "a.md"), (G, "b.md"), (G, "c.md")}
    assert all(e.skill_sources == () for e in trainer.validations[1][2])
    assert isinstance(trainer.validations[1][1], NoSkills)
    # a +1, b -1 (dropped), c 0; budget(11) = 2 -> general + a
    assert provider.active_sources == frozenset({G, "a.md"})
    logged = metrics_at(trainer, 10)
    assert logged["skill0/budget"] == 4.0  # what step 10's rollouts used
    assert logged["skill0/next_budget"] == 2.0  # what step 11's will use
    assert logged["skill0/next_active_sources"] == 2.0
    assert logged["skill0/delta/a.md"] == 1.0
    assert logged["skill0/delta/b.md"] == -1.0
    assert logged["skill0/delta/c.md"] == 0.0
    assert logged[f"skill0/delta/{G}"] == 0.0
    name, rows, step = trainer.tables[-1]
    assert (name, step) == ("skill0/helpfulness", 10)
    assert {r["source"]: (r["delta"], r["rank"], r["active"]) for r in rows} == {
        G: (0.0, None, True),
        "a.md": (1.0, 0, True),
        "b.md": (-1.0, None, False),
        "c.md": (0.0, 1, False),
    }
    # training prompts now hold general + a for type A, general only for B and C
    assert render_skill_block(provider.skills_for(Task("x", "B"))).sources == (G,)

    trainer.run(callback, range(11, 21))
    # the with-skill pass still showed the dropped b.md (restriction lifted) ...
    with_pass = trainer.validations[2][2]
    assert (G, "b.md") in {e.skill_sources for e in with_pass}
    assert metrics_at(trainer, 20)["skill0/delta/b.md"] == -1.0
    # ... and the training provider was not touched by it; budget(21) = 0: no skills
    assert provider.active_sources == frozenset()
    assert provider.skills_for(Task("x", "A")) == []

    trainer.run(callback, range(21, 31))
    assert len(trainer.validations) == 4  # no curriculum validation after the last step
    callback.on_train_end(trainer)
    tag, final_provider, episodes = trainer.validations[-1]
    assert tag == "final/no_skills"
    assert isinstance(final_provider, NoSkills)
    assert all(e.skill_sources == () for e in episodes)


def test_callback_validates_on_one_task_of_each_type() -> None:
    trainer = FakeTrainer(total_steps=30)
    # (sorted by type, as a split's tasks are)
    callback = Skill0Curriculum(every=10, max_set_schedule=[4, 2, 0], val_tasks=3)
    callback.on_train_start(trainer)
    trainer.run(callback, range(1, 11))
    for _, _, episodes in trainer.validations:
        assert [e.task.task_id for e in episodes] == ["A-0", "B-0", "C-0"]
    # one task of each type is enough to rank the files as with all six
    assert trainer.skill_provider.active_sources == frozenset({G, "a.md"})
    assert metrics_at(trainer, 10)["skill0/delta/b.md"] == -1.0
    callback.on_train_end(trainer)  # the final zero-skill validation plays all of them
    assert len(trainer.validations[-1][2]) == 6
    with pytest.raises(ValueError, match="val_tasks"):
        Skill0Curriculum(val_tasks=0)


def test_callback_applies_budget_changes_between_validations() -> None:
    trainer = FakeTrainer(total_steps=30)
    callback = Skill0Curriculum(every=100, max_set_schedule=[3, 2, 0])
    callback.on_train_start(trainer)
    assert trainer.skill_provider.active_sources == frozenset({G, "a.md", "b.md"})
    trainer.run(callback, range(1, 11))
    assert trainer.skill_provider.active_sources == frozenset({G, "a.md", "b.md"})
    callback.before_rollout(trainer, 11)
    assert trainer.skill_provider.active_sources == frozenset({G, "a.md"})
    assert metrics_at(trainer, 11) == {"skill0/budget": 2.0, "skill0/active_sources": 2.0}
    callback.before_rollout(trainer, 21)
    assert trainer.skill_provider.active_sources == frozenset()
    assert trainer.validations == []


def test_callback_state_is_restored_before_train_start() -> None:
    trainer = FakeTrainer(total_steps=30)
    callback = Skill0Curriculum(every=10, max_set_schedule=[4, 3, 0])
    callback.on_train_start(trainer)
    trainer.run(callback, range(1, 11))
    state = callback.state_dict()
    assert state["ranking"] == ["a.md", "c.md"]

    resumed = FakeTrainer(total_steps=30)
    resumed.step = 10
    fresh = Skill0Curriculum(every=10, max_set_schedule=[4, 3, 0])
    fresh.load_state_dict(state)
    fresh.on_train_start(resumed)
    # budget(11) = 3 over the restored ranking, not bank order (which would give a, b)
    assert resumed.skill_provider.active_sources == frozenset({G, "a.md", "c.md"})
    assert fresh.state_dict() == state


def test_callback_needs_a_bank_provider() -> None:
    trainer = FakeTrainer(total_steps=30)
    trainer.skill_provider = NoSkills()
    with pytest.raises(ValueError, match="skills=category"):
        Skill0Curriculum().on_train_start(trainer)
    with pytest.raises(ValueError, match="every"):
        Skill0Curriculum(every=0)


def test_algo_config_builds_the_callback() -> None:
    cfg = validate(compose(["algo=skill0", "skills=category"]))
    algo = cfg.algo
    assert algo.advantage.name == "grpo"
    assert algo.advantage.params["mean_std_over"] == "steps"
    assert [(t.name, t.coef) for t in algo.loss_terms] == [("ppo_clip", 1.0), ("entropy", -0.001)]
    assert dict(algo.loss_terms[0].params) == {"clip_ratio": 0.2, "dual_clip": 3.0}
    (cb_cfg,) = algo.callbacks
    callback = registry.get("trainer_callbacks", cb_cfg.name).create(**to_container(cb_cfg.params))
    assert isinstance(callback, Skill0Curriculum)
    assert (callback.every, callback.max_set_schedule, callback.strict) == (10, [6, 3, 0], False)
    provider = registry.get("skill_providers", cfg.skills.provider).create(
        to_container(cfg)["skills"]
    )
    trainer = FakeTrainer(total_steps=180)
    trainer.skill_provider = provider
    callback.on_train_start(trainer)
    assert provider.active_sources == frozenset(provider.sources())  # budget 6 = all six


def test_callback_warns_about_task_types_without_a_file(caplog) -> None:
    trainer = FakeTrainer(total_steps=30)
    trainer.env_spec = type("Spec", (), {"task_types": ("A", "B", "C", "D")})()
    with caplog.at_level("WARNING", logger="skillzero.plugins.skills.bank"):
        Skill0Curriculum().on_train_start(trainer)
    assert "no task-specific source for task type(s) D" in caplog.text
