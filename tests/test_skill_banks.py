"""Skill banks: SkillRL-style JSON, Markdown folders, the shipped ALFWorld bank, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers.skills import ALFWORLD_FILES

from skillzero.contracts.skills import Skill
from skillzero.plugins.alfworld.games import TASK_TYPE_NAMES
from skillzero.plugins.skills.bank import (
    BANKS_DIR,
    SkillBank,
    SkillBankError,
    load_bank,
    parse_markdown_skills,
    shipped_banks,
)

SKILLRL_BANK = {
    "general_skills": [
        {
            "skill_id": "gen_001",
            "title": "Explore",
            "principle": "Check every receptacle once.",
            "when_to_apply": "the object is not in view",
        },
        {"skill_id": "gen_002", "title": "Exact names", "principle": "Copy actions."},
    ],
    "task_specific_skills": {
        "heat": [{"skill_id": "heat_001", "title": "Microwave", "principle": "Heat it."}],
        "pick_and_place": [
            {"skill_id": "pp_001", "title": "Deliver", "principle": "Move it."},
            {"skill_id": "pp_002", "title": "Open", "principle": "Open it first."},
        ],
    },
    "common_mistakes": [
        {
            "mistake_id": "err_001",
            "description": "Repeating a failed action",
            "why_it_happens": "the agent ignores the observation",
            "how_to_avoid": "try something else",
        }
    ],
    "metadata": {"source": "test"},
}


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


# ----------------------------------------------------------------------------------------
# SkillRL JSON
# ----------------------------------------------------------------------------------------


def test_json_bank_skills_sources_and_default_mapping(tmp_path: Path) -> None:
    bank = load_bank(write_json(tmp_path / "bank.json", SKILLRL_BANK))
    assert bank.sources() == ("general", "common_mistakes", "heat", "pick_and_place")
    assert bank.general_sources == ("general", "common_mistakes")
    assert bank.task_sources() == ("heat", "pick_and_place")
    by_id = {s.id: s for s in bank.skills}
    assert by_id["gen_001"] == Skill(
        "gen_001",
        "general",
        "Explore",
        "Check every receptacle once. Apply when: the object is not in view",
        "general",
    )
    assert by_id["gen_002"].text == "Copy actions."
    assert by_id["pp_002"] == Skill(
        "pp_002", "pick_and_place", "Open", "Open it first.", "pick_and_place"
    )
    mistake = by_id["err_001"]
    assert (mistake.category, mistake.source) == ("mistakes", "common_mistakes")
    assert mistake.text == (
        "Repeating a failed action. Why it happens: the agent ignores the observation "
        "Instead: try something else"
    )
    # Without a mapping each category serves the task types that contain its name.
    assert bank.sources_for("pick_heat_then_place_in_recep") == ("heat",)
    assert bank.sources_for("pick_and_place_simple") == ("pick_and_place",)
    assert bank.sources_for("pick_two_obj_and_place") == ()


def test_json_bank_without_mistakes(tmp_path: Path) -> None:
    bank = load_bank(write_json(tmp_path / "bank.json", SKILLRL_BANK), include_mistakes=False)
    assert bank.general_sources == ("general",)
    assert "err_001" not in {s.id for s in bank.skills}
    assert "common_mistakes" not in bank.sources()


def test_json_bank_explicit_mapping_and_task_types(tmp_path: Path) -> None:
    data = dict(
        SKILLRL_BANK, mapping={"pick_two_obj_and_place": ["pick_and_place"], "heat": "heat"}
    )
    bank = load_bank(write_json(tmp_path / "bank.json", data))
    assert bank.sources_for("pick_two_obj_and_place") == ("pick_and_place",)
    assert bank.sources_for("pick_heat_then_place_in_recep") == ("heat",)
    assert bank.sources_for("pick_and_place_simple") == ()  # not mapped any more
    resolved = load_bank(
        tmp_path / "bank.json", task_types=["pick_heat_then_place_in_recep", "look"]
    )
    assert dict(resolved.mapping) == {"pick_heat_then_place_in_recep": ("heat",), "look": ()}


def test_json_bank_folder_with_one_json(tmp_path: Path) -> None:
    write_json(tmp_path / "claude_style_skills.json", SKILLRL_BANK)
    assert load_bank(tmp_path).task_sources() == ("heat", "pick_and_place")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"general_skills": {"a": 1}}, "general_skills: expected a list"),
        ({"general_skills": ["text"]}, "general_skills[0]: expected an object"),
        ({"general_skills": [{"skill_id": "x"}]}, "general_skills[0]: a skill needs"),
        ({"task_specific_skills": [1]}, "task_specific_skills must map"),
        (
            {"general_skills": [{"title": "a"}], "common_mistakes": [{"how_to_avoid": "x"}]},
            "common_mistakes[0]: a common mistake needs a 'description'",
        ),
        (dict(SKILLRL_BANK, mapping={"heat_task": ["cool"]}), "mapping.heat_task names unknown"),
        (
            {"general_skills": [{"skill_id": "a", "title": "x"}, {"skill_id": "a", "title": "y"}]},
            "duplicate skill id 'a'",
        ),
        ([1, 2], "expected a JSON object"),
        ({"metadata": {}}, "holds no skills"),
    ],
)
def test_json_bank_errors(tmp_path: Path, data: object, message: str) -> None:
    path = write_json(tmp_path / "bank.json", data)
    with pytest.raises(SkillBankError, match=re.escape(message)) as info:
        load_bank(path)
    assert "bank.json" in str(info.value)


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bank.json"
    path.write_text('{"general_skills": [\n  {"title": "a",}\n]}')
    with pytest.raises(SkillBankError, match=r"malformed JSON in .*bank\.json, line 2"):
        load_bank(path)


# ----------------------------------------------------------------------------------------
# Markdown folders
# ----------------------------------------------------------------------------------------

GENERAL_MD = """### GENERAL SKILLS ###
1. Systematic search: Visit each receptacle once. Apply this when the object is hidden.
2. Exact names: Copy the action text
   from the admissible list. Apply this at every step.
