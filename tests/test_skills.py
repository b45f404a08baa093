"""Skill rendering under a token budget, and the built-in skill providers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skillzero.contracts.env import Task
from skillzero.contracts.skills import (
    EMPTY_SKILLS,
    NoSkills,
    RenderedSkills,
    Skill,
    SkillProvider,
    StaticSkillProvider,
    format_skill,
    render_skill_block,
)

HEADER = "Skills that may help with this task:"


def words(text: str) -> int:
    return len(text.split())


def skill(i: int, n_words: int, source: str = "", category: str = "general") -> Skill:
    return Skill(f"s{i}", category, f"T{i}", " ".join(["w"] * n_words), source)


def test_format_skill() -> None:
    assert format_skill(Skill("a", "general", "Title", "Do it.")) == "- Title: Do it."
    assert format_skill(Skill("a", "general", "", "Do it.")) == "- Do it."


def test_empty_input_renders_nothing() -> None:
    rendered = render_skill_block([])
    assert rendered == EMPTY_SKILLS
    assert (rendered.text, rendered.skill_ids, rendered.tokens) == ("", (), 0)


def test_no_budget_keeps_everything_in_order() -> None:
    skills = [skill(0, 3, "a.md"), skill(1, 2, "b.md"), skill(2, 4, "a.md")]
    rendered = render_skill_block(skills)
    assert rendered.text == "\n".join([HEADER, *(format_skill(s) for s in skills)])
    assert rendered.skill_ids == ("s0", "s1", "s2")
    assert rendered.sources == ("a.md", "b.md")  # deduplicated, first appearance first
    assert rendered.dropped == ()
    assert rendered.tokens == words(rendered.text)


def test_budget_keeps_whole_skills_and_reports_dropped() -> None:
    # header: 7 words; skill i costs 2 + n words ("- Ti:" + text) plus one for the newline
    skills = [skill(0, 3), skill(1, 20), skill(2, 4)]
    rendered = render_skill_block(skills, count_tokens=words, budget_tokens=20)
    assert rendered.tokens <= 20
    assert "s1" in rendered.dropped
    assert "s0" in rendered.skill_ids
    assert set(rendered.skill_ids) | set(rendered.dropped) == {"s0", "s1", "s2"}
    assert not set(rendered.skill_ids) & set(rendered.dropped)
    lines = rendered.text.split("\n")
    assert lines[0] == HEADER
    by_id = {s.id: s for s in skills}
    assert lines[1:] == [format_skill(by_id[i]) for i in rendered.skill_ids]


def test_budget_below_header_drops_all() -> None:
    skills = [skill(0, 1), skill(1, 1)]
    rendered = render_skill_block(skills, count_tokens=words, budget_tokens=5)
    assert rendered.text == ""
    assert rendered.skill_ids == ()
    assert rendered.sources == ()
    assert rendered.dropped == ("s0", "s1")


def test_budget_with_custom_token_counter() -> None:
    skills = [Skill("x", "general", "", "abc", "f"), Skill("y", "general", "", "defgh", "g")]
    header = "H:"
    # characters: "H:" (2) + "- abc" (5 + 1) = 8 fits, "- defgh" (7 + 1) does not
    rendered = render_skill_block(skills, count_tokens=len, budget_tokens=10, header=header)
    assert rendered.text == "H:\n- abc"
    assert rendered.tokens == len("H:\n- abc")
    assert rendered.skill_ids == ("x",)
    assert rendered.sources == ("f",)
    assert rendered.dropped == ("y",)
    everything = render_skill_block(skills, count_tokens=len, budget_tokens=16, header=header)
    assert everything.skill_ids == ("x", "y")
    assert everything.tokens <= 16


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=30), max_size=8),
    budget=st.integers(min_value=0, max_value=120),
)
def test_budget_invariants(sizes: list[int], budget: int) -> None:
    skills = [skill(i, n, source=f"f{i % 3}") for i, n in enumerate(sizes)]
    rendered = render_skill_block(skills, count_tokens=words, budget_tokens=budget)
    order = [s.id for s in skills]
    kept, dropped = list(rendered.skill_ids), list(rendered.dropped)
    assert sorted(kept + dropped) == sorted(order)
    # both keep the input order
    assert kept == [i for i in order if i in kept]
    assert dropped == [i for i in order if i in dropped]
    if kept:
        assert rendered.tokens <= budget
        assert rendered.tokens == words(rendered.text)
        by_id = {s.id: s for s in skills}
        assert rendered.text.split("\n") == [HEADER, *(format_skill(by_id[i]) for i in kept)]
        assert set(rendered.sources) == {by_id[i].source for i in kept}
    else:
        assert rendered.text == ""
    # a skill is dropped only when it does not fit beside the skills kept before it
    if dropped:
        first = order.index(dropped[0])
        before = [s for s in skills[:first] if s.id in kept]
        cost = words(HEADER) + sum(words(format_skill(s)) + 1 for s in [*before, skills[first]])
        assert cost > budget


GENERAL = Skill("g", "general", "G", "general advice", "general.md")
PICK = Skill("p", "pick", "P", "pick advice", "pick.md")
PICK2 = Skill("p2", "pick", "P2", "more pick advice", "extra.md")
CLEAN = Skill("c", "clean", "C", "clean advice", "clean.md")


def test_static_provider_routes_by_category() -> None:
    provider = StaticSkillProvider([GENERAL, PICK, CLEAN, PICK2])
    assert provider.skills_for(Task("t", "pick")) == [GENERAL, PICK, PICK2]
    assert provider.skills_for(Task("t", "clean")) == [GENERAL, CLEAN]
    assert provider.skills_for(Task("t", "heat")) == [GENERAL]
    everyone = StaticSkillProvider([GENERAL, PICK, CLEAN], by_category=False)
    assert everyone.skills_for(Task("t", "heat")) == [GENERAL, PICK, CLEAN]


def test_static_provider_active_sources() -> None:
    provider = StaticSkillProvider([GENERAL, PICK, CLEAN, PICK2])
    provider.set_active_sources(["pick.md", "clean.md"])
    assert provider.active_sources == frozenset({"pick.md", "clean.md"})
    assert provider.skills_for(Task("t", "pick")) == [PICK]
    provider.set_active_sources([])
    assert provider.skills_for(Task("t", "pick")) == []
    provider.set_active_sources(None)
    assert provider.skills_for(Task("t", "pick")) == [GENERAL, PICK, PICK2]
    # the restriction is per provider
    assert StaticSkillProvider([GENERAL]).active_sources is None


def test_provider_output_renders() -> None:
    provider = StaticSkillProvider([GENERAL, PICK])
    rendered = render_skill_block(provider.skills_for(Task("t", "pick")))
    assert isinstance(rendered, RenderedSkills)
    assert rendered.skill_ids == ("g", "p")
    assert rendered.sources == ("general.md", "pick.md")


def test_no_skills() -> None:
    provider = NoSkills({"anything": 1})
    assert isinstance(provider, SkillProvider)
    assert provider.skills_for(Task("t", "pick")) == []
    provider.set_active_sources(["x"])
    assert provider.skills_for(Task("t", "pick")) == []
    assert render_skill_block(provider.skills_for(Task("t", "pick"))) == EMPTY_SKILLS


def test_skill_provider_is_abstract() -> None:
    with pytest.raises(TypeError):
        SkillProvider()  # type: ignore[abstract]
