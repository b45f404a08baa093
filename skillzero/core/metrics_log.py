"""Run-folder metrics: console lines, ``metrics.jsonl``, TensorBoard, Weights & Biases.

:class:`MetricsLogger` sends every ``log(metrics, step)`` call to its sinks:

``console``      one compact line per call on stdout (success, valid actions, episode
                 length, tokens per step, loss, grad norm, seconds per phase)
``jsonl``        one JSON object per call appended to ``<run_dir>/metrics.jsonl``:
                 ``step``, ``time`` (unix seconds), then the metrics; NaN/inf are written
                 as ``null`` so every line is strict JSON; flushed after every write
``tensorboard``  scalars in ``<run_dir>/tensorboard`` (needs ``skillzero[logging]``)
``wandb``        a Weights & Biases run (needs ``skillzero[logging]``; ``WANDB_MODE``
                 is respected, e.g. ``offline``)

``metrics.jsonl`` is the run's own record: :func:`read_metrics` reads it back (skipping a
line left half-written by a crash) and :func:`skillzero.core.plotting.plot_run` draws
the learning curves from it.

Metric keys used by the trainer (the console line and the plots know them):

- ``rollout/success_rate``, ``rollout/success_rate/<type>``, ``rollout/valid_action_ratio``,
  ``rollout/episode_length``, ``rollout/prompt_tokens_per_step``,
  ``rollout/response_tokens_per_step``, ``rollout/skill_tokens_per_step``
- ``val/success_rate``, ``val/success_rate/<type>``, ``val/prompt_tokens_per_step``
- ``loss/total``, ``ppo_clip/clip_fraction``, ``kl/kl``, ``entropy/entropy``,
  ``train/grad_norm``, ``train/lr``
- ``time/generation``, ``time/env``, ``time/log_probs``, ``time/update``,
  ``time/weight_sync``, ``time/other``, ``time/step`` (seconds)

Only rank 0 of a distributed run should write: construct the others with
``enabled=False`` and every method is a no-op.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

METRICS_FILE = "metrics.jsonl"
TABLES_FILE = "tables.jsonl"
PROMPTS_FILE = "prompts.jsonl"
TENSORBOARD_DIR = "tensorboard"
KNOWN_SINKS: tuple[str, ...] = ("console", "jsonl", "tensorboard", "wandb")
NO_PROGRESS_ENV = "SKILLZERO_NO_PROGRESS"

# (key, label, format) of the console line, in display order.
CONSOLE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("rollout/success_rate", "success", "{:.3f}"),
    ("val/success_rate", "val", "{:.3f}"),
    ("rollout/valid_action_ratio", "valid", "{:.3f}"),
    ("rollout/episode_length", "len", "{:.1f}"),
    ("rollout/prompt_tokens_per_step", "prompt_tok", "{:.0f}"),
    ("rollout/response_tokens_per_step", "resp_tok", "{:.0f}"),
    ("loss/total", "loss", "{:.4g}"),
    ("kl/kl", "kl", "{:.3g}"),
    ("train/grad_norm", "gnorm", "{:.3g}"),
)
# (key, label) of the phases of one training step, in the order they run.
TIME_FIELDS: tuple[tuple[str, str], ...] = (
    ("time/generation", "gen"),
    ("time/env", "env"),
    ("time/log_probs", "logp"),
    ("time/callbacks", "cb"),
    ("time/update", "upd"),
    ("time/weight_sync", "sync"),
    ("time/validation", "val"),
    ("time/checkpoint", "ckpt"),
    ("time/other", "other"),
)
# phases that are 0 in most steps: shown on the console only when they took time
_OCCASIONAL = frozenset({"time/callbacks", "time/validation", "time/checkpoint"})
_TABLE_MAX_ROWS = 20
_TABLE_MAX_CELL = 40


# ----------------------------------------------------------------------------------------
# Values
# ----------------------------------------------------------------------------------------


def _to_float(key: str, value: Any) -> float | None:
    """``value`` as a float (0-d tensors and numpy scalars included); None stays None."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metric {key!r} is not a number: {value!r}") from None


