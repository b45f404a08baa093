"""One generated ALFWorld task: sample it, then write its PDDL problem and traj_data.

A task is a floor plan (:mod:`~skillzero.plugins.alfworld.generate.scenes`), a goal
(task type, object type, receptacle type, and the desk lamp for ``look`` tasks), the
movable objects of the room placed in receptacles that ALFRED allows for them, and the
agent's start pose. The rules follow ALFRED's and the benchmark's games:

- each task type is set in the rooms ALFRED allows for it (``GOALS_VALID``: heat and
  cool in kitchens, clean in kitchens and bathrooms, look in living rooms and bedrooms,
  pick and pick-two anywhere), in a floor plan that has what the task needs (a sink
  basin, a microwave, a fridge, a desk lamp);
- the goal object can be cleaned / heated / cooled for those tasks
  (``VAL_ACTION_OBJECTS``); the goal receptacle can hold it (``VAL_RECEPTACLE_OBJECTS``)
  and is not the appliance of the task (no "heat X and put it in the microwave");
- every object type the floor plan lists that some receptacle of the room can hold is
  present, 1-3 instances (ALFRED's ``MAX_NUM_OF_OBJ_INSTANCES``; 2-3 of the goal object
  for pick-two), each in a receptacle drawn uniformly among those of the room that can
  hold it; no instance of the goal object starts in a goal receptacle (so the goal does
  not hold at the start), and for cool tasks none starts in the fridge (ALFWorld counts
  an object taken from the fridge as cool);
- the PDDL problem lists the same objects, facts and goal as the benchmark's
  ``initial_state.pddl`` (``canContain`` for the types present, ``openable`` for
  ALFRED's openable classes, ``cleanable`` / ``heatable`` / ``coolable`` /
  ``sliceable`` for every object that is, ``toggleable`` only for the goal's lamp), in
  the same layout; the goal is ALFRED's own (``alfworld.gen.goal_library``).
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skillzero.plugins.alfworld.games import TASK_TYPE_NAMES
from skillzero.plugins.alfworld.generate import scenes
from skillzero.plugins.alfworld.generate.scenes import FloorPlan, Location, Receptacle, Thing

APPLIANCE: dict[str, str] = {
    "pick_clean_then_place_in_recep": "SinkBasin",
    "pick_heat_then_place_in_recep": "Microwave",
    "pick_cool_then_place_in_recep": "Fridge",
}
"""The receptacle type a task's state change needs."""

OBJECT_KIND: dict[str, str] = {
    "pick_clean_then_place_in_recep": "Cleanable",
    "pick_heat_then_place_in_recep": "Heatable",
    "pick_cool_then_place_in_recep": "Coolable",
}
"""The ``VAL_ACTION_OBJECTS`` class the goal object must belong to."""

EXCLUDED_PARENTS: dict[str, frozenset[str]] = {
    "pick_clean_then_place_in_recep": frozenset({"SinkBasin", "BathtubBasin"}),
    "pick_heat_then_place_in_recep": frozenset({"Microwave"}),
    "pick_cool_then_place_in_recep": frozenset({"Fridge"}),
}
"""Goal receptacle types a task type does not use (none of the benchmark's games do)."""

LAMP = "DeskLamp"
"""The lamp of ``look_at_obj_in_light`` tasks (the only one the benchmark's games use)."""

MAX_INSTANCES = 3
"""ALFRED's ``MAX_NUM_OF_OBJ_INSTANCES``."""

PDDL_REPLACEMENTS: tuple[tuple[str, str], ...] = (
    ("-", "_minus_"),
    ("#", "-"),
    ("|", "_bar_"),
    ("+", "_plus_"),
    (".", "_dot_"),
    (",", "_comma_"),
)
"""ALFRED's ``fix_pddl_str_chars`` (AI2-THOR ids and locations to PDDL names)."""

INDENT = "\n        "


class TaskSamplingError(ValueError):
    """No task of the requested type fits the floor plans of the split."""


@dataclass
class Goal:
    """What the game asks for (ALFRED's ``pddl_params``)."""

    task_type: str
    object_target: str
    parent_target: str = ""
    toggle_target: str = ""


