"""The package's layers point one way: contracts <- registry <- core <- plugins <- cli.

Read from the source with ``ast`` (``scripts/import_graph.py``), lazy imports inside
functions included: a lower layer never imports a higher one, the core and the registry
never import a plugin, and no two packages import each other, directly or round a loop.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "import_graph.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


graph_tool = _load_script()


@pytest.fixture(scope="module")
def imports() -> list:
    return graph_tool.module_imports(graph_tool.discover_modules())


def test_no_lower_layer_imports_a_higher_one(imports) -> None:
    modules = graph_tool.discover_modules()
    assert graph_tool.layer_violations(imports, modules) == []


def test_core_registry_and_contracts_never_import_a_plugin(imports) -> None:
    below_plugins = ("skillzero.contracts", "skillzero.registry", "skillzero.core")
    offending = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in imports
        if imp.source.startswith(below_plugins) and imp.target.startswith("skillzero.plugins")
    ]
    assert offending == []


def test_contracts_import_nothing_above_them(imports) -> None:
    outside = {
        imp.target
        for imp in imports
        if imp.source.startswith("skillzero.contracts")
        and not imp.target.startswith("skillzero.contracts")
    }
    assert outside == set()


def test_package_graph_has_no_cycle(imports) -> None:
    graph = graph_tool.package_graph(imports)
    assert {"skillzero.contracts", "skillzero.registry", "skillzero.core"} <= set(graph)
    assert graph_tool.cycles(graph) == []


def test_alfworld_modules_import_each_other_without_a_loop(imports) -> None:
    """Data resolution no longer reaches into the game generator (which builds on the
    loader and the env), so the plugin's modules form no import loop."""
    loops = [
        component
        for component in graph_tool.module_cycles(imports)
        if component[0].startswith("skillzero.plugins.alfworld")
    ]
    assert loops == []


def test_the_checker_sees_a_breach_and_a_cycle(tmp_path: Path) -> None:
    """The checks fail where they should: a contract importing the core is a breach,
    and two packages importing each other a cycle."""
    root = tmp_path / "skillzero"
    for package in ("", "contracts", "core"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    (root / "contracts" / "env.py").write_text("from skillzero.core import loop\n")
    (root / "core" / "loop.py").write_text("def f():\n    from skillzero.contracts.env import X\n")
    modules = graph_tool.discover_modules(tmp_path, ("skillzero",))
    found = graph_tool.module_imports(modules)
    graph = graph_tool.package_graph(found)
    assert graph_tool.cycles(graph) == [["skillzero.contracts", "skillzero.core"]]
    breaches = [
        (imp.source, imp.target)
        for imp in found
        if graph_tool.layer_of(imp.target) > graph_tool.layer_of(imp.source)
    ]
    assert breaches == [("skillzero.contracts.env", "skillzero.core.loop")]


def test_script_exits_zero_and_prints_the_graph() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "skillzero.core -> skillzero.contracts, skillzero.registry" in done.stdout


@pytest.mark.parametrize(
    "old", ["hookspecs", "env", "skills", "rollout", "losses", "callbacks", "trajectory"]
)
def test_old_core_names_are_the_contract_modules(old: str) -> None:
    """Plugins written against ``skillzero.core.<name>`` keep working: the old name is
    the contract module itself."""
    assert importlib.import_module(f"skillzero.core.{old}") is importlib.import_module(
        f"skillzero.contracts.{old}"
    )


def test_public_names_plugins_use_still_import() -> None:
    from skillzero import hookimpl
    from skillzero.contracts import hookspecs
    from skillzero.core.config import EnvConfig, cfg_get
    from skillzero.core.env import PromptContext, ResponseFormat, Task, TextEnv
    from skillzero.core.hookspecs import hookimpl as core_hookimpl
    from skillzero.core.training import (
        Trainer,
        ValidationResult,
        balanced_subset,
        episode_metrics,
        make_skill_provider,
        sampling_params,
    )
    from skillzero.core.trajectory import K
    from skillzero.plugins.alfworld.prompt import ResponseFormat as AlfworldFormat
    from skillzero.plugins.webshop.prompt import ResponseFormat as WebshopFormat

    assert hookimpl is core_hookimpl is hookspecs.hookimpl
    assert AlfworldFormat is WebshopFormat is ResponseFormat
    assert all((EnvConfig, cfg_get, PromptContext, Task, TextEnv, K, Trainer, ValidationResult))
    assert all((balanced_subset, episode_metrics, make_skill_provider, sampling_params))
