"""The example third-party plugin ``examples/skillzero-numberguess``, for real.

A session fixture pip-installs the example package (no sys.path tricks on the source
tree) into a temporary ``--target`` directory; subprocesses then run with only that
directory on ``PYTHONPATH`` and check what a user would see: entry-point discovery
(``skillzero plugins`` / ``skillzero envs``), Hydra composition of ``env=numberguess``
with validation against the plugin's schema, and whole episodes played through the
process env pool. The unit tests of the env, prompt builder and parser import the
*installed* copy as well.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "skillzero-numberguess"
PACKAGE = "skillzero_numberguess"
DISTRIBUTION = "skillzero-numberguess"
VERSION = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["version"]
CONFIG_PATH = "pkg://skillzero_numberguess.conf"
STUB = "numberguess-test-stub"  # stub algo/backend entries for whole-config tests


# ----------------------------------------------------------------------------------------
# Installing the example and running subprocesses against it
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def plugin_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package pip-installed into a fresh ``--target`` directory."""
    base = tmp_path_factory.mktemp("numberguess")
    # Build from a copy: an in-tree setuptools build writes build/ and *.egg-info next to
    # the sources, which must not appear in the repository's working tree.
    source = base / "source"
    shutil.copytree(
        EXAMPLE,
        source,
        ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"),
    )
    target = base / "site"
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--disable-pip-version-check",
        "--target",
        str(target),
        str(source),
    ]
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=_subprocess_env(None)
    )
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout}\n{proc.stderr}"
    assert (target / PACKAGE / "plugin.py").is_file()
    return target


