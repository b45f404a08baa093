"""The generated QA world: fictional entities, a wiki-18 style corpus and questions.

No realistic Wikipedia corpus can ship with skillzero, so the default Search-QA task is
a closed world made up from a seed: countries, cities, rivers, universities, people,
companies and creative works with invented names, each described by one passage, and
questions whose answers are facts of those passages. Because every name is invented, a
model cannot know the answers: it has to search.

``skillzero search generate --out DIR --seed S`` writes

- ``corpus.jsonl``: one passage per entity in the wiki-18 format,
  ``{"id": "12", "contents": "\\"Title\\"\\ntext"}``;
- ``train.jsonl`` and ``test.jsonl``: questions in the FlashRAG format the real sets use,
  ``{"id", "question", "golden_answers", "data_source"}`` plus ``supporting_titles``
  (the passages that answer it, in order) and ``expert_queries``. ``data_source`` is
  ``synthetic_1hop`` (one passage answers it: "In which city was Orvane Talsk born?")
  or ``synthetic_2hop`` (a bridge entity first: "In which city was the author of the
  novel The Glass Orchard born?");
- ``world.json``: the generator version, seed and counts.

Output is identical for the same seed and generator version. No answer appears in its
question. The default world (``env.splits`` null) is generated on first use into
``$XDG_CACHE_HOME/skillzero/search-world/v<version>-seed<seed>/`` together with its BM25
index, under a lock and through a temporary folder, so concurrent first uses do not
collide and a half-written world is never used.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillzero.core.config import cfg_get
from skillzero.plugins.search.datasets import SYNTHETIC_SOURCES
from skillzero.plugins.search.scoring import normalize_answer

__all__ = [
    "WORLD_SPLITS",
    "WORLD_VERSION",
    "WorldSizes",
    "ensure_world",
    "ensure_world_for",
    "ensure_world_index",
    "generate_world",
    "world_dir_for",
]

WORLD_VERSION = 1
WORLD_SPLITS: dict[str, str] = {"train": "train.jsonl", "test": "test.jsonl"}
MANIFEST = "world.json"
CORPUS = "corpus.jsonl"
SINGLE_HOP, TWO_HOP = SYNTHETIC_SOURCES


@dataclass(frozen=True)
class WorldSizes:
    """How many entities of each kind, and test questions of each kind."""

    countries: int = 8
    cities: int = 40
    rivers: int = 16
    universities: int = 12
    people: int = 240
    companies: int = 60
    works: int = 160
    test_per_kind: int = 100

    @classmethod
    def small(cls) -> WorldSizes:
        """A world of ~70 passages for tests."""
        return cls(4, 10, 4, 4, 30, 8, 16, 10)


# ----------------------------------------------------------------------------------------
# vocabulary
# ----------------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_ONSETS = _words("b d f g h k l m n p r s t v z br dr gr kr st th tr sh ch fl pl sk sl")
_VOWELS = _words("a e i o u ae ou ia ei oa")
_CODAS: tuple[str, ...] = ("", "", "", "n", "r", "l", "s", "th", "nd", "rk", "x", "m", "v")
_OCCUPATIONS = _words(
    "botanist cartographer composer astronomer sculptor architect chemist poet engineer "
    "historian painter physician linguist geologist violinist economist philosopher "
    "glassblower clockmaker surveyor"
)
_INDUSTRIES = _words(
    "shipping textile printing brewing mining railway porcelain publishing insurance telegraph"
)
_ADJECTIVES = _words(
    "Glass Silent Amber Hollow Crimson Distant Paper Iron Quiet Golden Broken Winter "
    "Silver Velvet Burning Salt Wandering Last Pale Hidden Copper Evening Bitter Little"
)
_NOUNS = _words(
    "Orchard Lantern Harbour Mirror Garden Bridge Tower Meadow Compass Letter River Clock "
    "Window Feather Crown Island Road Violin Ledger Forest Kingdom Map Shadow"
)
_CURRENCY_UNITS = _words("crown mark florin thaler sovereign pound")
_WORK_KINDS: tuple[tuple[str, str, str, str], ...] = (
    # kind, participle, role noun, question verb
    ("novel", "written", "author", "wrote"),
    ("film", "directed", "director", "directed"),
    ("album", "recorded", "performer", "recorded"),
)


class _Names:
    """Invented names whose words never repeat, so that no name contains another."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set(w.lower() for w in (*_ADJECTIVES, *_NOUNS))

    def word(self, syllables: int | None = None) -> str:
        for _ in range(10000):
            count = syllables or self.rng.choice((2, 2, 3))
            parts = []
            for index in range(count):
                coda = self.rng.choice(_CODAS) if index == count - 1 else ""
                parts.append(self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + coda)
            word = "".join(parts).capitalize()
            if len(word) >= 4 and word.lower() not in self.used:
                self.used.add(word.lower())
                return word
        raise RuntimeError("ran out of invented names")  # not reached with these sizes