def _json_safe(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, str | int | bool) or value is None:
        return value
    try:  # tensors and numpy scalars
        return _json_safe(float(value))
    except (TypeError, ValueError):
        return str(value)


def _plain_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """A plain dict of ``config`` (an OmegaConf node is resolved)."""
    if config is None:
        return {}
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(config, DictConfig):
            return OmegaConf.to_container(config, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover - omegaconf is a core dependency
        pass
    return dict(config)


def _format_cell(value: Any) -> str:
    if value is None:
        return ""
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    text = text.replace("\n", "\\n")
    if len(text) > _TABLE_MAX_CELL:
        text = text[: _TABLE_MAX_CELL - 1] + "…"
    return text


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The union of the rows' keys, in order of first appearance."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(str(k) for k in row))
    return list(columns)


def format_table(rows: Sequence[Mapping[str, Any]], *, markdown: bool = False) -> str:
    """``rows`` as an aligned text table (or a markdown table); long cells are cut."""
    columns = _columns(rows)
    if not columns:
        return "(empty table)"
    shown = rows if markdown else rows[:_TABLE_MAX_ROWS]
    cells = [[_format_cell(row.get(c)) for c in columns] for row in shown]
    if markdown:
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in cells]
        return "\n".join(lines)
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    if len(rows) > len(shown):
        lines.append(f"... ({len(rows) - len(shown)} more rows)")
    return "\n".join(line.rstrip() for line in lines)


def format_console_line(metrics: Mapping[str, float | None], step: int) -> str:
    """The console summary of one ``log`` call (see :data:`CONSOLE_FIELDS`)."""
    parts = [f"step {step}"]
    for key, label, fmt in CONSOLE_FIELDS:
        value = metrics.get(key)
        if value is not None:
            parts.append(f"{label} {fmt.format(value)}")
    phases = [
        f"{label} {metrics[key]:.1f}"
        for key, label in TIME_FIELDS
        if metrics.get(key) is not None and (metrics[key] > 0 or key not in _OCCASIONAL)
    ]
    total = metrics.get("time/step")
    if total is not None or phases:
        head = f"{total:.1f}s" if total is not None else "time"
        parts.append(head + (f" ({' '.join(phases)})" if phases else ""))
    if len(parts) == 1:
        # Nothing the summary knows (a callback's own metrics): show a few as they are.
        items = [(k, v) for k, v in metrics.items() if v is not None]
        parts += [f"{k} {v:.4g}" for k, v in items[:4]]
        if len(items) > 4:
            parts.append(f"(+{len(items) - 4} more)")
    return " | ".join(parts)


# ----------------------------------------------------------------------------------------
# Sinks
# ----------------------------------------------------------------------------------------