@dataclass
class Task:
    """A sampled task: the room, the goal, the objects and the agent's start."""

    plan: FloorPlan
    goal: Goal
    objects: list[Thing] = field(default_factory=list)
    agent: Location = (0, 0, 0, scenes.AGENT_HORIZON)
    agent_xz: tuple[float, float] = (0.0, 0.0)
    rotation: int = 0

    @property
    def folder(self) -> str:
        """``<task_type>-<object>-<mrecep>-<parent>-<scene>`` as in the benchmark (the
        lamp stands in for the parent of ``look`` tasks)."""
        g = self.goal
        parent = g.toggle_target or g.parent_target
        return f"{g.task_type}-{g.object_target}-None-{parent}-{self.plan.scene}"

    def things(self) -> list[Thing]:
        """Every object of the problem: movable objects, decor and fixtures."""
        return sorted([*self.objects, *self.plan.decor, *self.plan.fixtures], key=lambda t: t.oid)

    def relevant(self, rng: random.Random) -> Task:
        """The part of the task a plan needs (for the planner, see
        :mod:`~skillzero.plugins.alfworld.generate.generator`).

        Kept: every instance of the goal object type and the receptacles holding them,
        the receptacles of the task's appliance type, the lamp and its receptacle, the
        goal receptacles that share a location with one of those, and, of the other
        goal receptacles, which are interchangeable (every ``go to`` costs the same),
        one openable and one that is not (drawn with ``rng``). Dropped: every other
        object, fixture and receptacle. An optimal plan of this part is a plan of the
        whole task, of the same length: no dropped object or receptacle can shorten
        one."""
        goal = self.goal
        keep_types = {goal.object_target, goal.toggle_target} - {""}
        objects = [o for o in self.objects if o.otype in keep_types]
        decor = tuple(d for d in self.plan.decor if d.otype in keep_types)
        keep = {o.receptacle for o in [*objects, *decor]}
        appliance = APPLIANCE.get(goal.task_type)
        keep |= {r.rid for r in self.plan.receptacles if r.rtype == appliance}
        kept_locations = {r.loc for r in self.plan.receptacles if r.rid in keep}
        spare: dict[bool, list[str]] = {True: [], False: []}
        for r in self.plan.receptacles:
            if r.rtype != goal.parent_target or r.rid in keep:
                continue
            if r.loc in kept_locations:
                keep.add(r.rid)
            else:
                spare[r.openable].append(r.rid)
        for rids in spare.values():
            if rids:
                keep.add(rng.choice(rids))
        plan = dataclasses.replace(
            self.plan,
            receptacles=tuple(r for r in self.plan.receptacles if r.rid in keep),
            fixtures=(),
            decor=decor,
        )
        return dataclasses.replace(self, plan=plan, objects=objects)

    def entity_ids(self) -> list[str]:
        """The PDDL names of the objects and receptacles, as the engine knows them
        (PDDL names are case-insensitive: TextWorld lower-cases them)."""
        ids = [t.oid for t in self.things()] + [r.rid for r in self.plan.receptacles]
        return sorted(pddl_name(i).lower() for i in ids)


# ----------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------


def _holders(
    plan: FloorPlan, otype: str, exclude: frozenset[str] = frozenset()
) -> list[Receptacle]:
    table = scenes.can_contain()
    return [
        r
        for r in plan.receptacles
        if r.rtype not in exclude and otype in table.get(r.rtype, frozenset())
    ]


def movable_types(plan: FloorPlan) -> list[str]:
    """The object types of the floor plan that can be picked up and that some receptacle
    of the room can hold, in the order of ``objects.json``."""
    known = scenes.placeable_types()
    return [t for t in plan.types if t in known and _holders(plan, t)]


def goal_options(plan: FloorPlan, task_type: str) -> list[tuple[str, list[str]]]:
    """``(object type, [goal receptacle types])`` pairs a task type can use in a floor
    plan (empty when the floor plan does not suit the task type)."""
    c = scenes.constants()
    if plan.room not in c.GOALS_VALID[task_type]:
        return []
    appliance = APPLIANCE.get(task_type)
    if appliance and not plan.has_receptacle(appliance):
        return []
    if task_type == "look_at_obj_in_light" and not plan.has_decor(LAMP):
        return []
    kind = OBJECT_KIND.get(task_type)
    allowed = scenes.action_objects(kind) if kind else None
    excluded = EXCLUDED_PARENTS.get(task_type, frozenset())
    table = scenes.can_contain()
    rtypes = sorted({r.rtype for r in plan.receptacles} - excluded)
    options = []
    for otype in movable_types(plan):
        if allowed is not None and otype not in allowed:
            continue
        if task_type == "look_at_obj_in_light":
            options.append((otype, [""]))
            continue
        parents = []
        for rtype in rtypes:
            if otype not in table.get(rtype, frozenset()):
                continue
            start_excluded = {rtype} | ({"Fridge"} if task_type.startswith("pick_cool") else set())
            if _holders(plan, otype, frozenset(start_excluded)):
                parents.append(rtype)
        if parents:
            options.append((otype, parents))
    return options