# ----------------------------------------------------------------------------------------
# the world
# ----------------------------------------------------------------------------------------


@dataclass
class _Entity:
    kind: str
    name: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class _World:
    countries: list[_Entity]
    cities: list[_Entity]
    rivers: list[_Entity]
    universities: list[_Entity]
    people: list[_Entity]
    companies: list[_Entity]
    works: list[_Entity]

    def all(self) -> list[_Entity]:
        return [
            *self.countries,
            *self.cities,
            *self.rivers,
            *self.universities,
            *self.people,
            *self.companies,
            *self.works,
        ]


def _build_world(rng: random.Random, sizes: WorldSizes) -> _World:
    names = _Names(rng)
    countries = []
    for _ in range(sizes.countries):
        stem = names.word()
        country = _Entity("country", stem + rng.choice(("ia", "land", "mark", "ovia")))
        country.facts["currency"] = f"{names.word(2).lower()} {rng.choice(_CURRENCY_UNITS)}"
        countries.append(country)
    cities = []
    for index in range(sizes.cities):
        city = _Entity("city", names.word())
        city.facts["country"] = countries[index % len(countries)]
        city.facts["founded"] = rng.randint(900, 1700)
        cities.append(city)
    for country in countries:
        own = [c for c in cities if c.facts["country"] is country]
        country.facts["capital"] = own[0]
        country.facts["cities"] = own
    rivers = []
    for index in range(sizes.rivers):
        river = _Entity("river", f"{names.word()} River")
        country = countries[index % len(countries)]
        own = [c for c in cities if c.facts["country"] is country and "river" not in c.facts]
        through = own[: rng.randint(1, 2)]
        for city in through:
            city.facts["river"] = river
        river.facts["country"] = country
        river.facts["cities"] = through
        rivers.append(river)
    universities = []
    for _ in range(sizes.universities):
        city = rng.choice(cities)
        kind = rng.choice(("University", "College", "Institute"))
        university = _Entity("university", f"{names.word()} {kind}")
        university.facts["city"] = city
        university.facts["founded"] = rng.randint(1200, 1850)
        universities.append(university)
    people = []
    for _ in range(sizes.people):
        person = _Entity("person", f"{names.word(2)} {names.word()}")
        person.facts["born"] = rng.randint(1750, 1960)
        person.facts["city"] = rng.choice(cities)
        person.facts["occupation"] = rng.choice(_OCCUPATIONS)
        person.facts["university"] = rng.choice(universities)
        person.facts["works"] = []
        person.facts["companies"] = []
        people.append(person)
    companies = []
    for index in range(sizes.companies):
        founder = people[(index * 7) % len(people)]
        company = _Entity("company", f"{names.word()} {rng.choice(_INDUSTRIES).capitalize()}")
        company.facts["founder"] = founder
        company.facts["city"] = rng.choice(cities)
        company.facts["founded"] = founder.facts["born"] + rng.randint(22, 60)
        company.facts["industry"] = company.name.rsplit(" ", 1)[1].lower()
        founder.facts["companies"].append(company)
        companies.append(company)
    titles: set[str] = set()
    works = []
    for index in range(sizes.works):
        while True:
            title = f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
            if title not in titles:
                titles.add(title)
                break
        kind = _WORK_KINDS[index % len(_WORK_KINDS)]
        creator = people[(index * 13 + 5) % len(people)]
        work = _Entity("work", title)
        work.facts["kind"] = kind
        work.facts["creator"] = creator
        work.facts["year"] = creator.facts["born"] + rng.randint(20, 70)
        creator.facts["works"].append(work)
        works.append(work)
    return _World(countries, cities, rivers, universities, people, companies, works)


def _surname(person: _Entity) -> str:
    return person.name.split(" ", 1)[1]


def _passage(entity: _Entity) -> str:
    """The text of an entity's passage (without its title line)."""
    f = entity.facts
    name = entity.name
    if entity.kind == "country":
        others = [c.name for c in f["cities"][1:4]]
        text = f"{name} is a country whose capital is {f['capital'].name}. Its currency is the "
        text += f"{f['currency']}."
        if others:
            text += f" Other cities of {name} include {', '.join(others)}."
        return text
    if entity.kind == "city":
        text = f"{name} is a city in {f['country'].name}, founded in {f['founded']}."
        if "river" in f:
            text += f" The {f['river'].name} flows through it."
        return text
    if entity.kind == "river":
        cities = " and ".join(c.name for c in f["cities"]) or "no large city"
        return f"The {name} is a river in {f['country'].name}. It flows through {cities}."
    if entity.kind == "university":
        return f"{name} is a university in the city of {f['city'].name}, founded in {f['founded']}."
    if entity.kind == "person":
        # no mention of the person's works or companies: a question that starts from a
        # work needs a second search to learn about its author (two hops)
        return (
            f"{name} (born {f['born']}) is a {f['occupation']}. {_surname(entity)} was born "
            f"in {f['city'].name} and studied at {f['university'].name}."
        )
    if entity.kind == "company":
        return (
            f"{name} is a {f['industry']} company headquartered in {f['city'].name}. It was "
            f"founded in {f['founded']} by {f['founder'].name}."
        )
    kind, participle, _, _ = f["kind"]
    article = "an" if str(f["year"]).startswith(("18", "8", "11")) else "a"
    return f"{name} is {article} {f['year']} {kind} {participle} by {f['creator'].name}."