class _Sink:
    def log(self, metrics: Mapping[str, float | None], step: int) -> None:
        raise NotImplementedError

    def log_table(self, name: str, rows: list[dict[str, Any]], step: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _ConsoleSink(_Sink):
    def log(self, metrics: Mapping[str, float | None], step: int) -> None:
        # tqdm.write lifts any progress bar (on stderr) out of the way of the line.
        tqdm.write(format_console_line(metrics, step), file=sys.stdout)
        sys.stdout.flush()  # a step line must reach a log file (not a tty) at once

    def log_table(self, name: str, rows: list[dict[str, Any]], step: int) -> None:
        tqdm.write(f"{name} (step {step})\n{format_table(rows)}", file=sys.stdout)
        sys.stdout.flush()


class _JsonlSink(_Sink):
    def __init__(self, run_dir: Path) -> None:
        self.metrics_path = run_dir / METRICS_FILE
        self.tables_path = run_dir / TABLES_FILE
        self._files: dict[Path, Any] = {}

    def _file(self, path: Path) -> Any:
        handle = self._files.get(path)
        if handle is None:
            handle = path.open("a", encoding="utf-8")
            # A crash can leave a half-written last line; a resumed run starts on a fresh
            # line so that only that fragment is lost, not the first new record too.
            if path.stat().st_size > 0:
                with path.open("rb") as existing:
                    existing.seek(-1, os.SEEK_END)
                    if existing.read(1) != b"\n":
                        handle.write("\n")
            self._files[path] = handle
        return handle

    def _append(self, path: Path, record: Mapping[str, Any]) -> None:
        handle = self._file(path)
        handle.write(json.dumps(_json_safe(record), allow_nan=False) + "\n")
        handle.flush()

    def log(self, metrics: Mapping[str, float | None], step: int) -> None:
        self._append(self.metrics_path, {"step": step, "time": time.time(), **metrics})

    def log_table(self, name: str, rows: list[dict[str, Any]], step: int) -> None:
        self._append(self.tables_path, {"step": step, "name": name, "rows": rows})

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()


class _TensorBoardSink(_Sink):
    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        try:
            import tensorboard  # noqa: F401  (torch's writer needs the package)
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ImportError(
                "trainer.loggers=[tensorboard] needs the tensorboard package: "
                "`pip install skillzero[logging]`"
            ) from exc
        self.writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR), flush_secs=30)
        if config:
            text = json.dumps(_json_safe(config), indent=2)
            # Indented by four spaces: a markdown code block in TensorBoard's text tab.
            self.writer.add_text("config", "\n".join("    " + ln for ln in text.splitlines()), 0)

    def log(self, metrics: Mapping[str, float | None], step: int) -> None:
        for key, value in metrics.items():
            if value is not None:
                self.writer.add_scalar(key, value, step)

    def log_table(self, name: str, rows: list[dict[str, Any]], step: int) -> None:
        self.writer.add_text(name, format_table(rows, markdown=True), step)

    def close(self) -> None:
        self.writer.close()


class _WandbSink(_Sink):
    def __init__(
        self, run_dir: Path, config: dict[str, Any], project: str, run_name: str | None
    ) -> None:
        try:
            import wandb
        except ImportError as exc:
            raise ImportError(
                "trainer.loggers=[wandb] needs the wandb package: `pip install skillzero[logging]`"
            ) from exc
        self._wandb = wandb
        kwargs: dict[str, Any] = {
            "project": project,
            "name": run_name,
            "config": _json_safe(config),
            "dir": str(run_dir),
        }
        if os.environ.get("WANDB_MODE"):
            kwargs["mode"] = os.environ["WANDB_MODE"]
        self.run = wandb.init(**kwargs)

    def log(self, metrics: Mapping[str, float | None], step: int) -> None:
        self.run.log({k: v for k, v in metrics.items() if v is not None}, step=step)

    def log_table(self, name: str, rows: list[dict[str, Any]], step: int) -> None:
        columns = _columns(rows)
        data = [[_json_safe(row.get(c)) for c in columns] for row in rows]
        self.run.log({name: self._wandb.Table(columns=columns, data=data)}, step=step)

    def close(self) -> None:
        self.run.finish()


# ----------------------------------------------------------------------------------------
# The logger
# ----------------------------------------------------------------------------------------


