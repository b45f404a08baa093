"""Print the package-level import graph of skillzero; exit 1 on a cycle or a layer breach.

    python scripts/import_graph.py              # the graph, one package per line
    python scripts/import_graph.py --modules    # also module-level cycles inside packages

Imports are read from the source with :mod:`ast` (nothing is imported), including those
inside functions and ``if TYPE_CHECKING:`` blocks: a lazy import is still a dependency.
A node is a layer package (``skillzero.contracts``, ``skillzero.registry``,
``skillzero.core``, ``skillzero.cli``) or one plugin (``skillzero.plugins.alfworld``).
The layers, bottom to top, are in :data:`LAYERS`; a module may import its own layer and
the layers below it, never one above. ``tests/test_layers.py`` runs the same checks.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ROOTS: tuple[str, ...] = ("skillzero", "hydra_plugins")

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # the hook specs and the contracts plugins implement; the package's front door
    # (``from skillzero import hookimpl``) re-exports from here and nothing else
    ("contracts", ("skillzero.contracts", "skillzero")),
    # entry-point discovery and component specs
    ("registry", ("skillzero.registry",)),
    # the loop: config, env pool, collector, policy, trainer, evaluation
    ("core", ("skillzero.core",)),
    # every benchmark, algorithm, backend and skill provider
    ("plugins", ("skillzero.plugins",)),
    # the command line and the Hydra search-path plugin
    ("app", ("skillzero.cli", "hydra_plugins")),
)
"""Layers, bottom first, each with the package prefixes it holds."""


@dataclass(frozen=True)
class Import:
    """One import statement: the importing module, the imported module and the line."""

    source: str
    target: str
    line: int


def discover_modules(repo_root: Path = REPO_ROOT, roots: Iterable[str] = ROOTS) -> dict[str, Path]:
    """Every module under ``roots``: dotted name -> file (a package is its __init__)."""
    modules: dict[str, Path] = {}
    for root in roots:
        for path in sorted((repo_root / root).rglob("*.py")):
            parts = list(path.relative_to(repo_root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_package(name: str, modules: Mapping[str, Path]) -> bool:
    return name in modules and modules[name].name == "__init__.py"


def module_imports(modules: Mapping[str, Path]) -> list[Import]:
    """The imports of every module that name another module of ``modules``.

    ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module
    (``from skillzero import registry``), else of ``pkg``."""
    found: list[Import] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = name if _is_package(name, modules) else name.rpartition(".")[0]
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    child = f"{base}.{alias.name}"
                    targets.append(child if child in modules else base)
            for target in targets:
                # an import of a.b.c also runs a.b's and a's __init__; the edge that
                # matters is to the deepest module we know
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.append(Import(name, target, node.lineno))
    return found


def package_of(module: str) -> str:
    """The graph node of a module: ``skillzero.<layer>``, or one plugin package."""
    parts = module.split(".")
    if parts[:2] == ["skillzero", "plugins"] and len(parts) > 2:
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of the layer that holds ``module`` (longest prefix)."""
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    if best < 0:
        raise ValueError(f"module {module!r} is in no layer of LAYERS")
    return best


def package_graph(imports: Iterable[Import]) -> dict[str, set[str]]:
    """Package -> the packages it imports (no self edges)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        source, target = package_of(imp.source), package_of(imp.target)
        graph.setdefault(source, set())
        graph.setdefault(target, set())
        if source != target:
            graph[source].add(target)
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def layer_violations(imports: Iterable[Import], modules: Mapping[str, Path]) -> list[str]:
    """``file:line: a imports b`` for every import of a higher layer."""
    out = []
    for imp in imports:
        source, target = layer_of(imp.source), layer_of(imp.target)
        if target > source:
            where = modules[imp.source].relative_to(REPO_ROOT)
            out.append(
                f"{where}:{imp.line}: {imp.source} ({LAYERS[source][0]}) imports "
                f"{imp.target} ({LAYERS[target][0]})"
            )
    return sorted(out)


def module_cycles(imports: Iterable[Import]) -> list[list[str]]:
    """Module-level cycles whose modules all lie in one package."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if package_of(imp.source) == package_of(imp.target):
            graph.setdefault(imp.source, set()).add(imp.target)
    return cycles(graph)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modules", action="store_true", help="also list module-level cycles inside packages"
    )
    args = parser.parse_args(argv)
    modules = discover_modules()
    imports = module_imports(modules)
    graph = package_graph(imports)
    for node in sorted(graph, key=lambda n: (layer_of(n), n)):
        targets = ", ".join(sorted(graph[node])) or "-"
        print(f"[{LAYERS[layer_of(node)][0]:>9}] {node} -> {targets}")
    status = 0
    for component in cycles(graph):
        print("package cycle: " + " <-> ".join(component), file=sys.stderr)
        status = 1
    for violation in layer_violations(imports, modules):
        print("layer breach: " + violation, file=sys.stderr)
        status = 1
    if args.modules:
        for component in module_cycles(imports):
            print("module cycle (within a package): " + " <-> ".join(component))
    if status == 0:
        print("no package-level cycle; every import points down or sideways")
    return status


if __name__ == "__main__":
    sys.exit(main())