@functools.cache
def scenes_for(task_type: str, split: str) -> dict[str, list[int]]:
    """Room -> floor plans of ``split`` that suit ``task_type`` (cached: do not modify)."""
    rooms: dict[str, list[int]] = {}
    for scene in scenes.split_scenes(split):
        plan = scenes.floor_plan(scene)
        if goal_options(plan, task_type):
            rooms.setdefault(plan.room, []).append(scene)
    return rooms


def sample_task(
    task_type: str,
    split: str,
    rng: random.Random,
    max_receptacles: int | None = None,
    max_object_types: int | None = None,
) -> Task:
    """A random task of ``task_type`` in a floor plan of ``split``: a floor plan
    uniformly among those that suit the task, a goal object uniformly, then a goal
    receptacle type uniformly among those that fit. With ``max_receptacles``, the room
    is then cut down to that many receptacles (:func:`smaller_room`) before the objects
    are placed; with ``max_object_types``, only the goal object's type and up to
    ``max_object_types - 1`` other movable types (drawn uniformly) are placed."""
    if task_type not in TASK_TYPE_NAMES:
        raise TaskSamplingError(f"unknown task type {task_type!r}")
    suitable = sorted(n for numbers in scenes_for(task_type, split).values() for n in numbers)
    if not suitable:
        raise TaskSamplingError(f"no floor plan of split {split!r} suits {task_type}")
    plan = scenes.floor_plan(rng.choice(suitable))
    otype, parents = rng.choice(goal_options(plan, task_type))
    parent = rng.choice(parents)
    goal = Goal(task_type, otype, parent_target=parent)
    if task_type == "look_at_obj_in_light":
        goal = Goal(task_type, otype, toggle_target=LAMP)
    if max_receptacles is not None:
        plan = smaller_room(plan, goal, rng, max_receptacles)
    task = Task(plan, goal)
    _place_objects(task, rng, max_object_types)
    _place_agent(task, rng)
    return task


MIN_RECEPTACLES = 4
"""The fewest receptacles :func:`smaller_room` accepts: a goal object's holder, a goal
receptacle, an appliance or the lamp's table, and one more."""


def smaller_room(plan: FloorPlan, goal: Goal, rng: random.Random, limit: int) -> FloorPlan:
    """``plan`` with at most ``limit`` of its receptacles, still able to host ``goal``.

    Kept first: one receptacle that can hold the goal object where the task allows it
    to start (not a goal receptacle; not the fridge for cool tasks), one goal
    receptacle, one of the task's appliance (sink basin, microwave, fridge) and, for
    ``look`` tasks, the receptacle of one desk lamp; then others drawn uniformly with
    ``rng`` up to ``limit``. Decor keeps only what stands on a kept receptacle;
    fixtures (never shown to the agent) stay. Smaller rooms make shorter observations,
    action lists and searches: the same task types and rules at a lower difficulty
    (the CPU quickstart's games, see ``env.generated``)."""
    if limit < MIN_RECEPTACLES:
        raise ValueError(f"max_receptacles must be >= {MIN_RECEPTACLES}, got {limit}")
    if len(plan.receptacles) <= limit:
        return plan
    keep: list[Receptacle] = []

    def add_one(candidates: Sequence[Receptacle]) -> None:
        chosen = [r for r in candidates if r in keep]
        if candidates and not chosen:
            keep.append(rng.choice(list(candidates)))

    exclude = frozenset({goal.parent_target} - {""})
    if goal.task_type.startswith("pick_cool"):
        exclude |= {"Fridge"}
    add_one(_holders(plan, goal.object_target, exclude))
    if goal.parent_target:
        add_one(plan.receptacles_of(goal.parent_target))
    appliance = APPLIANCE.get(goal.task_type)
    if appliance:
        add_one(plan.receptacles_of(appliance))
    if goal.toggle_target:
        hosts = {d.receptacle for d in plan.decor if d.otype == goal.toggle_target}
        add_one([r for r in plan.receptacles if r.rid in hosts])
    others = [r for r in plan.receptacles if r not in keep]
    rng.shuffle(others)
    keep += others[: max(0, limit - len(keep))]
    kept = {r.rid for r in keep}
    return dataclasses.replace(
        plan,
        receptacles=tuple(r for r in plan.receptacles if r.rid in kept),
        decor=tuple(d for d in plan.decor if d.receptacle in kept),
    )


