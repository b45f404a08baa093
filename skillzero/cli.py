"""The ``skillzero`` command line.

Built-in commands: ``plugins``, ``envs``, ``train``, ``sft``, ``eval``, ``play``, ``plot``. Plugins
add their own (``skillzero alfworld check``, ...) through the ``register_commands`` hook. Errors the
user can fix (bad config, unknown names, missing data) print one clear message and exit
with status 2; a feature that is not installed exits with status 3.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from skillzero import __version__, registry
from skillzero.core.config import ConfigError

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class CommandError(Exception):
    """An error to print as one line, with an exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


# ----------------------------------------------------------------------------------------
# plugins / envs
# ----------------------------------------------------------------------------------------


def _cmd_plugins(args: argparse.Namespace) -> int:
    rows = []
    for info in registry.loaded_plugins():
        rows.append(
            {
                "name": info.name,
                "module": info.module,
                "distribution": info.distribution,
                "version": info.version,
                "components": registry.plugin_components(info.name),
            }
        )
    failed = [
        {"name": f.name, "module": f.module, "distribution": f.distribution, "error": f.error}
        for f in registry.failed_plugins()
    ]
    if args.json:
        print(json.dumps({"plugins": rows, "failed": failed}, indent=2))
        return 0
    if not rows:
        print("no plugins loaded")
    for row in rows:
        origin = f"{row['distribution']} {row['version']}" if row["distribution"] else "(local)"
        print(f"{row['name']}  [{origin}]  {row['module']}")
        for kind, names in row["components"].items():
            print(f"    {kind}: {', '.join(names)}")
    for row in failed:
        print(f"{row['name']}  FAILED  {row['module']}: {row['error']}")
    return 0


def _cmd_envs(args: argparse.Namespace) -> int:
    envs = registry.components("envs")
    rows = [
        {
            "name": spec.name,
            "plugin": spec.plugin,
            "task_types": list(spec.task_types),
            "description": spec.description,
        }
        for spec in sorted(envs.values(), key=lambda s: s.name)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(
            "no environments registered (install a plugin, e.g. `pip install skillzero[alfworld]`)"
        )
    for row in rows:
        print(f"{row['name']}  (plugin {row['plugin']})  {row['description']}")
        if row["task_types"]:
            print(f"    task types: {', '.join(row['task_types'])}")
    return 0


# ----------------------------------------------------------------------------------------
# train / eval
# ----------------------------------------------------------------------------------------


def _load_config(overrides: Sequence[str], *, fill_required: bool = False) -> Any:
    from skillzero.core.config import compose, validate

    return validate(compose(overrides, fill_required=fill_required))


def _run_entry(module: str, function: str, what: str, cfg: Any) -> int:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module or module.startswith(exc.name + ".")):
            raise CommandError(
                f"{what} is not available in this version of skillzero ({__version__})",
                EXIT_UNAVAILABLE,
            ) from None
        raise
    return int(getattr(mod, function)(cfg) or 0)


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = _load_config(args.overrides)
    if args.print_config:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(cfg))
        return 0
    return _run_entry("skillzero.core.training", "train", "the training loop", cfg)


def _cmd_eval(args: argparse.Namespace) -> int:
    # evaluation does not use an algorithm: don't make the user choose one
    cfg = _load_config(args.overrides, fill_required=True)
    if args.print_config:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(cfg))
        return 0
    return _run_entry("skillzero.core.evaluation", "evaluate", "evaluation", cfg)


def _cmd_sft(args: argparse.Namespace) -> int:
    # supervised fine-tuning has its own objective: `algo` is not used
    cfg = _load_config(args.overrides, fill_required=True)
    if args.print_config:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(cfg))
        return 0
    return _run_entry("skillzero.core.sft", "sft", "supervised fine-tuning", cfg)


def _cmd_play(args: argparse.Namespace) -> int:
    from skillzero.core.play import PlayError, options_from_args, play

    cfg = _load_config(args.overrides, fill_required=True)
    if args.print_config:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(cfg))
        return 0
    try:
        return play(cfg, options_from_args(args))
    except PlayError as exc:
        raise CommandError(str(exc)) from None


def _cmd_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skillzero.core.metrics_log import METRICS_FILE, read_metrics

    run_dir = Path(args.run_dir)
    if not (run_dir / METRICS_FILE).is_file():
        raise CommandError(f"{run_dir} has no {METRICS_FILE}: not a training run folder?")
    if not read_metrics(run_dir):
        raise CommandError(f"{run_dir / METRICS_FILE} has no metrics yet")
    try:
        from skillzero.core.plotting import plot_run

        paths = plot_run(run_dir, Path(args.out) if args.out else None)
    except ImportError as exc:
        raise CommandError(str(exc), EXIT_UNAVAILABLE) from None
    if not paths:
        raise CommandError(f"{run_dir / METRICS_FILE} has none of the metrics the plots show")
    for path in paths:
        print(path)
    return 0


# ----------------------------------------------------------------------------------------
# parser
# ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skillzero",
        description="Reinforcement learning of LLM agents in multi-turn environments.",
    )
    parser.add_argument("--version", action="version", version=f"skillzero {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="installed plugins and the components they register")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_cmd_plugins)

    p = sub.add_parser("envs", help="registered environments")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_cmd_envs)

    for name, handler, text in (
        ("train", _cmd_train, "train a policy (Hydra overrides: env=... algo=... model=...)"),
        ("eval", _cmd_eval, "evaluate a model or checkpoint on an env split"),
        ("sft", _cmd_sft, "supervised warm start from expert plans or recorded episodes"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. env=alfworld")
        p.add_argument(
            "--print-config", action="store_true", help="print the composed config and exit"
        )
        p.set_defaults(handler=handler)

    p = sub.add_parser("play", help="play one episode step by step, showing every prompt")
    from skillzero.core.play import add_arguments as add_play_arguments

    add_play_arguments(p)
    p.set_defaults(handler=_cmd_play)

    p = sub.add_parser("plot", help="draw a run's learning curves (PNG files) from metrics.jsonl")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (trainer.output_dir)")
    p.add_argument("--out", metavar="DIR", help="where to write the PNGs (default RUN_DIR/plots)")
    p.set_defaults(handler=_cmd_plot)

    for spec in registry.components("commands").values():
        if spec.name in sub.choices:
            print(
                f"warning: plugin {spec.plugin!r} command {spec.name!r} clashes with a "
                "built-in command and is ignored",
                file=sys.stderr,
            )
            continue
        p = sub.add_parser(spec.name, help=spec.help or f"(from plugin {spec.plugin})")
        spec.setup(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return EXIT_USAGE
        return int(handler(args) or 0)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except (ConfigError, registry.RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
