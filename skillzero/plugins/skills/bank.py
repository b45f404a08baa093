"""Skill banks: the skills a provider chooses from, grouped into *sources*.

A :class:`SkillBank` is a list of :class:`~skillzero.contracts.skills.Skill` objects, each
tagged with the source it came from (a Markdown file, or a category of a JSON bank), plus
a mapping from task types to the task-specific sources that serve them. *General*
sources serve every task. A source is the unit a curriculum ranks and withdraws.

Two on-disk formats are read by :func:`load_bank` (see ``docs/skills.md``):

**SkillRL-style JSON** (one file)::

    {"general_skills": [{"skill_id", "title", "principle", "when_to_apply"}, ...],
     "task_specific_skills": {"<category>": [same fields, ...], ...},
     "common_mistakes": [{"mistake_id", "description", "why_it_happens",
                          "how_to_avoid"}, ...],
     "mapping": {"<task_type>": ["<category>", ...], ...}}      # optional

Sources: ``general``, ``common_mistakes`` (general too, unless ``include_mistakes`` is
off) and one per category. Without ``mapping``, each category serves the task types
whose name contains it (``heat`` serves ``pick_heat_then_place_in_recep``).

**A folder of Markdown files** with ``skill_mapping.json`` (the SKILL0 / SDAR layout)::

    general_skills.md          ### GENERAL SKILLS ###
                               1. Name: principle. Apply this when ...
    heat.md                    ### TASK: heat ###
                               1. Name: principle. Apply this when ...
    skill_mapping.json         {"pick_heat_then_place_in_recep": "heat.md", ...}

Each file is a source named by its file name; ``general_skills.md`` (or the files listed
under the optional ``_general`` key of the mapping) are the general sources. Each
numbered item becomes one skill (title: the text before the first ``:``); a file without
numbered items is one skill. Without ``skill_mapping.json`` every ``*.md`` file is loaded
and mapped by its stem (substring routing as above).

A bank *name* without a path (``skills.bank=alfworld``) names a bank shipped in
``skillzero/plugins/skills/banks/<name>/`` (even when the working directory has a folder
of that name: write ``./alfworld`` for that one).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillzero.contracts.skills import Skill

__all__ = [
    "BANKS_DIR",
    "GENERAL_FILE",
    "MAPPING_FILE",
    "SkillBank",
    "SkillBankError",
    "load_bank",
    "parse_markdown_skills",
    "shipped_banks",
]

log = logging.getLogger(__name__)

BANKS_DIR = Path(__file__).resolve().parent / "banks"
"""Where the banks shipped with skillzero live (one folder per bank name)."""

GENERAL_FILE = "general_skills.md"
MAPPING_FILE = "skill_mapping.json"
GENERAL_KEY = "_general"
"""Optional key of ``skill_mapping.json`` naming the general file(s)."""

JSON_GENERAL_SOURCE = "general"
JSON_MISTAKES_SOURCE = "common_mistakes"


class SkillBankError(ValueError):
    """A skill bank that cannot be found or read; the message names the path or key."""


@dataclass(frozen=True)
class SkillBank:
    """Skills grouped into sources, with task-type routing.

    ``skills`` are in bank order (general sources first, then task sources in the order
    they were declared). ``mapping`` maps a task type (or a substring of task types, see
    :meth:`sources_for`) to its task-specific sources. ``general_sources`` serve every
    task.
    """

    skills: tuple[Skill, ...]
    mapping: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    general_sources: tuple[str, ...] = ()
    path: str = ""

    def sources(self) -> tuple[str, ...]:
        """Every source, in bank order (general sources first)."""
        found = dict.fromkeys(self.general_sources)
        found.update(dict.fromkeys(s.source for s in self.skills))
        return tuple(found)

    def task_sources(self) -> tuple[str, ...]:
        """The task-specific sources (every source that is not general), in bank order."""
        general = set(self.general_sources)
        return tuple(s for s in self.sources() if s not in general)

    def skills_of(self, sources: Iterable[str]) -> list[Skill]:
        """The skills of ``sources``, grouped in the order the sources are given."""
        by_source: dict[str, list[Skill]] = {}
        for skill in self.skills:
            by_source.setdefault(skill.source, []).append(skill)
        return [skill for source in dict.fromkeys(sources) for skill in by_source.get(source, [])]

    def sources_for(self, task_type: str) -> tuple[str, ...]:
        """The task-specific sources that serve ``task_type``.

        An exact mapping key wins; otherwise the longest key contained in ``task_type``
        (so ``heat`` serves ``pick_heat_then_place_in_recep``); otherwise none.
        """
        if task_type in self.mapping:
            return self.mapping[task_type]
        contained = [key for key in self.mapping if key and key in task_type]
        if not contained:
            return ()
        # Longest key first; among equally long keys the first declared (deterministic).
        best = max(contained, key=len)
        return self.mapping[best]

    def resolve(self, task_types: Sequence[str]) -> SkillBank:
        """A copy whose mapping has exactly one entry per task type of ``task_types``
        (substring keys resolved). Logs a warning for task types no source serves and
        for mapping keys that match no task type (likely typos)."""
        mapping = {t: self.sources_for(t) for t in task_types}
        unserved = [t for t, sources in mapping.items() if not sources]
        if unserved and self.task_sources():
            log.warning(
                "skill bank %s: no task-specific source for task type(s) %s; "
                "they get the general skills only",
                self.path or "(in memory)",
                ", ".join(unserved),
            )
        unused = [k for k in self.mapping if not any(k == t or k in t for t in task_types)]
        if unused:
            log.warning(
                "skill bank %s: mapping key(s) %s match none of the task types %s",
                self.path or "(in memory)",
                ", ".join(unused),
                ", ".join(task_types),
            )
        return SkillBank(self.skills, mapping, self.general_sources, self.path)


# ----------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------


def shipped_banks() -> list[str]:
    """Names of the banks shipped with skillzero."""
    if not BANKS_DIR.is_dir():
        return []
    return sorted(p.name for p in BANKS_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))


def _locate(path_or_name: str | Path) -> Path:
    name = str(path_or_name)
    # A bare shipped-bank name wins over a same-named folder in the working directory
    # (an ALFWorld data folder called "alfworld" is common); ./alfworld names the folder.
    if name in shipped_banks():
        return BANKS_DIR / name
    path = Path(name).expanduser()
    if path.exists():
        return path.resolve()  # absolute: messages and logs name the real place
    raise SkillBankError(
        f"skill bank {name!r} not found: not a file or folder, and not a shipped bank "
        f"(shipped: {', '.join(shipped_banks()) or 'none'})"
    )


def load_bank(
    path_or_name: str | Path,
    task_types: Sequence[str] | None = None,
    *,
    include_mistakes: bool = True,
) -> SkillBank:
    """Load a skill bank from a JSON file, a folder of Markdown files, or a shipped
    bank's name.

    With ``task_types``, the mapping is resolved for exactly those task types (see
    :meth:`SkillBank.resolve`). ``include_mistakes`` (JSON banks) keeps the
    ``common_mistakes`` entries as a general source. Raises :class:`SkillBankError`.
    """
    if path_or_name is None or str(path_or_name).strip() == "":
        raise SkillBankError("no skill bank given: set skills.bank to a bank name or path")
    path = _locate(path_or_name)
    if path.is_dir():
        if (path / MAPPING_FILE).is_file() or any(path.glob("*.md")):
            bank = _load_markdown_folder(path)
        else:
            candidates = sorted(path.glob("*.json"))
            if len(candidates) != 1:
                raise SkillBankError(
                    f"skill bank folder {path} has neither {MAPPING_FILE} nor Markdown "
                    f"files, and not exactly one JSON bank (found {len(candidates)})"
                )
            bank = _load_json(candidates[0], include_mistakes)
    elif path.suffix.lower() == ".json":
        bank = _load_json(path, include_mistakes)
    else:
        raise SkillBankError(
            f"skill bank {path}: expected a .json file or a folder of Markdown files "
            f"with {MAPPING_FILE}"
        )
    if not bank.skills:
        raise SkillBankError(f"skill bank {path} holds no skills")
    return bank.resolve(task_types) if task_types is not None else bank


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SkillBankError(f"cannot read {path}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SkillBankError(
            f"malformed JSON in {path}, line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


# -- SkillRL JSON -------------------------------------------------------------------------


def _json_skill(entry: Any, where: str, category: str, source: str, index: int) -> Skill:
    if not isinstance(entry, Mapping):
        raise SkillBankError(f"{where}: expected an object with title/principle, got {entry!r}")
    principle = str(entry.get("principle") or entry.get("text") or "").strip()
    title = str(entry.get("title") or "").strip()
    if not principle and not title:
        raise SkillBankError(f"{where}: a skill needs a 'title' or a 'principle'")
    when = str(entry.get("when_to_apply") or "").strip()
    text = principle
    if when:
        text = f"{text} Apply when: {when}" if text else f"Apply when: {when}"
    skill_id = str(entry.get("skill_id") or f"{source}_{index + 1:03d}")
    return Skill(skill_id, category, title, text, source)


def _json_mistake(entry: Any, where: str, index: int) -> Skill:
    if not isinstance(entry, Mapping):
        raise SkillBankError(f"{where}: expected an object with description/how_to_avoid")
    description = str(entry.get("description") or "").strip()
    if not description:
        raise SkillBankError(f"{where}: a common mistake needs a 'description'")
    parts = [description.rstrip(".") + "."]
    why = str(entry.get("why_it_happens") or "").strip()
    avoid = str(entry.get("how_to_avoid") or "").strip()
    if why:
        parts.append(f"Why it happens: {why}")
    if avoid:
        parts.append(f"Instead: {avoid}")
    mistake_id = str(entry.get("mistake_id") or f"mistake_{index + 1:03d}")
    return Skill(mistake_id, "mistakes", "Avoid", " ".join(parts), JSON_MISTAKES_SOURCE)


def _as_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SkillBankError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _load_json(path: Path, include_mistakes: bool) -> SkillBank:
    data = _read_json(path)
    if not isinstance(data, Mapping):
        raise SkillBankError(f"{path}: expected a JSON object with 'general_skills' etc.")
    skills: list[Skill] = []
    general = [
        _json_skill(e, f"{path}: general_skills[{i}]", "general", JSON_GENERAL_SOURCE, i)
        for i, e in enumerate(_as_list(data.get("general_skills"), f"{path}: general_skills"))
    ]
    skills += general
    general_sources = [JSON_GENERAL_SOURCE] if general else []
    if include_mistakes:
        where = f"{path}: common_mistakes"
        mistakes = [
            _json_mistake(e, f"{where}[{i}]", i)
            for i, e in enumerate(_as_list(data.get("common_mistakes"), where))
        ]
        skills += mistakes
        if mistakes:
            general_sources.append(JSON_MISTAKES_SOURCE)
    specific = data.get("task_specific_skills") or {}
    if not isinstance(specific, Mapping):
        raise SkillBankError(f"{path}: task_specific_skills must map category -> list")
    for category, entries in specific.items():
        where = f"{path}: task_specific_skills.{category}"
        skills += [
            _json_skill(e, f"{where}[{i}]", str(category), str(category), i)
            for i, e in enumerate(_as_list(entries, where))
        ]
    categories = [str(c) for c in specific]
    raw_mapping = data.get("mapping")
    if raw_mapping is None:
        mapping = {c: (c,) for c in categories}
    else:
        mapping = _read_mapping(raw_mapping, f"{path}: mapping", set(categories), "category")
    _check_unique_ids(skills, path)
    return SkillBank(tuple(skills), mapping, tuple(general_sources), str(path))


def _read_mapping(raw: Any, where: str, known: set[str], what: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise SkillBankError(f"{where}: expected an object task_type -> {what} or [{what}s]")
    mapping: dict[str, tuple[str, ...]] = {}
    for task_type, value in raw.items():
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SkillBankError(f"{where}.{task_type}: expected a {what} or a list of them")
        missing = [n for n in names if n not in known]
        if missing:
            raise SkillBankError(
                f"{where}.{task_type} names unknown {what}(s) {', '.join(missing)}; "
                f"known: {', '.join(sorted(known)) or 'none'}"
            )
        mapping[str(task_type)] = tuple(dict.fromkeys(names))
    return mapping


def _check_unique_ids(skills: Sequence[Skill], path: Path) -> None:
    seen: set[str] = set()
    for skill in skills:
        if skill.id in seen:
            raise SkillBankError(f"{path}: duplicate skill id {skill.id!r}")
        seen.add(skill.id)


# -- Markdown folder ----------------------------------------------------------------------

_HEADER = re.compile(r"^\s*#{1,6}\s*(.*?)\s*#*\s*$")
_ITEM = re.compile(r"^\s*(\d+)[.)]\s+(.*\S)\s*$")
_TASK_HEADER = re.compile(r"^TASK\s*:\s*(.+)$", re.IGNORECASE)
_GENERAL_HEADER = re.compile(r"^GENERAL(\s+SKILLS)?$", re.IGNORECASE)
_MAX_TITLE_CHARS = 80


def _split_title(item: str) -> tuple[str, str]:
    """``"Name: principle"`` -> (``"Name"``, ``"principle"``); ``("", item)`` when the
    text before the first colon does not look like a name."""
    head, sep, rest = item.partition(":")
    title = head.strip().strip("*_ ").strip()
    if sep and title and rest.strip() and len(title) <= _MAX_TITLE_CHARS and ". " not in title:
        return title, rest.strip().lstrip("*_ ").strip()
    return "", item.strip()


def parse_markdown_skills(text: str, source: str, category: str | None = None) -> list[Skill]:
    """The skills of one Markdown skill file.

    Header lines (``### GENERAL SKILLS ###``, ``### TASK: heat ###``, any ``#`` line) are
    not skills; a ``TASK: x`` header sets the category to ``x`` and a ``GENERAL`` header
    to ``general``, unless ``category`` is given. Each numbered item (``1. Name: ...``,
    continued on the following unnumbered lines) is one skill; text outside numbered
    items is one skill per paragraph (a blank line ends an item or a paragraph). A file
    with no numbered items is one skill.
    Ids are ``<file stem>_<nn>`` in file order.
    """
    stem = Path(source).stem
    found_category = category
    blocks: list[list[str]] = []  # the lines of each item or loose paragraph
    current: list[str] | None = None
    has_items = False
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header and not _ITEM.match(line):
            label = header.group(1).strip()
            if found_category is None:
                task = _TASK_HEADER.match(label)
                if task:
                    found_category = task.group(1).strip()
                elif _GENERAL_HEADER.match(label):
                    found_category = "general"
            current = None
            continue
        item = _ITEM.match(line)
        if item:
            current = [item.group(2)]
            blocks.append(current)
            has_items = True
        elif not line.strip():
            current = None  # a blank line ends an item or a paragraph
        else:
            if current is None:
                current = []
                blocks.append(current)
            current.append(line.strip())
    texts = [" ".join(block).strip() for block in blocks]
    texts = [t for t in texts if t]
    if not has_items:
        texts = [" ".join(texts)] if texts else []
    skills = []
    for i, item_text in enumerate(texts, start=1):
        title, body = _split_title(item_text) if has_items else ("", item_text)
        skills.append(Skill(f"{stem}_{i:02d}", found_category or stem, title, body, source))
    return skills


def _load_markdown_folder(folder: Path) -> SkillBank:
    mapping_path = folder / MAPPING_FILE
    present = {p.name for p in folder.glob("*.md") if p.name.lower() != "readme.md"}
    if mapping_path.is_file():
        raw = _read_json(mapping_path)
        if not isinstance(raw, Mapping):
            raise SkillBankError(f"{mapping_path}: expected an object task_type -> file(s)")
        raw = dict(raw)
        general_value = raw.pop(GENERAL_KEY, None)
        where = str(mapping_path)
        mapping = _read_mapping(raw, where, present, "file")
        if general_value is None:
            general_files = [GENERAL_FILE] if GENERAL_FILE in present else []
        else:
            general_files = [general_value] if isinstance(general_value, str) else general_value
            missing = [f for f in general_files if f not in present]
            if missing:
                raise SkillBankError(
                    f"{where}.{GENERAL_KEY} names missing file(s) {', '.join(missing)} in {folder}"
                )
        task_files = [f for files in mapping.values() for f in files if f not in general_files]
    else:
        general_files = [GENERAL_FILE] if GENERAL_FILE in present else []
        task_files = sorted(present - set(general_files))
        mapping = {Path(f).stem: (f,) for f in task_files}
    skills: list[Skill] = []
    for name in dict.fromkeys([*general_files, *task_files]):
        file = folder / name
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise SkillBankError(f"cannot read skill file {file}: {exc}") from None
        category = "general" if name in general_files else None
        parsed = parse_markdown_skills(text, name, category)
        if not parsed:
            raise SkillBankError(f"skill file {file} holds no skills")
        skills += parsed
    _check_unique_ids(skills, folder)
    # A general file named in the mapping is served to everyone anyway.
    mapping = {t: tuple(f for f in files if f not in general_files) for t, files in mapping.items()}
    return SkillBank(tuple(skills), mapping, tuple(general_files), str(folder))
