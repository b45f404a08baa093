"""Plugin discovery through real entry points, and the component registry."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from skillzero import hookimpl, registry
from skillzero.contracts import hookspecs
from skillzero.registry.specs import KINDS, ComponentSpec, resolve


def make_distribution(root: Path, dist: str, plugins: dict[str, str]) -> None:
    """Write an installed distribution (dist-info with entry points) and its modules.

    ``plugins`` maps an entry-point name to the source of the module it points at.
    """
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    lines = ["[skillzero]"]
    for ep_name, source in plugins.items():
        module = f"{dist.replace('-', '_')}_{ep_name}"
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        lines.append(f"{ep_name} = {module}")
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


GOOD = """
from skillzero import hookimpl

@hookimpl
def register_loss_terms(register):
    register("{name}", "math:sqrt", description="a test term")
"""


@pytest.fixture
def site(tmp_path, monkeypatch, fresh_registry):
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtin_plugin_is_an_entry_point_of_the_skillzero_distribution():
    infos = {p.name: p for p in registry.loaded_plugins()}
    assert "builtin" in infos
    assert infos["builtin"].distribution == "skillzero"
    assert infos["builtin"].module == "skillzero.plugins.builtin"
    assert set(registry.components("env_workers")) >= {"process", "inline"}
    assert registry.plugin_components("builtin")["skill_providers"] == ["none"]


def test_third_party_distribution_is_discovered(site):
    make_distribution(site, "skillzero-acme", {"acme": GOOD.format(name="acme_term")})
    spec = registry.get("loss_terms", "acme_term")
    assert spec.plugin == "acme"
    info = {p.name: p for p in registry.loaded_plugins()}["acme"]
    assert (info.distribution, info.version) == ("skillzero-acme", "1.2.3")
    assert spec.create(16.0) == 4.0  # the string factory resolved on use


def test_loading_is_idempotent(site):
    make_distribution(site, "skillzero-acme", {"acme": GOOD.format(name="acme_term")})
    registry.load_plugins()
    registry.load_plugins()
    names = [p.name for p in registry.loaded_plugins()]
    assert names.count("acme") == 1
    assert list(registry.components("loss_terms")).count("acme_term") == 1


def test_duplicate_component_names_both_plugins(site):
    make_distribution(site, "skillzero-one", {"one": GOOD.format(name="same")})
    make_distribution(site, "skillzero-two", {"two": GOOD.format(name="same")})
    with pytest.raises(registry.DuplicateComponentError) as err:
        registry.components("loss_terms")
    assert "'one'" in str(err.value)
    assert "'two'" in str(err.value)
    assert "'same'" in str(err.value)


def test_unknown_name_lists_known_names():
    with pytest.raises(registry.UnknownComponentError) as err:
        registry.get("env_workers", "nope")
    message = str(err.value)
    assert "unknown env worker backend 'nope'" in message
    assert "inline" in message
    assert "process" in message


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(registry.RegistryError, match="unknown component kind 'gadgets'"):
        registry.components("gadgets")


def test_broken_plugin_warns_and_others_still_load(site):
    make_distribution(
        site,
        "skillzero-broken",
        {"broken": "raise ImportError('needs the frobnicator package')"},
    )
    make_distribution(site, "skillzero-fine", {"fine": GOOD.format(name="fine_term")})
    with pytest.warns(RuntimeWarning, match=r"plugin 'broken'.*frobnicator"):
        registry.load_plugins()
    assert "fine_term" in registry.components("loss_terms")
    failed = {p.name: p for p in registry.failed_plugins()}
    assert "frobnicator" in failed["broken"].error
    assert "broken" not in {p.name for p in registry.loaded_plugins()}


def test_misspelled_hook_is_rejected_with_a_warning(site):
    make_distribution(
        site,
        "skillzero-typo",
        {
            "typo": """
            from skillzero import hookimpl

            @hookimpl
            def register_env(register):
                pass
            """
        },
    )
    with pytest.warns(RuntimeWarning, match=r"plugin 'typo'.*register_env"):
        registry.load_plugins()
    assert "typo" not in {p.name for p in registry.loaded_plugins()}


def test_disable_autoload(site, monkeypatch):
    make_distribution(site, "skillzero-acme", {"acme": GOOD.format(name="acme_term")})
    monkeypatch.setenv(registry.DISABLE_AUTOLOAD_ENV, "1")
    assert registry.loaded_plugins() == []
    assert registry.components("loss_terms") == {}


def test_load_only_named_plugins(site, monkeypatch):
    make_distribution(
        site,
        "skillzero-pair",
        {"first": GOOD.format(name="first_term"), "second": GOOD.format(name="second_term")},
    )
    monkeypatch.setenv(registry.LOAD_ONLY_ENV, "second")
    assert [p.name for p in registry.loaded_plugins()] == ["second"]
    assert set(registry.components("loss_terms")) == {"second_term"}


def test_load_only_by_distribution_name(site, monkeypatch):
    make_distribution(
        site,
        "skillzero-pair",
        {"first": GOOD.format(name="first_term"), "second": GOOD.format(name="second_term")},
    )
    monkeypatch.setenv(registry.LOAD_ONLY_ENV, "skillzero-pair")
    assert sorted(p.name for p in registry.loaded_plugins()) == ["first", "second"]


def test_register_by_hand_and_bad_register_calls(plugin):
    class Good:
        @hookimpl
        def register_skill_providers(self, register):
            register("by_hand", "skillzero.contracts.skills:NoSkills", description="d")

    plugin(Good(), "by-hand")
    spec = registry.get("skill_providers", "by_hand")
    assert isinstance(spec, ComponentSpec)
    assert spec.plugin == "by-hand"

    class Bad:
        @hookimpl
        def register_envs(self, register):
            register("bad_env", env="x:y", colour="blue")

    plugin(Bad(), "bad")
    with pytest.raises(registry.RegistrationError, match=r"plugin 'bad'.*colour"):
        registry.components("envs")


def test_resolve_rejects_malformed_factories():
    assert resolve("os.path:join")("a", "b") == "a/b"
    with pytest.raises(TypeError, match="module:attribute"):
        resolve("os.path.join")
    with pytest.raises(TypeError, match="not callable"):
        resolve("os:sep")


def test_every_hookspec_is_documented_and_known():
    specs = {
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("register_")
    }
    assert specs == set(hookspecs.ALL_HOOKS)
    for name in specs:
        fn = getattr(hookspecs, name)
        assert fn.__doc__, f"{name} needs a docstring"
        assert len(fn.__doc__.strip()) > 40, f"{name} needs a real docstring"
        assert list(inspect.signature(fn).parameters) == ["register"], name
    assert {kind.hook for kind in KINDS.values()} == specs


def test_discovery_imports_no_heavy_modules():
    code = (
        "import sys, json\n"
        "from skillzero import registry\n"
        "before = {m for m in ('torch', 'vllm', 'transformers') if m in sys.modules}\n"
        "for kind in registry.KINDS: registry.components(kind)\n"
        "after = [m for m in ('torch', 'vllm', 'transformers', 'tensordict') if m in sys.modules]\n"
        "print(json.dumps({'before': sorted(before), 'after': after,"
        " 'plugins': [p.name for p in registry.loaded_plugins()]}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out)
    assert "builtin" in result["plugins"]
    assert result["after"] == []
