"""Learning curves of a run, drawn from its ``metrics.jsonl``.

:func:`plot_run` writes up to four PNG files (``skillzero plot RUN_DIR`` calls it):

``success.png``  rollout success rate, overall and per task type, with validation points
                 (incl. the warm start's and SKILL0's held-out zero-skill validations)
``tokens.png``   prompt, response and skill tokens per step
``time.png``     seconds per training step, stacked by phase
``loss.png``     total loss, KL, entropy, clip fraction, grad norm, learning rate

A figure whose metrics are all absent is not written. Figures are drawn on
:class:`matplotlib.figure.Figure` objects with the Agg canvas, never through pyplot, so
plotting needs no display and leaves the caller's matplotlib backend alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skillzero.core.metrics_log import TIME_FIELDS, read_metrics

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Series = tuple[list[int], list[float]]

SUCCESS_KEY = "rollout/success_rate"
VAL_SUCCESS_KEY = "val/success_rate"
TOKEN_KEYS: tuple[tuple[str, str], ...] = (
    ("rollout/prompt_tokens_per_step", "prompt tokens / step"),
    ("rollout/response_tokens_per_step", "response tokens / step"),
    ("rollout/skill_tokens_per_step", "skill tokens / step"),
)
HELD_OUT_SUCCESS_KEYS: tuple[tuple[str, str, str, str], ...] = (
    ("warm_start/base/val/success_rate", "base model", "X", "dimgrey"),
    ("warm_start/sft/val/success_rate", "after the warm start", "s", "tab:purple"),
    ("initial/no_skills/success_rate", "zero skills, before RL", "v", "tab:olive"),
    ("curriculum/with_skills/success_rate", "with skills (curriculum)", "^", "tab:orange"),
    ("curriculum/without_skills/success_rate", "zero skills (curriculum)", "o", "tab:cyan"),
    ("final/no_skills/success_rate", "zero skills, final", "*", "crimson"),
)
"""Validation success on the held-out tasks logged under other tags than ``val/``
(warm start, SKILL0's curriculum and final zero-skill runs): (key, label, marker,
colour). Drawn as points on the success figure, so one plot shows the base model, the
warm start and the trained agent on the same games."""
VAL_PROMPT_TOKENS_KEY = "val/prompt_tokens_per_step"
LOSS_KEYS: tuple[tuple[str, str], ...] = (
    ("loss/total", "total loss"),
    ("kl/kl", "KL"),
    ("entropy/entropy", "entropy"),
    ("ppo_clip/clip_fraction", "clip fraction"),
    ("train/grad_norm", "grad norm"),
    ("train/lr", "learning rate"),
)
STEP_TIME_KEY = "time/step"
# Below this many points a curve is drawn with markers (one point draws no line).
_MARKER_BELOW = 20


def collect_series(records: Iterable[Mapping[str, Any]]) -> dict[str, Series]:
    """Per metric key, its (steps, values) sorted by step.

    Null and non-finite values are left out. When a step was logged twice (a run resumed
    from an earlier checkpoint repeats steps), the later record wins.
    """
    by_key: dict[str, dict[int, float]] = {}
    for record in records:
        step = int(record["step"])
        for key, value in record.items():
            if key in ("step", "time") or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                by_key.setdefault(key, {})[step] = float(value)
    return {
        key: (sorted(points), [points[s] for s in sorted(points)]) for key, points in by_key.items()
    }


def rolling_mean(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over the last ``window`` values (fewer at the start)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _window(n: int) -> int:
    return max(1, min(25, n // 10))


def _curve(ax: Axes, series: Series, label: str | None, *, color: Any = None, **kw: Any) -> None:
    """Raw values (faint) and their rolling mean; markers when there are few points."""
    steps, values = series
    marker = "o" if len(steps) < _MARKER_BELOW else None
    window = _window(len(steps))
    if window > 1:
        (raw,) = ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        color = raw.get_color()
        values = rolling_mean(values, window)
    ax.plot(steps, values, color=color, label=label, marker=marker, markersize=3, **kw)


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _step_axis(ax: Axes, series: Iterable[Series], *, label: bool = True) -> None:
    """Integer step ticks; a single step gets room either side instead of a 0.1 span."""
    from matplotlib.ticker import MaxNLocator

    steps = [s for ser in series for s in ser[0]]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if steps and min(steps) == max(steps):
        ax.set_xlim(steps[0] - 1, steps[0] + 1)
    if label:
        ax.set_xlabel("training step")


def _save(fig: Figure, path: Path, title: str) -> Path:
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    return path


def _smoothing_note(series: Iterable[Series]) -> str:
    window = max((_window(len(s[0])) for s in series), default=1)
    return f" (lines: mean of last {window} steps)" if window > 1 else ""


def _plot_success(data: Mapping[str, Series], path: Path, title: str) -> Path | None:
    overall = data.get(SUCCESS_KEY)
    types = sorted(k for k in data if k.startswith(SUCCESS_KEY + "/"))
    val = data.get(VAL_SUCCESS_KEY)
    val_types = sorted(k for k in data if k.startswith(VAL_SUCCESS_KEY + "/"))
    held_out = [(data[k], *rest) for k, *rest in HELD_OUT_SUCCESS_KEYS if k in data]
    if overall is None and not types and val is None and not val_types and not held_out:
        return None
    fig = _new_figure(10, 4.5)
    axes = fig.subplots(1, 2 if val_types else 1, sharex=True, squeeze=False)[0]
    ax = axes[0]
    for key in types:
        _curve(ax, data[key], key.rsplit("/", 1)[-1], linewidth=1.0)
    if overall is not None:
        _curve(ax, overall, "all", color="black", linewidth=2.2)
    if val is not None:
        ax.plot(*val, "D", color="crimson", markersize=6, label="validation", zorder=5)
    for series, label, marker, color in held_out:
        ax.plot(*series, marker, color=color, markersize=8, label=f"held out: {label}", zorder=6)
    drawn = [data[k] for k in [*types, SUCCESS_KEY] if k in data]
    title = "rollout success rate" + _smoothing_note(drawn)
    ax.set_title(title + (" and held-out validation" if held_out else ""))
    if val_types:
        for key in val_types:
            axes[1].plot(*data[key], marker="o", markersize=4, label=key.rsplit("/", 1)[-1])
        if val is not None:
            axes[1].plot(*val, "D-", color="crimson", markersize=6, label="all")
        axes[1].set_title("validation success rate")
    every = [data[k] for k in [*types, *val_types, SUCCESS_KEY, VAL_SUCCESS_KEY] if k in data]
    every += [series for series, *_ in held_out]
    for axis in axes:
        _step_axis(axis, every)
        axis.set_ylim(-0.03, 1.03)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="best")
    return _save(fig, path, title)


def _plot_tokens(data: Mapping[str, Series], path: Path, title: str) -> Path | None:
    val = data.get(VAL_PROMPT_TOKENS_KEY)
    prompt_key = TOKEN_KEYS[0][0]
    # Validation prompt lengths share the prompt panel, drawn even without rollout data.
    present = [
        (k, label) for k, label in TOKEN_KEYS if k in data or (k == prompt_key and val is not None)
    ]
    if not present:
        return None
    # One panel per quantity: prompts are ~10-100x longer than responses.
    fig = _new_figure(9, 2.4 * len(present) + 0.6)
    axes = fig.subplots(len(present), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (key, label) in zip(axes, present, strict=True):
        if key in data:
            _curve(ax, data[key], "rollout")
        if key == prompt_key and val is not None:
            ax.plot(*val, "D", color="crimson", markersize=5, label="validation")
            ax.legend(fontsize=8)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        shown = [
            data[k] for k in (key, VAL_PROMPT_TOKENS_KEY if key == prompt_key else "") if k in data
        ]
        top = max(v for ser in shown for v in ser[1])
        # From zero, so a 5% change in prompt length does not look like a cliff.
        ax.set_ylim(0, 1.08 * top if top > 0 else 1)
        _step_axis(ax, shown, label=ax is axes[-1])
    return _save(fig, path, title)


def _plot_time(data: Mapping[str, Series], path: Path, title: str) -> Path | None:
    phases = [(k, label) for k, label in TIME_FIELDS if k in data]
    total = data.get(STEP_TIME_KEY)
    if not phases and total is None:
        return None
    steps = sorted({s for k, _ in phases for s in data[k][0]} | set(total[0] if total else []))
    gaps = [b - a for a, b in itertools.pairwise(steps)]
    width = 0.85 * (min(gaps) if gaps else 1)
    fig = _new_figure(10, 4.5)
    ax = fig.subplots()
    bottom = [0.0] * len(steps)
    index = {s: i for i, s in enumerate(steps)}
    for key, label in phases:
        heights = [0.0] * len(steps)
        for s, v in zip(*data[key], strict=True):
            heights[index[s]] = v
        ax.bar(steps, heights, width=width, bottom=bottom, label=label, linewidth=0)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    if total is not None:
        marker = "o" if len(total[0]) < _MARKER_BELOW else None
        ax.plot(*total, color="black", linewidth=1.2, marker=marker, markersize=3, label="step")
    _step_axis(ax, [(steps, [])])
    ax.set_ylabel("seconds")
    ax.set_title("time per training step")
    ax.grid(alpha=0.3, axis="y")
    # Outside the axes: the bars fill the plot up to the top.
    fig.legend(fontsize=8, loc="outside right upper")
    return _save(fig, path, title)


def _plot_loss(data: Mapping[str, Series], path: Path, title: str) -> Path | None:
    present = [(k, label) for k, label in LOSS_KEYS if k in data]
    if not present:
        return None
    cols = min(3, len(present))
    rows = math.ceil(len(present) / cols)
    fig = _new_figure(4.2 * cols, 3.0 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (key, label) in zip(axes, present, strict=False):
        _curve(ax, data[key], None)
        ax.set_title(label + _smoothing_note([data[key]]), fontsize=10)
        _step_axis(ax, [data[key]])
        ax.grid(alpha=0.3)
    for ax in axes[len(present) :]:
        ax.set_visible(False)
    return _save(fig, path, title)


def plot_run(run_dir: str | Path, out_dir: Path | None = None) -> list[Path]:
    """Draw the learning curves of ``run_dir`` into ``out_dir`` (default
    ``<run_dir>/plots``); return the PNG files written (figures with no data are
    skipped). Raises ``FileNotFoundError`` when the run has no ``metrics.jsonl``."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: `pip install matplotlib`") from exc
    run_dir = Path(run_dir)
    data = collect_series(read_metrics(run_dir))
    out = Path(out_dir) if out_dir is not None else run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    title = run_dir.resolve().name
    written = []
    for filename, draw in (
        ("success.png", _plot_success),
        ("tokens.png", _plot_tokens),
        ("time.png", _plot_time),
        ("loss.png", _plot_loss),
    ):
        path = draw(data, out / filename, title)
        if path is not None:
            written.append(path)
    return written