class MetricsLogger:
    """Sends metrics and small tables to the chosen sinks (see the module docstring).

    ``loggers`` names the sinks (``trainer.loggers``); an unknown name raises a
    ``ValueError`` on every rank, a sink whose package is missing an ``ImportError`` that
    names the extra to install. ``config`` is recorded by TensorBoard and W&B;
    ``project`` and ``run_name`` name the W&B run.
    """

    def __init__(
        self,
        run_dir: str | Path,
        loggers: Sequence[str] = ("console", "jsonl"),
        *,
        config: Mapping[str, Any] | None = None,
        project: str = "skillzero",
        run_name: str | None = None,
        enabled: bool = True,
    ) -> None:
        if isinstance(loggers, str):
            loggers = [loggers]
        unknown = [name for name in loggers if name not in KNOWN_SINKS]
        if unknown:
            raise ValueError(
                f"unknown logger(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(KNOWN_SINKS)}"
            )
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.sink_names: tuple[str, ...] = tuple(dict.fromkeys(loggers)) if enabled else ()
        self._sinks: list[_Sink] = []
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        plain = _plain_config(config)
        try:
            for name in self.sink_names:
                if name == "console":
                    self._sinks.append(_ConsoleSink())
                elif name == "jsonl":
                    self._sinks.append(_JsonlSink(self.run_dir))
                elif name == "tensorboard":
                    self._sinks.append(_TensorBoardSink(self.run_dir, plain))
                elif name == "wandb":
                    self._sinks.append(_WandbSink(self.run_dir, plain, project, run_name))
        except BaseException:
            self.close()
            raise

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        """Record ``metrics`` (numbers; 0-d tensors accepted; None = absent) at ``step``."""
        if not self._sinks:
            return
        values = {str(k): _to_float(str(k), v) for k, v in metrics.items()}
        for sink in self._sinks:
            sink.log(values, int(step))

    def log_table(self, name: str, rows: list[dict[str, Any]], step: int) -> None:
        """Record a small table (e.g. sample trajectories): one dict per row."""
        if not self._sinks:
            return
        rows = [dict(row) for row in rows]
        for sink in self._sinks:
            sink.log_table(name, rows, int(step))

    def close(self) -> None:
        """Flush and close every sink; calling it twice is harmless."""
        sinks, self._sinks = self._sinks, []
        for sink in sinks:
            sink.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def append_prompts(
    run_dir: str | Path, step: int, tag: str, prompts: Sequence[Mapping[str, Any]]
) -> None:
    """Append sample prompts (what the policy actually saw) to ``prompts.jsonl``, each
    with its step and tag (``rollout``, ``val``, ...)."""
    if not prompts:
        return
    with open(Path(run_dir) / PROMPTS_FILE, "a", encoding="utf-8") as handle:
        for record in prompts:
            handle.write(json.dumps({"step": step, "tag": tag, **record}) + "\n")


# ----------------------------------------------------------------------------------------
# Reading back
# ----------------------------------------------------------------------------------------


def _jsonl_path(run_dir: str | Path, filename: str) -> Path:
    path = Path(run_dir)
    return path if path.is_file() else path / filename


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            # The last line of a crashed run is expected to be cut short; a bad line
            # elsewhere is a fragment a resumed run wrote past, worth a word.
            if number != len(lines):
                warnings.warn(f"{path}:{number}: skipping a line that is not JSON", stacklevel=3)
            continue
        if isinstance(record, dict) and "step" in record:
            yield record


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``<run_dir>/metrics.jsonl`` (or of that file itself) in order.

    ``null`` values come back as ``None``. A truncated last line (a crash mid-write) is
    skipped. Raises ``FileNotFoundError`` when there is no such file.
    """
    return list(_read_jsonl(_jsonl_path(run_dir, METRICS_FILE)))


def read_tables(run_dir: str | Path, name: str | None = None) -> list[dict[str, Any]]:
    """The ``{step, name, rows}`` records of ``<run_dir>/tables.jsonl``, optionally only
    those called ``name``."""
    records = _read_jsonl(_jsonl_path(run_dir, TABLES_FILE))
    return [r for r in records if name is None or r.get("name") == name]


# ----------------------------------------------------------------------------------------
# Progress bars
# ----------------------------------------------------------------------------------------


def progress_disabled() -> bool:
    """True when ``$SKILLZERO_NO_PROGRESS`` asks for no progress bars."""
    return os.environ.get(NO_PROGRESS_ENV, "").strip().lower() in ("1", "true", "yes")


def progress(
    total: int, desc: str, enabled: bool = True, unit: str = "it", *, leave: bool = False
) -> tqdm:
    """A tqdm bar on stderr; a silent one when not ``enabled`` (other ranks) or when
    ``$SKILLZERO_NO_PROGRESS=1``. Bars vanish when done (``leave``) since the console
    line of the step says what they measured."""
    interactive = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not enabled or progress_disabled(),
        leave=leave,
        dynamic_ncols=True,
        # Redirected to a file, a bar would add a line every 0.1 s.
        mininterval=0.1 if interactive else 10.0,
    )