@dataclass(frozen=True)
class _Question:
    question: str
    answer: str
    data_source: str
    titles: tuple[str, ...]


def _questions(world: _World) -> list[_Question]:
    out: list[_Question] = []

    def add(question: str, answer: Any, source: str, *titles: str) -> None:
        out.append(_Question(question, str(answer), source, titles))

    for p in world.people:
        f = p.facts
        add(f"In which city was {p.name} born?", f["city"].name, SINGLE_HOP, p.name)
        add(f"In what year was {p.name} born?", f["born"], SINGLE_HOP, p.name)
        add(f"Which university did {p.name} attend?", f["university"].name, SINGLE_HOP, p.name)
        add(f"What is the profession of {p.name}?", f["occupation"], SINGLE_HOP, p.name)
        add(
            f"In which country was {p.name} born?",
            f["city"].facts["country"].name,
            TWO_HOP,
            p.name,
            f["city"].name,
        )
        add(
            f"In which city is the university that {p.name} attended?",
            f["university"].facts["city"].name,
            TWO_HOP,
            p.name,
            f["university"].name,
        )
    for w in world.works:
        kind, _, role, verb = w.facts["kind"]
        creator = w.facts["creator"]
        asked = f"the {kind} {w.name}"
        add(f"Who {verb} {asked}?", creator.name, SINGLE_HOP, w.name)
        add(f"In what year was {asked} released?", w.facts["year"], SINGLE_HOP, w.name)
        add(
            f"In which city was the {role} of {asked} born?",
            creator.facts["city"].name,
            TWO_HOP,
            w.name,
            creator.name,
        )
        add(
            f"Which university did the {role} of {asked} attend?",
            creator.facts["university"].name,
            TWO_HOP,
            w.name,
            creator.name,
        )
        add(
            f"In what year was the {role} of {asked} born?",
            creator.facts["born"],
            TWO_HOP,
            w.name,
            creator.name,
        )
    for c in world.companies:
        f = c.facts
        add(f"Who founded {c.name}?", f["founder"].name, SINGLE_HOP, c.name)
        add(f"In which city is {c.name} headquartered?", f["city"].name, SINGLE_HOP, c.name)
        add(f"In what year was {c.name} founded?", f["founded"], SINGLE_HOP, c.name)
        add(
            f"Where was the founder of {c.name} born?",
            f["founder"].facts["city"].name,
            TWO_HOP,
            c.name,
            f["founder"].name,
        )
        add(
            f"What is the profession of the founder of {c.name}?",
            f["founder"].facts["occupation"],
            TWO_HOP,
            c.name,
            f["founder"].name,
        )
        add(
            f"In which country is {c.name} headquartered?",
            f["city"].facts["country"].name,
            TWO_HOP,
            c.name,
            f["city"].name,
        )
    for city in world.cities:
        country = city.facts["country"]
        add(f"In which country is the city of {city.name}?", country.name, SINGLE_HOP, city.name)
        if country.facts["capital"] is not city:
            add(
                f"What is the capital of the country where {city.name} lies?",
                country.facts["capital"].name,
                TWO_HOP,
                city.name,
                country.name,
            )
    for country in world.countries:
        capital = country.facts["capital"]
        add(f"What is the capital of {country.name}?", capital.name, SINGLE_HOP, country.name)
        add(
            f"What is the currency of {country.name}?",
            country.facts["currency"],
            SINGLE_HOP,
            country.name,
        )
    for u in world.universities:
        add(f"In which city is {u.name}?", u.facts["city"].name, SINGLE_HOP, u.name)
    # the contract: no question contains its answer
    return [
        q
        for q in out
        if normalize_answer(q.answer)
        and normalize_answer(q.answer) not in normalize_answer(q.question)
    ]


