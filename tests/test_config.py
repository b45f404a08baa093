"""Hydra composition with plugin-contributed groups, schema validation and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import pytest
from omegaconf import OmegaConf

from skillzero import cli, hookimpl, registry
from skillzero.core.config import ConfigError, EnvConfig, compose, validate


@dataclass
class ToyEnvConfig(EnvConfig):
    width: int = 3
    word: str = "hello"


class ToyPlugin:
    """Provides an env with a schema, an algo, a backend and components, plus config
    files in a folder of its own, the way a pip-installed plugin does."""

    def __init__(self, conf_dir):
        self.conf_dir = conf_dir

    @hookimpl
    def register_config_paths(self, register):
        register(f"file://{self.conf_dir}")

    @hookimpl
    def register_envs(self, register):
        register(
            "toy",
            env="builtins:dict",
            tasks="builtins:list",
            prompt="builtins:dict",
            parser="builtins:dict",
            task_types=("a", "b"),
            config=ToyEnvConfig,
            description="a toy env",
        )

    @hookimpl
    def register_advantage_estimators(self, register):
        register("toy_adv", "builtins:dict")

    @hookimpl
    def register_rollout_backends(self, register):
        register("toy_backend", "builtins:dict")

    @hookimpl
    def register_loss_terms(self, register):
        register("toy_term", "builtins:dict")

    @hookimpl
    def register_commands(self, register):
        def setup(parser):
            parser.add_argument("--shout", action="store_true")
            parser.set_defaults(handler=lambda args: print("TOY!" if args.shout else "toy") or 0)

        register("toy", setup, help="a toy command")


@pytest.fixture
def toy(tmp_path, plugin):
    conf = tmp_path / "conf"
    for group, text in {
        "env/toy.yaml": "name: toy\nnum_groups: 2\nwidth: 5\n",
        "algo/toyalgo.yaml": (
            "name: toyalgo\nadvantage: {name: toy_adv}\n"
            "loss_terms:\n  - {name: toy_term, coef: 0.5}\n"
        ),
        "algo/badalgo.yaml": "name: badalgo\nadvantage: {name: toy_adv}\n"
        "loss_terms:\n  - {name: missing_term}\n",
        "backend/toy_backend.yaml": "name: toy_backend\nsampling: {max_new_tokens: 16}\n",
    }.items():
        path = conf / group
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    plugin(ToyPlugin(conf), "toy-plugin")
    return conf


BASE = ["env=toy", "algo=toyalgo", "backend=toy_backend"]


def test_plugin_groups_compose_and_validate(toy):
    cfg = validate(compose([*BASE, "trainer.total_steps=7"]))
    assert cfg.env.name == "toy"
    assert cfg.env.width == 5  # from the plugin's yaml
    assert cfg.env.word == "hello"  # from the plugin's schema default
    assert cfg.env.group_size == 4  # from the core EnvConfig default
    assert cfg.algo.loss_terms[0].coef == 0.5
    assert cfg.model.name == "smollm2-135m"
    assert cfg.trainer.total_steps == 7
    assert cfg.skills.provider == "none"
    assert not OmegaConf.is_missing(cfg.trainer, "output_dir")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("env.num_groups=abc", "env.num_groups"),
        ("env.width=wide", "env.width"),
        ("trainer.optim.lr=fast", "trainer.optim.lr"),
    ],
)
def test_wrong_types_name_the_key(toy, override, key):
    with pytest.raises(ConfigError) as err:
        validate(compose([*BASE, override]))
    assert f"'{key}'" in str(err.value)


def test_unknown_key_in_a_schema_is_rejected(toy):
    with pytest.raises(ConfigError, match=r"env\.colour"):
        validate(compose([*BASE, "+env.colour=red"]))


def test_unknown_group_option_lists_available(toy):
    with pytest.raises(ConfigError) as err:
        compose(["env=nope", "algo=toyalgo", "backend=toy_backend"])
    assert "unknown env 'nope'" in str(err.value)
    assert "toy" in str(err.value)


def test_missing_required_groups_are_listed(toy):
    from skillzero.core.config import _mandatory_groups

    required = _mandatory_groups()
    assert required, "the primary config has no required group left to test"
    with pytest.raises(ConfigError) as err:
        compose([])
    message = str(err.value)
    for group in required:
        assert f"choose {group}=<name>" in message
    if "algo" in required:
        assert "toyalgo" in message


def test_unknown_component_in_algo_lists_known(toy):
    with pytest.raises(ConfigError) as err:
        validate(compose(["env=toy", "algo=badalgo", "backend=toy_backend"]))
    message = str(err.value)
    assert "algo.loss_terms[0].name" in message
    assert "missing_term" in message
    assert "toy_term" in message


def test_hydra_finds_the_search_path_plugin():
    from hydra.core.plugins import Plugins
    from hydra.plugins.search_path_plugin import SearchPathPlugin

    from skillzero.core.hydra_search import SkillzeroSearchPathPlugin

    found = Plugins.instance().discover(SearchPathPlugin)
    assert SkillzeroSearchPathPlugin in found


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------


def test_cli_plugins_lists_components(toy, capsys):
    assert cli.main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["builtin"]["distribution"] == "skillzero"
    assert by_name["toy-plugin"]["components"]["envs"] == ["toy"]
    assert cli.main(["plugins"]) == 0
    text = capsys.readouterr().out
    assert "toy-plugin" in text
    assert "envs: toy" in text


def test_cli_envs(toy, capsys):
    assert cli.main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "toy" in out
    assert "task types: a, b" in out


def test_cli_train_reports_problems_without_traceback(toy, capsys):
    assert cli.main(["train", "env=toy"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    assert cli.main(["train", *BASE, "env.num_groups=x"]) == cli.EXIT_USAGE
    assert "'env.num_groups'" in capsys.readouterr().err


def test_cli_train_print_config(toy, capsys):
    assert cli.main(["train", *BASE, "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "width: 5" in out


def test_cli_plugin_command(toy, capsys):
    assert cli.main(["toy", "--shout"]) == 0
    assert capsys.readouterr().out.strip() == "TOY!"


def test_console_script_runs():
    exe = __import__("shutil").which("skillzero") or f"{sys.prefix}/bin/skillzero"
    proc = subprocess.run([exe, "plugins"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "builtin" in proc.stdout
    proc = subprocess.run([exe, "train", "env=nope"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown env 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_registry_state_is_clean_after_toy(toy):
    assert "toy" in registry.components("envs")
