"""Learning-curve plots from metrics.jsonl, and ``skillzero plot``."""

from __future__ import annotations

import math

import pytest

from skillzero.cli import main
from skillzero.core.metrics_log import METRICS_FILE, MetricsLogger
from skillzero.core.plotting import collect_series, plot_run, rolling_mean

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALL_FIGURES = ["success.png", "tokens.png", "time.png", "loss.png"]


def _step_metrics(step: int) -> dict[str, float]:
    frac = step / 30
    return {
        "rollout/success_rate": frac,
        "rollout/success_rate/pick": min(1.0, 2 * frac),
        "rollout/success_rate/clean": frac / 2,
        "rollout/valid_action_ratio": 0.9,
        "rollout/episode_length": 20 - 10 * frac,
        "rollout/prompt_tokens_per_step": 900 + step,
        "rollout/response_tokens_per_step": 40.0,
        "rollout/skill_tokens_per_step": 200 * (1 - frac),
        "loss/total": 0.1 * math.sin(step),
        "kl/kl": 0.001 * step,
        "entropy/entropy": 1.0 - 0.01 * step,
        "ppo_clip/clip_fraction": 0.05,
        "train/grad_norm": 1.0 + 0.1 * (step % 3),
        "time/generation": 6.0,
        "time/env": 1.5,
        "time/log_probs": 1.0,
        "time/update": 2.0,
        "time/weight_sync": 0.3,
        "time/other": 0.2,
        "time/step": 11.0,
    }


def _write_run(run_dir, steps, metrics_of=_step_metrics, val_every=10):
    with MetricsLogger(run_dir, ["jsonl"]) as logger:
        for step in steps:
            logger.log(metrics_of(step), step=step)
            if val_every and step % val_every == 0:
                logger.log(
                    {
                        "val/success_rate": step / 40,
                        "val/success_rate/pick": step / 30,
                        "val/prompt_tokens_per_step": 950.0,
                    },
                    step=step,
                )


def _assert_pngs(paths, names):
    assert [p.name for p in paths] == names
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC), path
        assert len(data) > 10_000, (path, len(data))


def test_plot_run_writes_every_figure(tmp_path):
    run_dir = tmp_path / "run"
    _write_run(run_dir, range(1, 31))
    paths = plot_run(run_dir)
    assert all(p.parent == run_dir / "plots" for p in paths)
    _assert_pngs(paths, ALL_FIGURES)


def test_plot_run_skips_figures_without_data(tmp_path):
    def only_success_and_time(step):
        return {
            "rollout/success_rate": 0.5,
            "time/generation": 3.0,
            "time/update": 1.0,
            "loss/total": None,  # logged, but never a value
        }

    run_dir = tmp_path / "run"
    _write_run(run_dir, range(5), only_success_and_time, val_every=0)
    out = tmp_path / "figs"
    paths = plot_run(run_dir, out)
    _assert_pngs(paths, ["success.png", "time.png"])
    assert sorted(p.name for p in out.iterdir()) == ["success.png", "time.png"]


def test_plot_run_of_a_single_step(tmp_path):
    run_dir = tmp_path / "run"
    _write_run(run_dir, [0], val_every=1)
    _assert_pngs(plot_run(run_dir), ALL_FIGURES)


def test_success_figure_draws_the_held_out_validations_of_warm_start_and_skill0(tmp_path):
    from skillzero.core import plotting

    run_dir = tmp_path / "run"
    with MetricsLogger(run_dir, ["jsonl"]) as logger:
        logger.log(
            {
                "warm_start/base/val/success_rate": 0.0,
                "warm_start/sft/val/success_rate": 0.17,
            },
            step=0,
        )
        logger.log({"curriculum/without_skills/success_rate": 0.25}, step=1)
        logger.log({"final/no_skills/success_rate": 0.25}, step=2)
    # these points alone make the success figure (no rollout or val/ series at all)
    logged = set(plotting.collect_series(plotting.read_metrics(run_dir)))
    assert logged <= {key for key, *_ in plotting.HELD_OUT_SUCCESS_KEYS}
    _assert_pngs(plot_run(run_dir), ["success.png"])


def test_plot_run_of_metrics_it_does_not_draw(tmp_path):
    run_dir = tmp_path / "run"
    _write_run(run_dir, range(3), lambda step: {"custom/thing": 1.0}, val_every=0)
    assert plot_run(run_dir) == []


def test_collect_series_drops_missing_values_and_keeps_the_last_of_repeated_steps():
    records = [
        {"step": 2, "time": 1.0, "a": 0.5, "b": None},
        {"step": 1, "time": 2.0, "a": 0.25, "b": 3.0},
        {"step": 2, "time": 3.0, "a": 0.75},  # a resumed run repeats step 2
        {"step": 3, "time": 4.0, "a": math.nan, "b": 4.0},
    ]
    assert collect_series(records) == {
        "a": ([1, 2], [0.25, 0.75]),
        "b": ([1, 3], [3.0, 4.0]),
    }


def test_rolling_mean():
    assert rolling_mean([1.0, 2.0, 3.0, 4.0], 2) == [1.0, 1.5, 2.5, 3.5]
    assert rolling_mean([1.0, 3.0], 5) == [1.0, 2.0]


def test_cli_plot_prints_the_written_files(tmp_path, capsys):
    run_dir = tmp_path / "run"
    _write_run(run_dir, range(1, 11))
    out = tmp_path / "figs"
    assert main(["plot", str(run_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / name) for name in ALL_FIGURES]


def test_cli_plot_without_metrics_exits_2(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert f"{tmp_path} has no {METRICS_FILE}" in capsys.readouterr().err

    (tmp_path / METRICS_FILE).write_text("")
    assert main(["plot", str(tmp_path)]) == 2
    assert "has no metrics yet" in capsys.readouterr().err
    assert not (tmp_path / "plots").exists()