def generate_world(
    out: str | os.PathLike[str], seed: int, sizes: WorldSizes | None = None
) -> dict[str, Any]:
    """Write a world (corpus, train and test questions, manifest) into the folder
    ``out`` (created; existing files are replaced). Returns the manifest."""
    sizes = sizes or WorldSizes()
    rng = random.Random(f"skillzero-search-world:{WORLD_VERSION}:{seed}")
    world = _build_world(rng, sizes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entities = world.all()
    with open(out / CORPUS, "w", encoding="utf-8") as handle:
        for index, entity in enumerate(entities):
            contents = f'"{entity.name}"\n{_passage(entity)}'
            handle.write(json.dumps({"id": str(index), "contents": contents}) + "\n")
    questions = _questions(world)
    rng.shuffle(questions)
    test: list[_Question] = []
    for source in (SINGLE_HOP, TWO_HOP):
        test += [q for q in questions if q.data_source == source][: sizes.test_per_kind]
    # interleaved, so any prefix of the test split has both kinds
    singles = [q for q in test if q.data_source == SINGLE_HOP]
    doubles = [q for q in test if q.data_source == TWO_HOP]
    test = [q for pair in zip(singles, doubles, strict=False) for q in pair]
    test += singles[len(doubles) :] + doubles[len(singles) :]
    chosen = {id(q) for q in test}
    train = [q for q in questions if id(q) not in chosen]
    test_texts = {q.question for q in test}
    train = [q for q in train if q.question not in test_texts]
    counts = {}
    for split, items in (("train", train), ("test", test)):
        path = out / WORLD_SPLITS[split]
        with open(path, "w", encoding="utf-8") as handle:
            for index, q in enumerate(items):
                record = {
                    "id": f"{split}_{index}",
                    "question": q.question,
                    "golden_answers": [q.answer],
                    "data_source": q.data_source,
                    "supporting_titles": list(q.titles),
                    "expert_queries": list(q.titles),
                }
                handle.write(json.dumps(record) + "\n")
        counts[split] = {
            source: sum(q.data_source == source for q in items) for source in (SINGLE_HOP, TWO_HOP)
        }
    manifest = {
        "version": WORLD_VERSION,
        "seed": seed,
        "passages": len(entities),
        "questions": counts,
        "sizes": sizes.__dict__,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


# ----------------------------------------------------------------------------------------
# the default world, generated on first use
# ----------------------------------------------------------------------------------------


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "skillzero" / "search-world"


def world_dir_for(env_cfg: Mapping[str, Any] | Any | None) -> Path:
    """The world folder an env config plays: ``env.world_dir``, else the cache folder
    of ``env.world_seed`` (whether or not it was generated yet)."""
    explicit = cfg_get(env_cfg, "world_dir")
    if explicit:
        return Path(os.path.expandvars(os.path.expanduser(str(explicit)))).resolve()
    seed = int(cfg_get(env_cfg, "world_seed", 1))
    return cache_root() / f"v{WORLD_VERSION}-seed{seed}"


def is_complete(root: Path) -> bool:
    return all((root / name).is_file() for name in (MANIFEST, CORPUS, *WORLD_SPLITS.values()))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created), held for the block."""
    try:
        import fcntl
    except ImportError:  # no advisory locks: rely on the atomic rename
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"search: waiting for another process ({path})", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_world(seed: int = 1, root: Path | None = None, sizes: WorldSizes | None = None) -> Path:
    """The folder of a generated world, generating it first when it is not complete
    (under a lock, through a temporary folder renamed into place)."""
    root = Path(root) if root is not None else cache_root() / f"v{WORLD_VERSION}-seed{seed}"
    if is_complete(root):
        return root
    with locked(root.parent / f".{root.name}.lock"):
        if is_complete(root):
            return root
        tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        manifest = generate_world(tmp, seed, sizes)
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
        counts = manifest["questions"]
        print(
            f"search: generated the QA world (seed {seed}: {manifest['passages']} passages, "
            f"{sum(counts['train'].values())} train and {sum(counts['test'].values())} test "
            f"questions) into {root}",
            file=sys.stderr,
        )
    return root


def ensure_world_for(env_cfg: Mapping[str, Any] | Any | None) -> Path:
    """The world an env config plays (see :func:`world_dir_for`), generated if needed."""
    return ensure_world(int(cfg_get(env_cfg, "world_seed", 1)), world_dir_for(env_cfg))


def ensure_world_index(world: Path, retriever: str = "bm25", **options: Any) -> Path:
    """The index of a world's corpus (``<world>/index-<retriever>``), built first when
    missing (see :func:`skillzero.plugins.search.index.build_index`)."""
    from skillzero.plugins.search.index import build_index, is_index

    out = world / f"index-{retriever}"
    if is_index(out):
        return out
    with locked(world / f".index-{retriever}.lock"):
        if not is_index(out):
            build_index(world / CORPUS, out, retriever=retriever, progress=False, **options)
    return out