def _place_objects(task: Task, rng: random.Random, max_types: int | None = None) -> None:
    plan, goal = task.plan, task.goal
    taken = {r.rid for r in plan.receptacles} | {t.oid for t in [*plan.fixtures, *plan.decor]}
    objects: list[Thing] = []
    types = movable_types(plan)
    if max_types is not None:
        if max_types < 1:
            raise ValueError(f"max_object_types must be >= 1, got {max_types}")
        others = [t for t in types if t != goal.object_target]
        chosen = {goal.object_target, *rng.sample(others, min(len(others), max_types - 1))}
        types = [t for t in types if t in chosen]
    for otype in types:
        exclude: frozenset[str] = frozenset()
        low = 1
        if otype == goal.object_target:
            exclude = frozenset({goal.parent_target} - {""})
            if goal.task_type.startswith("pick_cool"):
                exclude |= {"Fridge"}
            if goal.task_type == "pick_two_obj_and_place":
                low = 2
        holders = _holders(plan, otype, exclude)
        for _ in range(rng.randint(low, MAX_INSTANCES)):
            holder = rng.choice(holders)
            oid = scenes.unique_id(rng, otype, scenes.parse_id(holder.rid), taken)
            objects.append(Thing(oid, otype, holder.loc, holder.rid))
    task.objects = objects


def _place_agent(task: Task, rng: random.Random) -> None:
    plan = task.plan
    taken = set(plan.receptacle_locations)
    for _ in range(1000):
        x, z = rng.choice(plan.points)
        rotation = rng.randrange(4)
        loc = (round(x / scenes.GRID), round(z / scenes.GRID), rotation, scenes.AGENT_HORIZON)
        if loc not in taken:
            task.agent, task.agent_xz, task.rotation = loc, (x, z), rotation
            return
    raise TaskSamplingError(f"no free start position in {plan.name}")


# ----------------------------------------------------------------------------------------
# PDDL problem
# ----------------------------------------------------------------------------------------


def pddl_name(text: str) -> str:
    """An AI2-THOR id or location as a PDDL name (ALFRED's ``fix_pddl_str_chars``)."""
    for old, new in PDDL_REPLACEMENTS:
        text = text.replace(old, new)
    return text


def location_name(loc: Location) -> str:
    return pddl_name("loc|{}|{}|{}|{}".format(*loc))


def goal_pddl(goal: Goal) -> str:
    """ALFRED's goal for the task (``alfworld.gen.goal_library``), as PDDL."""
    import alfworld.gen.goal_library as library

    text = library.gdict[goal.task_type]["pddl"].format(
        obj=goal.object_target,
        recep=goal.parent_target,
        toggle=goal.toggle_target,
        mrecep="",
    )
    return pddl_name(text)


def _facts(name: str, rows: Sequence[Sequence[str]]) -> str:
    return INDENT.join(f"({name} {' '.join(row)})" for row in rows)


