"""Plugin discovery and the component registry.

One :class:`pluggy.PluginManager` serves the entry-point group ``skillzero``. The
project's own plugins (ALFWorld, SKILL0, ...) are entry points of the ``skillzero``
distribution and go through exactly the same code path as third-party ones.

Environment variables:

``SKILLZERO_DISABLE_PLUGIN_AUTOLOAD``
    When set to a true value, no entry point is loaded (plugins can still be registered
    by hand with :func:`register_plugin`).
``SKILLZERO_LOAD_PLUGINS``
    A comma-separated list of entry-point names (or distribution names): only those are
    loaded. An empty string loads none.

Loading is lazy (nothing happens until a component is asked for) and idempotent.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from skillzero.contracts import hookspecs
from skillzero.registry.specs import KINDS, Kind

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
DISABLE_AUTOLOAD_ENV = "SKILLZERO_DISABLE_PLUGIN_AUTOLOAD"
LOAD_ONLY_ENV = "SKILLZERO_LOAD_PLUGINS"


class RegistryError(Exception):
    """Base class of the registry's errors; the message is meant for the user."""


class UnknownComponentError(RegistryError, KeyError):
    """A component name that no loaded plugin registered."""

    def __init__(self, kind: Kind, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        listing = ", ".join(sorted(known)) if known else "(none registered)"
        super().__init__(f"unknown {kind.singular} {name!r}; known {kind.name}: {listing}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class DuplicateComponentError(RegistryError):
    """Two plugins registered the same name for the same kind."""


class RegistrationError(RegistryError):
    """A plugin called ``register`` with arguments its kind does not take."""


@dataclass
class PluginInfo:
    """A loaded (or failed) plugin: entry-point name, module and distribution."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    error: str | None = None


@dataclass
class _State:
    loaded: bool = False
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    failed: dict[str, PluginInfo] = field(default_factory=dict)
    components: dict[str, dict[str, Any]] = field(default_factory=dict)


_lock = threading.RLock()
_pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
_pm.add_hookspecs(hookspecs)
_state = _State()


def plugin_manager() -> pluggy.PluginManager:
    """The plugin manager, with entry-point plugins loaded."""
    load_plugins()
    return _pm


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def _entry_points() -> Iterator[metadata.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = (ep.name, ep.value)
        if key in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(key)
        yield ep


def load_plugins() -> None:
    """Discover and register entry-point plugins once; later calls do nothing.

    A plugin whose import (or hook validation) fails produces a warning naming the plugin
    and the error; the other plugins still load.
    """
    if _state.loaded:
        return
    with _lock:
        if _state.loaded:
            return
        _state.loaded = True
        if _truthy(os.environ.get(DISABLE_AUTOLOAD_ENV)):
            return
        only = os.environ.get(LOAD_ONLY_ENV)
        wanted = None if only is None else {n.strip() for n in only.split(",") if n.strip()}
        for ep in _entry_points():
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            if wanted is not None and ep.name not in wanted and dist_name not in wanted:
                continue
            info = PluginInfo(
                ep.name, ep.value, dist_name, dist.version if dist is not None else None
            )
            if _pm.has_plugin(ep.name) or _pm.is_blocked(ep.name):
                continue
            try:
                module = ep.load()
                _register_checked(module, ep.name)
            except Exception as exc:  # a broken plugin must not take the others down
                info.error = f"{type(exc).__name__}: {exc}"
                _state.failed[ep.name] = info
                warnings.warn(
                    f"skillzero plugin {ep.name!r} ({ep.value}"
                    f"{', from ' + dist_name if dist_name else ''}) failed to load: {info.error}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            _state.plugins[ep.name] = info


def _register_checked(plugin: object, name: str) -> None:
    """Register ``plugin`` and validate its hook implementations against the specs."""
    _pm.register(plugin, name=name)
    try:
        for hook_caller in _pm.get_hookcallers(plugin) or []:
            if not hook_caller.has_spec():
                raise pluggy.PluginValidationError(
                    plugin, f"unknown hook {hook_caller.name!r} (known: {hookspecs.ALL_HOOKS})"
                )
    except Exception:
        _pm.unregister(plugin)
        raise


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin object or module by hand (tests, notebooks, scripts).

    Returns the name it was registered under. Invalidates cached component tables.
    """
    load_plugins()
    with _lock:
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__qualname__
        _register_checked(plugin, name)
        _state.plugins[name] = PluginInfo(name, module)
        _state.components.clear()
    return name


def unregister_plugin(name: str) -> None:
    """Undo :func:`register_plugin`."""
    with _lock:
        if _pm.has_plugin(name):
            _pm.unregister(name=name)
        _state.plugins.pop(name, None)
        _state.components.clear()


def reset_for_tests() -> None:
    """Forget every plugin and cached component, so that ``load_plugins`` runs again."""
    with _lock:
        for name, _ in list(_pm.list_name_plugin()):
            _pm.unregister(name=name)
        _state.loaded = False
        _state.plugins.clear()
        _state.failed.clear()
        _state.components.clear()


def loaded_plugins() -> list[PluginInfo]:
    """Plugins that loaded, in load order."""
    load_plugins()
    return list(_state.plugins.values())


def failed_plugins() -> list[PluginInfo]:
    """Plugins whose import or validation failed (each also gave a warning)."""
    load_plugins()
    return list(_state.failed.values())


def _collect(kind: Kind) -> dict[str, Any]:
    table: dict[str, Any] = {}
    hook = getattr(_pm.hook, kind.hook)
    # Call each implementation on its own so that every component is attributed to the
    # plugin that registered it (needed to name both sides of a duplicate).
    for impl in reversed(hook.get_hookimpls()):
        plugin_name = impl.plugin_name

        def register(*args: Any, _plugin: str = plugin_name, **kwargs: Any) -> None:
            spec = _build_spec(kind, _plugin, args, kwargs)
            previous = table.get(spec.name)
            if previous is not None:
                raise DuplicateComponentError(
                    f"{kind.singular} {spec.name!r} is registered by two plugins: "
                    f"{previous.plugin!r} and {_plugin!r}"
                )
            table[spec.name] = spec

        impl.function(register=register)
    return table


def _build_spec(kind: Kind, plugin: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) > len(kind.positional):
        raise RegistrationError(
            f"plugin {plugin!r}: register() for {kind.name} takes at most "
            f"{len(kind.positional)} positional arguments ({', '.join(kind.positional)})"
        )
    fields = dict(zip(kind.positional, args, strict=False))
    overlap = set(fields) & set(kwargs)
    if overlap:
        raise RegistrationError(f"plugin {plugin!r}: {sorted(overlap)} given twice")
    fields.update(kwargs)
    try:
        spec = kind.spec(**fields)
    except TypeError as exc:
        raise RegistrationError(
            f"plugin {plugin!r}: bad register() call for {kind.name}: {exc}"
        ) from None
    if "name" in kind.spec.__dataclass_fields__ and not str(getattr(spec, "name", "")).strip():
        raise RegistrationError(f"plugin {plugin!r}: {kind.singular} registered without a name")
    return replace(spec, plugin=plugin)


def components(kind: str) -> dict[str, Any]:
    """All registered components of ``kind`` (one of :data:`KINDS`), by name."""
    try:
        kind_obj = KINDS[kind]
    except KeyError:
        raise RegistryError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}") from None
    load_plugins()
    with _lock:
        table = _state.components.get(kind)
        if table is None:
            table = _collect(kind_obj)
            _state.components[kind] = table
        return dict(table)


def get(kind: str, name: str) -> Any:
    """The spec registered as ``name`` for ``kind``; an unknown name lists the known ones."""
    table = components(kind)
    try:
        return table[name]
    except KeyError:
        raise UnknownComponentError(KINDS[kind], name, list(table)) from None


def plugin_components(plugin: str) -> dict[str, list[str]]:
    """For one plugin: the names it registered, by kind (kinds with none left out)."""
    result: dict[str, list[str]] = {}
    for kind in KINDS:
        names = [name for name, spec in components(kind).items() if spec.plugin == plugin]
        if names:
            result[kind] = sorted(names)
    return result


def config_search_paths() -> list[str]:
    """Hydra search paths contributed by plugins (``register_config_paths``)."""
    return [spec.path for spec in components("config_paths").values()]