def _subprocess_env(target: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    # Only the installed copy of the plugin is importable (skillzero is in the venv).
    env.pop("PYTHONPATH", None)
    if target is not None:
        env["PYTHONPATH"] = str(target)
    env["OMP_NUM_THREADS"] = "1"
    env.pop("SKILLZERO_DISABLE_PLUGIN_AUTOLOAD", None)
    env.pop("SKILLZERO_LOAD_PLUGINS", None)
    return env


def _run(
    target: Path, args: list[str], *, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=target.parent,  # not the repository root
        env=_subprocess_env(target),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, (
            f"{args[:3]} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def _run_snippet(target: Path, code: str, *argv: str) -> Any:
    """Run ``code`` in a subprocess; it prints one JSON document as its last line."""
    proc = _run(target, ["-c", textwrap.dedent(code), *argv])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cli(target: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run(target, ["-m", "skillzero.cli", *args], check=check)


# ----------------------------------------------------------------------------------------
# Installation and discovery
# ----------------------------------------------------------------------------------------


def test_install_ships_entry_point_and_config_files(plugin_target: Path) -> None:
    dist_info = plugin_target / f"{PACKAGE}-{VERSION}.dist-info"
    entry_points = (dist_info / "entry_points.txt").read_text()
    assert re.search(
        r"^\[skillzero\]\s*^numberguess = skillzero_numberguess\.plugin", entry_points, re.M
    )
    assert (plugin_target / PACKAGE / "conf" / "env" / "numberguess.yaml").is_file()
    assert (plugin_target / PACKAGE / "conf" / "__init__.py").is_file()
    assert (plugin_target / PACKAGE / "conf" / "env" / "__init__.py").is_file()


def test_plugins_command_discovers_the_entry_point(plugin_target: Path) -> None:
    data = json.loads(_cli(plugin_target, "plugins", "--json").stdout)
    # (Other plugins may fail for reasons of their own; this one must not.)
    assert [f for f in data["failed"] if f["distribution"] == DISTRIBUTION] == []
    rows = {row["name"]: row for row in data["plugins"]}
    assert "builtin" in rows  # the first-party plugin still loads beside it
    row = rows["numberguess"]
    assert row["module"] == "skillzero_numberguess.plugin"
    assert row["distribution"] == DISTRIBUTION
    assert row["version"] == VERSION
    assert row["components"] == {"envs": ["numberguess"], "config_paths": [CONFIG_PATH]}

    text = _cli(plugin_target, "plugins").stdout
    assert f"numberguess  [{DISTRIBUTION} {VERSION}]  skillzero_numberguess.plugin" in text
    assert f"config_paths: {CONFIG_PATH}" in text


def test_plugin_is_not_loaded_without_its_distribution(plugin_target: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "skillzero.cli", "plugins", "--json"],
        cwd=plugin_target.parent,
        env=_subprocess_env(None),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    names = [row["name"] for row in json.loads(proc.stdout)["plugins"]]
    assert "numberguess" not in names


def test_envs_command_lists_env_and_task_types(plugin_target: Path) -> None:
    rows = json.loads(_cli(plugin_target, "envs", "--json").stdout)
    row = next(r for r in rows if r["name"] == "numberguess")
    assert row["plugin"] == "numberguess"
    assert row["task_types"] == ["small", "large"]
    assert row["description"]

    text = _cli(plugin_target, "envs").stdout
    assert "numberguess  (plugin numberguess)" in text
    assert "task types: small, large" in text


def test_discovery_stays_import_light(plugin_target: Path) -> None:
    result = _run_snippet(
        plugin_target,
        """
        import json, sys
        from skillzero import registry
        spec = registry.get("envs", "numberguess")
        print(json.dumps({
            "modules": sorted(m for m in sys.modules if m.startswith("skillzero_numberguess")),
            "torch": "torch" in sys.modules,
            "file": sys.modules["skillzero_numberguess"].__file__,
            "config": spec.config.__module__ + "." + spec.config.__qualname__,
        }))
        """,
    )
    # The hooks module and the config schema only: env, prompt and parser load lazily.
    assert result["modules"] == [
        "skillzero_numberguess",
        "skillzero_numberguess.config",
        "skillzero_numberguess.plugin",
    ]
    assert result["torch"] is False
    assert Path(result["file"]).is_relative_to(plugin_target)  # the installed copy
    assert result["config"] == "skillzero_numberguess.config.NumberGuessConfig"


# ----------------------------------------------------------------------------------------
# Hydra composition and validation
# ----------------------------------------------------------------------------------------


def test_cli_finds_the_env_config_group_entry(plugin_target: Path) -> None:
    # algo and backend are mandatory groups with no entries yet, so the CLI cannot
    # compose a full config; it must still accept env=numberguess ...
    proc = _cli(plugin_target, "train", "env=numberguess", "--print-config", check=False)
    if proc.returncode == 0:  # once algo/backend have defaults
        assert yaml.safe_load(proc.stdout)["env"]["name"] == "numberguess"
    else:
        assert proc.returncode == 2
        assert "unknown env" not in proc.stderr
        assert "choose algo=<name>" in proc.stderr
    # ... and list it among the env options the plugin's config path contributes.
    proc = _cli(plugin_target, "train", "env=nosuchenv", "--print-config", check=False)
    assert proc.returncode == 2
    assert re.search(r"unknown env 'nosuchenv'; available: .*numberguess", proc.stderr)


COMPOSE_SNIPPET = """
import io, json, sys
from contextlib import redirect_stdout
from skillzero import cli, hookimpl, registry
from skillzero.core.config import ConfigError, compose, to_container, validate

stub_conf = sys.argv[1]
STUB = "numberguess-test-stub"


class StubGroups:
    # algo/backend group entries and the components they name, so that a whole config
    # composes while skillzero ships none of them.
    @hookimpl
    def register_config_paths(self, register):
        register("file://" + stub_conf)

    @hookimpl
    def register_advantage_estimators(self, register):
        register(STUB, "builtins:object")

    @hookimpl
    def register_rollout_backends(self, register):
        register(STUB, "builtins:object")


registry.register_plugin(StubGroups(), "stub-groups")
base = ["env=numberguess", f"algo={STUB}", f"backend={STUB}"]


def error(overrides, check_components):
    try:
        validate(compose(base + overrides), check_components=check_components)
    except ConfigError as exc:
        return str(exc)
    return None


cfg = compose(base)
loose = validate(cfg, check_components=False)
strict = validate(cfg)
override = validate(compose(base + ["env.num_tasks=7", "env.group_size=3"]))
out = io.StringIO()
with redirect_stdout(out):
    status = cli.main(["train", *base, "--print-config"])
print(json.dumps({
    "env": to_container(cfg)["env"],
    "loose_num_groups": loose.env.num_groups,
    "strict_schema": strict.env._metadata.object_type.__qualname__,
    "strict_env": to_container(strict)["env"],
    "override": [override.env.num_tasks, override.env.group_size],
    "bad_num_groups": error(["env.num_groups=abc"], False),
    "bad_num_tasks": error(["env.num_tasks=abc"], True),
    "unknown_key": error(["+env.bogus=1"], True),
    "cli_status": status,
    "cli_output": out.getvalue(),
}))
"""


@pytest.fixture(scope="module")
def composed(plugin_target: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    stub_conf = tmp_path_factory.mktemp("stub_conf")
    # Unique names, so that they never clash with real entries or components.
    (stub_conf / "algo").mkdir()
    (stub_conf / "algo" / f"{STUB}.yaml").write_text(f"name: {STUB}\nadvantage:\n  name: {STUB}\n")
    (stub_conf / "backend").mkdir()
    (stub_conf / "backend" / f"{STUB}.yaml").write_text(f"name: {STUB}\n")
    return _run_snippet(plugin_target, COMPOSE_SNIPPET, str(stub_conf))


def _plugin_yaml(plugin_target: Path) -> dict[str, Any]:
    path = plugin_target / PACKAGE / "conf" / "env" / "numberguess.yaml"
    return yaml.safe_load(path.read_text())


def test_env_group_entry_composes_the_plugin_yaml(
    composed: dict[str, Any], plugin_target: Path
) -> None:
    assert composed["env"] == _plugin_yaml(plugin_target)
    assert composed["env"]["name"] == "numberguess"
    assert composed["loose_num_groups"] == composed["env"]["num_groups"]


def test_validation_uses_the_plugin_schema(composed: dict[str, Any], plugin_target: Path) -> None:
    assert composed["strict_schema"] == "NumberGuessConfig"
    strict = composed["strict_env"]
    for key, value in _plugin_yaml(plugin_target).items():
        if key == "pool":
            assert value.items() <= strict["pool"].items()
        else:
            assert strict[key] == value, key
    assert composed["override"] == [7, 3]


def test_validation_errors_name_the_key(composed: dict[str, Any]) -> None:
    assert composed["bad_num_groups"] is not None
    assert "env.num_groups" in composed["bad_num_groups"]
    assert composed["bad_num_tasks"] is not None
    assert "env.num_tasks" in composed["bad_num_tasks"]
    assert composed["unknown_key"] is not None
    assert "env.bogus" in composed["unknown_key"]


def test_train_print_config_shows_the_env(composed: dict[str, Any]) -> None:
    assert composed["cli_status"] == 0
    printed = yaml.safe_load(composed["cli_output"])
    assert printed["env"]["name"] == "numberguess"
    assert printed["env"]["num_tasks"] == composed["env"]["num_tasks"]
    assert printed["algo"]["name"] == STUB
    assert printed["backend"]["name"] == STUB


# ----------------------------------------------------------------------------------------
# Whole episodes through the process env pool
# ----------------------------------------------------------------------------------------


POOL_SNIPPET = """
import json, os
from skillzero import registry
from skillzero.contracts.env import PromptContext, TurnRecord
from skillzero.core.pool import EnvPool

spec = registry.get("envs", "numberguess")
env_cfg = {"name": "numberguess", "max_steps": 12, "history_length": 2, "num_tasks": 8}
tasks = spec.list_tasks(env_cfg, "train")
chosen = [next(t for t in tasks if t.task_type == kind) for kind in ("small", "large")]
builder = spec.make_prompt_builder(env_cfg)
parser = spec.make_action_parser(env_cfg)


def binary_search(admissible):
    numbers = sorted(int(action.split()[1]) for action in admissible)
    return f"<think>Try the middle of {numbers[0]}..{numbers[-1]}.</think>" \\
        f"<action>guess {numbers[(len(numbers) - 1) // 2]}</action>"


with EnvPool(spec.env, env_cfg, num_groups=2, group_size=2, workers=2,
             backend="process", seed=0) as pool:
    first = pool.reset(chosen)
    last = list(first)
    history = [[] for _ in range(pool.num_envs)]
    trace = [[] for _ in range(pool.num_envs)]
    sizes = [[len(r.admissible_actions)] for r in first]
    prompts = []
    for _ in range(20):
        if not any(pool.active):
            break
        actions = {}
        for i, active in enumerate(pool.active):
            if not active:
                continue
            ctx = PromptContext(
                task=pool.tasks[i], observation=last[i].observation, step=len(history[i]) + 1,
                history=tuple(history[i]), admissible_actions=last[i].admissible_actions,
                first_observation=first[i].observation,
            )
            prompts.append(builder.build(ctx)[0]["content"])
            parsed = parser(binary_search(last[i].admissible_actions), last[i].admissible_actions)
            assert parsed.valid, parsed
            actions[i] = parsed.action
        for i, result in pool.step(actions).items():
            history[i].append(TurnRecord(last[i].observation, actions[i]))
            trace[i].append(actions[i])
            sizes[i].append(len(result.admissible_actions or []))
            last[i] = result
    print(json.dumps({
        "active": pool.active,
        "task_ids": [t.task_id for t in pool.tasks],
        "secrets": [t.payload["secret"] for t in pool.tasks],
        "highs": [t.payload["high"] for t in pool.tasks],
        "info_task_ids": [r.info["task_id"] for r in last],
        "won": [r.won for r in last],
        "reward": [r.reward for r in last],
        "terminated": [r.terminated for r in last],
        "truncated": [r.truncated for r in last],
        "errors": [r.info.get("error") for r in last],
        "observations": [r.observation for r in last],
        "trace": trace,
        "sizes": sizes,
        "worker_pids": pool.worker_pids(),
        "worker_restarts": pool.worker_restarts,
        "env_steps": pool.timings.env_steps,
        "parent_pid": os.getpid(),
        "prompts": prompts,
    }))
"""


def test_pool_plays_whole_episodes_with_binary_search(plugin_target: Path) -> None:
    result = _run_snippet(plugin_target, POOL_SNIPPET)
    assert result["active"] == [False] * 4
    assert result["errors"] == [None] * 4
    assert result["won"] == [True] * 4
    assert result["reward"] == [1.0] * 4
    assert result["terminated"] == [True] * 4
    assert result["truncated"] == [False] * 4
    # Group g = envs 2g, 2g+1 plays one task; the two groups play different tasks.
    ids = result["task_ids"]
    assert ids[0] == ids[1]
    assert ids[2] == ids[3]
    assert ids[0] != ids[2]
    assert result["info_task_ids"] == ids
    assert result["highs"] == [10, 10, 100, 100]
    # Deterministic policy, same task: group members took the same guesses.
    trace = result["trace"]
    assert trace[0] == trace[1]
    assert trace[2] == trace[3]
    for i, secret in enumerate(result["secrets"]):
        assert trace[i][-1] == f"guess {secret}"
        assert result["observations"][i].startswith(f"guess {secret}: correct")
        assert len(trace[i]) <= (4 if result["highs"][i] == 10 else 7)
        sizes = result["sizes"][i]
        assert sizes[0] == result["highs"][i]
        assert sizes[-1] == 0
        assert all(b < a for a, b in itertools.pairwise(sizes))  # shrinking
    assert result["env_steps"] == sum(len(t) for t in trace)
    pids = result["worker_pids"]
    assert len(set(pids)) == 2
    assert result["parent_pid"] not in pids
    assert result["worker_restarts"] == 0
    assert all("Admissible actions:" in p and "<action>" in p for p in result["prompts"])


# ----------------------------------------------------------------------------------------
# Unit tests of the installed modules
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ng(plugin_target: Path) -> Iterator[SimpleNamespace]:
    """The installed package's modules, imported from the ``--target`` directory.

    The directory is on ``sys.path`` only while importing, so that the entry point does
    not leak into other tests' plugin discovery; the modules are dropped afterwards.
    """
    import importlib

    sys.path.insert(0, str(plugin_target))
    try:
        modules = SimpleNamespace(
            **{
                name: importlib.import_module(f"{PACKAGE}.{name}")
                for name in ("env", "prompt", "config", "plugin")
            }
        )
    finally:
        sys.path.remove(str(plugin_target))
    assert Path(modules.env.__file__).is_relative_to(plugin_target)
    yield modules
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def _play_to_end(env: Any, guesses: list[int]) -> list[tuple[str, float, bool, bool, dict]]:
    return [env.step(f"guess {g}") for g in guesses]


def test_list_tasks_is_deterministic_and_balanced(ng: SimpleNamespace) -> None:
    cfg = {"num_tasks": 10, "num_val_tasks": 4}
    train = ng.env.list_tasks(cfg, "train")
    assert train == ng.env.list_tasks(dict(cfg), "train")
    assert len(train) == 10
    assert len(ng.env.list_tasks(cfg, "valid")) == 4
    assert [t.task_type for t in train] == ["small", "large"] * 5
    assert len({t.task_id for t in train}) == 10
    for task in train:
        assert task.split == "train"
        assert task.payload["low"] == 1
        assert task.payload["high"] == (10 if task.task_type == "small" else 100)
        assert 1 <= task.payload["secret"] <= task.payload["high"]
    valid = ng.env.list_tasks(cfg, "valid")
    assert {t.task_id for t in valid}.isdisjoint(t.task_id for t in train)
    reseeded = ng.env.list_tasks({**cfg, "task_seed": 1}, "train")
    assert [t.payload for t in reseeded] != [t.payload for t in train]
    defaults = ng.env.list_tasks({}, "train")
    assert len(defaults) == ng.config.NumberGuessConfig.num_tasks


def test_list_tasks_rejects_unknown_split(ng: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match=r"no split 'test'.*train, valid"):
        ng.env.list_tasks({}, "test")


def test_env_hints_shrink_admissible_actions(ng: SimpleNamespace) -> None:
    from skillzero.contracts.env import INFO_KEYS, Task

    env = ng.env.NumberGuessEnv({"max_steps": 10})
    task = Task("t/0", "small", payload={"low": 1, "high": 10, "secret": 7})
    obs, info = env.reset(options={"task": task})
    assert "between 1 and 10" in obs
    assert set(INFO_KEYS) <= info.keys()
    assert info["admissible_actions"] == [f"guess {k}" for k in range(1, 11)]
    assert info["won"] is False
    assert info["task_type"] == "small"

    obs, reward, terminated, truncated, info = env.step("guess 3")
    assert "higher" in obs
    assert reward == 0.0
    assert not terminated
    assert not truncated
    assert info["admissible_actions"] == [f"guess {k}" for k in range(4, 11)]
    obs, *_, info = env.step("  GUESS   9 ")
    assert "lower" in obs
    assert info["admissible_actions"] == ["guess 4", "guess 5", "guess 6", "guess 7", "guess 8"]
    obs, reward, terminated, _, info = env.step("jump")
    assert "not a valid action" in obs
    assert reward == 0.0
    assert not terminated
    assert info["valid_action"] is False
    assert len(info["admissible_actions"]) == 5
    obs, *_, info = env.step("guess 500")  # outside the range: a hint, no widening
    assert "lower" in obs
    assert len(info["admissible_actions"]) == 5
    obs, reward, terminated, truncated, info = env.step("guess 7")
    assert "correct" in obs
    assert reward == 1.0
    assert terminated
    assert not truncated
    assert info["won"] is True
    assert info["admissible_actions"] == []

    # A new episode starts from scratch.
    _, info = env.reset(options={"task": task})
    assert len(info["admissible_actions"]) == 10
    assert env.steps_taken == 0


def test_env_truncates_after_max_steps(ng: SimpleNamespace) -> None:
    from skillzero.contracts.env import Task

    env = ng.env.NumberGuessEnv({"max_steps": 3})
    env.reset(options={"task": Task("t/1", "small", payload={"low": 1, "high": 10, "secret": 10})})
    steps = _play_to_end(env, [1, 2, 3])
    assert [s[2] for s in steps] == [False] * 3  # never terminated
    assert [s[3] for s in steps] == [False, False, True]
    assert steps[-1][4]["won"] is False


def test_env_rejects_inconsistent_task(ng: SimpleNamespace) -> None:
    from skillzero.contracts.env import Task

    env = ng.env.NumberGuessEnv({})
    with pytest.raises(ValueError, match="outside"):
        env.reset(
            options={"task": Task("bad", "small", payload={"low": 1, "high": 10, "secret": 11})}
        )


@settings(max_examples=60, deadline=None)
@given(secret=st.integers(1, 100))
def test_binary_search_always_wins_large_tasks(ng: SimpleNamespace, secret: int) -> None:
    from skillzero.contracts.env import Task

    env = ng.env.NumberGuessEnv({"max_steps": 12})
    _, info = env.reset(
        options={"task": Task("l", "large", payload={"low": 1, "high": 100, "secret": secret})}
    )
    guesses = 0
    terminated = False
    while not terminated and guesses < 7:
        assert f"guess {secret}" in info["admissible_actions"]
        action = ng.env.binary_search_action(info["admissible_actions"])
        _, reward, terminated, _, info = env.step(action)
        guesses += 1
    assert terminated
    assert reward == 1.0
    assert info["won"]


def _ctx(**overrides: Any) -> Any:
    from skillzero.contracts.env import PromptContext, Task, TurnRecord

    fields: dict[str, Any] = {
        "task": Task("t/2", "small", payload={"low": 1, "high": 10, "secret": 4}),
        "observation": "guess 8: lower. The number is less than 8.",
        "step": 5,
        "history": tuple(TurnRecord(f"obs-{i}", f"guess {i}") for i in range(1, 5)),
        "admissible_actions": ["guess 1", "guess 2", "guess 3"],
        "skill_block": "",
    }
    fields.update(overrides)
    return PromptContext(**fields)


def test_prompt_holds_every_part(ng: SimpleNamespace) -> None:
    from skillzero.contracts.env import PromptBuilder

    builder = ng.prompt.NumberGuessPrompt({"history_length": 2})
    assert isinstance(builder, PromptBuilder)
    assert builder.history_length == 2
    messages = builder.build(_ctx(skill_block="Skills:\n- Halve the range every turn."))
    assert [m["role"] for m in messages] == ["user"]
    text = messages[0]["content"]
    assert "between 1 and 10" in text  # the task
    assert "Step 5" in text
    assert "less than 8" in text
    assert "guess 1, guess 2, guess 3" in text  # admissible actions
    assert "Halve the range every turn." in text  # skill slot
    assert "<think>" in text
    assert "<action>" in text
    # Only the last two turns of history are shown.
    assert "obs-3" in text
    assert "obs-4" in text
    assert "obs-1" not in text
    assert "obs-2" not in text


def test_prompt_optional_parts(ng: SimpleNamespace) -> None:
    no_history = ng.prompt.NumberGuessPrompt({"history_length": 0})
    text = no_history.build(_ctx(admissible_actions=None))[0]["content"]
    assert "obs-" not in text
    assert "Admissible actions" not in text
    assert "Skills" not in text
    default = ng.prompt.NumberGuessPrompt(None)
    long = [f"guess {k}" for k in range(1, 101)]
    text = default.build(_ctx(admissible_actions=long, history=()))[0]["content"]
    assert "from 1 to 100" in text
    assert "guess 57" not in text
    assert "turns (oldest first)" not in text


VALID = "<think>middle of 1..10</think><action>guess 5</action>"


@pytest.mark.parametrize(
    ("text", "admissible", "action"),
    [
        (VALID, None, "guess 5"),
        (VALID, ["guess 4", "guess 5"], "guess 5"),
        ("<THINK>x</Think>\n<Action>  Guess\n 07 </ACTION>", None, "guess 7"),
        ("prefix <think></think> mid <action>guess 2</action> suffix", ["guess 2"], "guess 2"),
    ],
)
def test_parser_accepts(
    ng: SimpleNamespace, text: str, admissible: list[str] | None, action: str
) -> None:
    from skillzero.contracts.env import ActionParser, ParsedAction

    parser = ng.prompt.parse_action({})
    assert isinstance(parser, ActionParser)
    assert parser(text, admissible) == ParsedAction(action=action, valid=True)


@pytest.mark.parametrize(
    ("text", "admissible", "reason"),
    [
        ("guess 5", None, "no <action>"),
        ("<action>guess 5</action>", None, "<think>"),
        ("<action>guess 5</action><think>late</think>", None, "before"),
        ("<think>a</think><action>guess 1</action><action>guess 2</action>", None, "exactly one"),
        ("<think>a</think><action>guess 1", None, "exactly one"),
        ("<think>a</think></action>guess 1<action>", None, "comes before"),
        ("<think>a<action>guess 1</action></think>", None, "before"),
        ("<think>a</think><think>b</think><action>guess 1</action>", None, "exactly one"),
        ("<think>a</think><action>  </action>", None, "empty"),
        ("<think>a</think><action>go north</action>", None, "guess N"),
        ("<think>a</think><action>guess 11</action>", ["guess 1", "guess 2"], "admissible"),
        ("<think>a</think><action>guess 99999999999999999999</action>", None, "guess N"),
    ],
)
def test_parser_rejects(
    ng: SimpleNamespace, text: str, admissible: list[str] | None, reason: str
) -> None:
    parsed = ng.prompt.parse_action({})(text, admissible)
    assert parsed.valid is False
    assert parsed.action == ""
    assert reason in parsed.reason


def test_parser_rejects_non_text(ng: SimpleNamespace) -> None:
    parsed = ng.prompt.parse_action({})(None)  # type: ignore[arg-type]
    assert parsed.valid is False
    assert "not text" in parsed.reason


FRAGMENTS = st.sampled_from(
    ["<think>", "</think>", "<action>", "</action>", "<ACTION>", "guess ", "7", "-3", " ", "\n"]
)
RESPONSES = st.one_of(
    st.text(),
    st.lists(st.one_of(FRAGMENTS, st.text(max_size=5)), max_size=12).map("".join),
)
ADMISSIBLE = st.one_of(st.none(), st.lists(st.integers(-5, 20).map(lambda k: f"guess {k}")))


@settings(max_examples=400, deadline=None)
@given(text=RESPONSES, admissible=ADMISSIBLE)
def test_parser_never_raises(ng: SimpleNamespace, text: str, admissible: list[str] | None) -> None:
    from skillzero.contracts.env import ParsedAction

    parsed = ng.prompt.parse_action({})(text, admissible)
    assert isinstance(parsed, ParsedAction)
    if parsed.valid:
        assert re.fullmatch(r"guess -?\d+", parsed.action)
        assert admissible is None or parsed.action in admissible
    else:
        assert parsed.action == ""
        assert parsed.reason


def test_plugin_hooks_register_lazy_factories(ng: SimpleNamespace, plugin_target: Path) -> None:
    from skillzero.core.config import EnvConfig
    from skillzero.registry.specs import EnvSpec, resolve

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    ng.plugin.register_envs(register=lambda *a, **kw: calls.append((a, kw)))
    [(args, kwargs)] = calls
    spec = EnvSpec(*args, **kwargs)
    assert spec.name == "numberguess"
    assert spec.task_types == ("small", "large")
    for factory in (spec.env, spec.tasks, spec.prompt, spec.parser):
        assert isinstance(factory, str)  # imported only when used
        assert callable(resolve(factory))
    assert spec.make_env({}).max_steps == ng.config.NumberGuessConfig.max_steps
    assert issubclass(spec.config, EnvConfig)

    paths: list[str] = []
    ng.plugin.register_config_paths(register=paths.append)
    assert paths == [CONFIG_PATH]

    # Every key of the yaml entry is a field of the schema.
    fields = set(ng.config.NumberGuessConfig.__dataclass_fields__)
    assert set(_plugin_yaml(plugin_target)) <= fields