def problem_pddl(task: Task, problem_id: str) -> str:
    """The PDDL problem (``initial_state.pddl``), laid out as the benchmark's."""
    c = scenes.constants()
    goal = task.goal
    things = task.things()
    receptacles = sorted(task.plan.receptacles, key=lambda r: r.rid)
    rtypes_present = sorted({r.rtype for r in receptacles})
    movable = [t for t in things if t.otype in scenes.placeable_types()]
    otypes_present = sorted({t.otype for t in movable})
    locations = sorted({r.loc for r in receptacles} | {t.loc for t in things}, key=lambda loc: loc)
    locations = [loc for loc in locations if loc != task.agent] + [task.agent]
    name = {t.oid: pddl_name(t.oid) for t in things} | {
        r.rid: pddl_name(r.rid) for r in receptacles
    }

    table = scenes.can_contain()
    can = [
        (f"{rtype}Type", f"{otype}Type")
        for rtype in rtypes_present
        for otype in otypes_present
        if otype in table.get(rtype, frozenset())
    ]

    def having(kind: str) -> list[list[str]]:
        members = scenes.action_objects(kind)
        return [[name[t.oid]] for t in things if t.otype in members]

    toggleable = [[name[t.oid]] for t in things if goal.toggle_target and t.otype == LAMP]
    movable_receptacles = set(c.MOVABLE_RECEPTACLES)
    in_receptacle = [[name[t.oid], name[t.receptacle]] for t in things if t.receptacle]
    sections = [
        _facts("receptacleType", [[name[r.rid], f"{r.rtype}Type"] for r in receptacles]),
        _facts("objectType", [[name[t.oid], f"{t.otype}Type"] for t in things]),
        _facts("canContain", can),
        _facts("pickupable", [[name[t.oid]] for t in movable]),
        _facts(
            "isReceptacleObject", [[name[t.oid]] for t in movable if t.otype in movable_receptacles]
        ),
        _facts("openable", [[name[r.rid]] for r in receptacles if r.openable]),
        "",
        _facts("atLocation", [["agent1", location_name(task.agent)]]),
        "",
        _facts("cleanable", having("Cleanable")),
        "",
        _facts("heatable", having("Heatable")),
        _facts("coolable", having("Coolable")),
        "",
        "",
        _facts("toggleable", toggleable),
        "",
        "",
        _facts("sliceable", having("Sliceable")),
        "",
        _facts("inReceptacle", in_receptacle),
        "",
        "",
        _facts("receptacleAtLocation", [[name[r.rid], location_name(r.loc)] for r in receptacles]),
        _facts("objectAtLocation", [[name[t.oid], location_name(t.loc)] for t in things]),
    ]
    declarations = [
        INDENT.join(f"{t} - object" for t in scenes.object_types()),
        INDENT.join(f"{t}Type - otype" for t in scenes.object_types()),
        INDENT.join(f"{t}Type - rtype" for t in scenes.receptacle_types()),
    ]
    instances = INDENT.join(
        [f"{name[t.oid]} - object" for t in things]
        + [f"{name[r.rid]} - receptacle" for r in receptacles]
        + [f"{location_name(loc)} - location" for loc in locations]
    )
    return (
        f"\n(define (problem plan_{problem_id})\n(:domain alfred)\n(:objects\nagent1 - agent\n"
        + "\n".join(declarations)
        + "\n\n"
        + INDENT
        + instances
        + INDENT
        + ")\n    \n\n(:init\n\n"
        + INDENT
        + INDENT.join(sections)
        + INDENT
        + ")\n    \n"
        + goal_pddl(goal)
    )


# ----------------------------------------------------------------------------------------
# traj_data.json and the grammar
# ----------------------------------------------------------------------------------------


def pddl_params(goal: Goal) -> dict[str, Any]:
    return {
        "mrecep_target": "",
        "object_sliced": False,
        "object_target": goal.object_target,
        "parent_target": goal.parent_target,
        "toggle_target": goal.toggle_target,
    }


HIGH_LEVEL_ACTIONS: dict[str, str] = {
    "go": "GotoLocation",
    "take": "PickupObject",
    "move": "PutObject",
    "clean": "CleanObject",
    "heat": "HeatObject",
    "cool": "CoolObject",
    "use": "ToggleObject",
}


def _kind(name: str) -> str:
    """``"cabinet 3"`` -> ``"cabinet"``."""
    return name.rsplit(" ", 1)[0] if name.rsplit(" ", 1)[-1].isdigit() else name