"""

HEAT_MD = """### TASK: heat ###
1. Microwave: Heat the object with the microwave. Apply this when the goal says hot.
2) Deliver after heating: Move it to the target. Apply this after heating.
"""

NOTES_MD = """Always double-check the goal.
It names the object and the place.
"""


def make_md_bank(folder: Path, mapping: object | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "general_skills.md").write_text(GENERAL_MD)
    (folder / "heat.md").write_text(HEAT_MD)
    (folder / "notes.md").write_text(NOTES_MD)
    if mapping is not None:
        write_json(folder / "skill_mapping.json", mapping)
    return folder


def test_markdown_item_parsing() -> None:
    skills = parse_markdown_skills(GENERAL_MD, "general_skills.md")
    assert skills == [
        Skill(
            "general_skills_01",
            "general",
            "Systematic search",
            "Visit each receptacle once. Apply this when the object is hidden.",
            "general_skills.md",
        ),
        Skill(
            "general_skills_02",
            "general",
            "Exact names",
            "Copy the action text from the admissible list. Apply this at every step.",
            "general_skills.md",
        ),
    ]
    heat = parse_markdown_skills(HEAT_MD, "heat.md")
    assert [(s.id, s.category, s.title) for s in heat] == [
        ("heat_01", "heat", "Microwave"),
        ("heat_02", "heat", "Deliver after heating"),
    ]


def test_markdown_file_without_items_is_one_skill() -> None:
    skills = parse_markdown_skills("# Notes\n" + NOTES_MD, "notes.md")
    assert skills == [
        Skill(
            "notes_01",
            "notes",
            "",
            "Always double-check the goal. It names the object and the place.",
            "notes.md",
        )
    ]


def test_markdown_item_without_name_keeps_whole_text() -> None:
    (skill,) = parse_markdown_skills("1. Look around first. Then act: carefully.", "x.md")
    assert (skill.title, skill.text) == ("", "Look around first. Then act: carefully.")


def test_markdown_folder_with_mapping(tmp_path: Path) -> None:
    folder = make_md_bank(
        tmp_path / "bank",
        {
            "pick_heat_then_place_in_recep": "heat.md",
            "pick_two_obj_and_place": ["notes.md", "heat.md"],
        },
    )
    bank = load_bank(folder)
    assert bank.general_sources == ("general_skills.md",)
    assert bank.sources() == ("general_skills.md", "heat.md", "notes.md")
    assert bank.sources_for("pick_heat_then_place_in_recep") == ("heat.md",)
    assert bank.sources_for("pick_two_obj_and_place") == ("notes.md", "heat.md")
    assert [s.id for s in bank.skills_of(["notes.md", "general_skills.md"])] == [
        "notes_01",
        "general_skills_01",
        "general_skills_02",
    ]


def test_markdown_folder_without_mapping_routes_by_stem(tmp_path: Path) -> None:
    bank = load_bank(make_md_bank(tmp_path / "bank"))
    assert bank.general_sources == ("general_skills.md",)
    assert bank.task_sources() == ("heat.md", "notes.md")  # sorted file names
    assert bank.sources_for("pick_heat_then_place_in_recep") == ("heat.md",)
    assert bank.sources_for("pick_and_place_simple") == ()


def test_markdown_general_key(tmp_path: Path) -> None:
    folder = make_md_bank(tmp_path / "bank", {"_general": ["notes.md"], "heat": "heat.md"})
    bank = load_bank(folder)
    assert bank.general_sources == ("notes.md",)
    assert bank.task_sources() == ("heat.md",)  # general_skills.md is not named: not loaded


def test_substring_routing_prefers_longest_key() -> None:
    bank = SkillBank(
        (Skill("a", "x", "", "t", "pick.md"), Skill("b", "x", "", "t", "pick_two.md")),
        {"pick": ("pick.md",), "pick_two": ("pick_two.md",)},
    )
    assert bank.sources_for("pick_two_obj_and_place") == ("pick_two.md",)
    assert bank.sources_for("pick_and_place_simple") == ("pick.md",)


def test_markdown_mapping_naming_a_missing_file(tmp_path: Path) -> None:
    folder = make_md_bank(tmp_path / "bank", {"pick_heat_then_place_in_recep": "hot.md"})
    with pytest.raises(
        SkillBankError, match=r"pick_heat_then_place_in_recep names unknown file\(s\) hot\.md"
    ):
        load_bank(folder)


def test_markdown_general_key_naming_a_missing_file(tmp_path: Path) -> None:
    folder = make_md_bank(tmp_path / "bank", {"_general": "gen.md", "heat": "heat.md"})
    with pytest.raises(SkillBankError, match=r"_general names missing file\(s\) gen\.md"):
        load_bank(folder)


def test_malformed_mapping(tmp_path: Path) -> None:
    folder = make_md_bank(tmp_path / "bank")
    (folder / "skill_mapping.json").write_text('{"heat": "heat.md"')
    with pytest.raises(SkillBankError, match=r"malformed JSON in .*skill_mapping\.json"):
        load_bank(folder)


def test_missing_bank(tmp_path: Path) -> None:
    with pytest.raises(SkillBankError, match=r"not found.*shipped: .*alfworld"):
        load_bank("no_such_bank")
    with pytest.raises(SkillBankError, match="not found"):
        load_bank(tmp_path / "missing.json")
    with pytest.raises(SkillBankError, match="no skill bank given"):
        load_bank("")


def test_unsupported_file(tmp_path: Path) -> None:
    path = tmp_path / "skills.txt"
    path.write_text("1. A: b")
    with pytest.raises(SkillBankError, match=r"expected a \.json file or a folder"):
        load_bank(path)


# ----------------------------------------------------------------------------------------
# The shipped ALFWorld bank
# ----------------------------------------------------------------------------------------


def test_shipped_alfworld_bank() -> None:
    assert "alfworld" in shipped_banks()
    bank = load_bank("alfworld", task_types=TASK_TYPE_NAMES)
    assert bank.path == str(BANKS_DIR / "alfworld")
    assert bank.sources() == (
        "general_skills.md",
        "pick_and_place.md",
        "look_at_obj_in_light.md",
        "clean.md",
        "heat.md",
        "cool.md",
    )
    assert bank.general_sources == ("general_skills.md",)
    assert dict(bank.mapping) == {t: (f,) for t, f in ALFWORLD_FILES.items()}
    counts = {s: len(bank.skills_of([s])) for s in bank.sources()}
    assert 8 <= counts.pop("general_skills.md") <= 12
    assert all(4 <= n <= 8 for n in counts.values()), counts
    for skill in bank.skills:
        assert skill.title, skill
        assert skill.text, skill
        assert ". Apply this " in skill.text, skill  # "Name: principle. Apply this ..."
    # The benchmark's verbs for the transformations are named in their files.
    texts = {s: " ".join(k.text for k in bank.skills_of([s])) for s in bank.sources()}
    assert "with microwave" in texts["heat.md"]
    assert "with fridge" in texts["cool.md"]
    assert "with sinkbasin" in texts["clean.md"]
    assert "use desklamp" in texts["look_at_obj_in_light.md"]


def test_shipped_bank_routes_full_and_path_forms(tmp_path: Path) -> None:
    bank = load_bank(BANKS_DIR / "alfworld")
    for task_type, file in ALFWORLD_FILES.items():
        assert bank.sources_for(task_type) == (file,)


def test_shipped_name_wins_over_a_local_folder(tmp_path: Path, monkeypatch, caplog) -> None:
    (tmp_path / "alfworld").mkdir()  # e.g. the benchmark's data folder
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("WARNING", logger="skillzero.plugins.skills.bank"):
        bank = load_bank("alfworld", task_types=TASK_TYPE_NAMES)
    assert bank.path == str(BANKS_DIR / "alfworld")
    assert caplog.text == ""  # every ALFWorld task type is served, every key used
    with pytest.raises(SkillBankError, match=re.escape("neither skill_mapping.json")):
        load_bank("./alfworld")
    with pytest.raises(SkillBankError, match=re.escape(f"folder {tmp_path}")):
        load_bank(".")  # the working directory, not the folder of shipped banks