def high_level_plan(walkthrough: Sequence[str]) -> list[dict[str, Any]]:
    """ALFRED's ``plan.high_pddl`` (discrete actions) for a walkthrough; ``open`` and
    ``close`` steps are not high-level actions."""
    plan: list[dict[str, Any]] = []
    for command in walkthrough:
        verb = command.split(" ", 1)[0]
        if verb not in HIGH_LEVEL_ACTIONS:
            continue
        rest = command.split(" ", 1)[1]
        if verb == "go":
            args = [_kind(rest.removeprefix("to "))]
        elif verb == "move":
            obj, _, recep = rest.partition(" to ")
            args = [_kind(obj), _kind(recep)]
        elif verb == "use":
            args = [_kind(rest)]
        else:
            args = [_kind(rest.split(" from ")[0].split(" with ")[0])]
        plan.append(
            {
                "discrete_action": {"action": HIGH_LEVEL_ACTIONS[verb], "args": args},
                "high_idx": len(plan),
                "planner_action": {"action": HIGH_LEVEL_ACTIONS[verb]},
            }
        )
    plan.append(
        {
            "discrete_action": {"action": "NoOp", "args": []},
            "high_idx": len(plan),
            "planner_action": {"action": "End", "value": 1},
        }
    )
    return plan


def step_description(command: str) -> str:
    """A plain-English high-level instruction for one walkthrough command."""
    verb, _, rest = command.partition(" ")
    templates = {
        "go": "Go to the {}.",
        "open": "Open the {}.",
        "close": "Close the {}.",
        "use": "Turn on the {}.",
    }
    if verb in templates:
        return templates[verb].format(rest.removeprefix("to "))
    if verb == "take":
        obj, _, recep = rest.partition(" from ")
        return f"Pick up the {obj} from the {recep}."
    if verb == "move":
        obj, _, recep = rest.partition(" to ")
        return f"Put the {obj} in the {recep}."
    obj, _, recep = rest.partition(" with ")
    return f"{verb.capitalize()} the {obj} with the {recep}."


def traj_data(
    task: Task,
    task_id: str,
    task_desc: str,
    walkthrough: Sequence[str],
    seed: int,
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """The game's ``traj_data.json``: the fields ALFWorld reads (``task_type``,
    ``pddl_params``, ``turk_annotations``, ``scene``, ``task_id``, ``plan``) in the
    benchmark's structure, with a templated annotation instead of human ones, no
    images, and the generator's provenance under ``skillzero``."""
    x, z = task.agent_xz
    sentence = task_desc[:1].upper() + task_desc[1:] + "."
    return {
        "images": [],
        "pddl_params": pddl_params(task.goal),
        "plan": {"high_pddl": high_level_plan(walkthrough), "low_actions": []},
        "scene": {
            "dirty_and_empty": False,
            "floor_plan": task.plan.name,
            "init_action": {
                "action": "TeleportFull",
                "horizon": scenes.AGENT_HORIZON,
                "rotateOnTeleport": True,
                "rotation": task.rotation * 90,
                "x": x,
                "y": 0.9009992,
                "z": z,
            },
            "object_poses": [],
            "object_toggles": [],
            "random_seed": seed,
            "scene_num": task.plan.scene,
        },
        "skillzero": dict(provenance),
        "task_id": task_id,
        "task_type": task.goal.task_type,
        "turk_annotations": {
            "anns": [
                {
                    "assignment_id": "skillzero_generated",
                    "high_descs": [step_description(c) for c in walkthrough],
                    "task_desc": sentence,
                    "votes": [1, 1, 1],
                }
            ]
        },
    }


def task_description(traj: Mapping[str, Any], seed: int) -> str:
    """The templated goal text, drawn as ALFWorld draws it
    (``alfworld.agents.utils.misc.get_templated_task_desc``, which uses the global
    ``random`` module; it is seeded here and its state restored)."""
    from alfworld.agents.utils.misc import get_templated_task_desc

    state = random.getstate()
    try:
        random.seed(seed)
        return str(get_templated_task_desc(traj))
    finally:
        random.setstate(state)


def grammar_with_task(grammar: str, traj: Mapping[str, Any], seed: int) -> str:
    """The game's grammar: ALFWorld's ``add_task_to_grammar`` with its templated goal
    (``goal_desc_human_anns_prob=0``, as ``alfworld-generate`` by default), seeded."""
    from alfworld.agents.utils.misc import add_task_to_grammar

    state = random.getstate()
    try:
        random.seed(seed)  # the template's draw: the same as in task_description
        coin = random.Random(seed)  # the human-annotation coin (always templated)
        return str(add_task_to_grammar(grammar, traj, goal_desc_human_anns_prob=0.0, rng=coin))
    finally:
        random.setstate(state)
