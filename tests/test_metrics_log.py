"""MetricsLogger sinks, reading metrics.jsonl back, and progress bars."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

from skillzero.core.metrics_log import (
    METRICS_FILE,
    TABLES_FILE,
    MetricsLogger,
    format_console_line,
    format_table,
    progress,
    read_metrics,
    read_tables,
)


def _strict_json(line: str) -> dict:
    def reject(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(line, parse_constant=reject)


def test_jsonl_round_trip_with_nan_as_null(tmp_path):
    with MetricsLogger(tmp_path, ["jsonl"]) as logger:
        logger.log(
            {
                "rollout/success_rate": 0.5,
                "loss/total": math.nan,
                "kl/kl": math.inf,
                "train/grad_norm": torch.tensor(2.5),
                "rollout/episode_length": 12,
                "val/success_rate": None,
            },
            step=1,
        )
        # Flushed after every write: readable while the run is still going.
        records = read_metrics(tmp_path)
        logger.log({"rollout/success_rate": 0.75}, step=2)

    assert len(records) == 1
    lines = (tmp_path / METRICS_FILE).read_text().splitlines()
    assert len(lines) == 2
    first = _strict_json(lines[0])
    assert list(first)[:2] == ["step", "time"]
    assert isinstance(first["time"], float)
    assert first["rollout/episode_length"] == 12.0
    assert isinstance(first["rollout/episode_length"], float)

    records = read_metrics(tmp_path)
    assert [r["step"] for r in records] == [1, 2]
    first = {k: v for k, v in records[0].items() if k != "time"}
    assert first == {
        "step": 1,
        "rollout/success_rate": 0.5,
        "loss/total": None,
        "kl/kl": None,
        "train/grad_norm": 2.5,
        "rollout/episode_length": 12.0,
        "val/success_rate": None,
    }
    assert records[1]["rollout/success_rate"] == 0.75
    # The file itself can be named too.
    assert read_metrics(tmp_path / METRICS_FILE) == records


def test_truncated_last_line_is_skipped_and_a_resumed_run_starts_a_fresh_line(tmp_path):
    with MetricsLogger(tmp_path, ["jsonl"]) as logger:
        logger.log({"rollout/success_rate": 0.25}, step=1)
        logger.log({"rollout/success_rate": 0.5}, step=2)
    path = tmp_path / METRICS_FILE
    with path.open("a") as handle:  # a crash in the middle of a write
        handle.write('{"step": 3, "time": 1.0, "rollout/succ')

    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]

    with MetricsLogger(tmp_path, ["jsonl"]) as logger:
        logger.log({"rollout/success_rate": 1.0}, step=3)
    # The fragment is now a bad line in the middle: skipped with a warning.
    with pytest.warns(UserWarning, match=r"metrics.jsonl:3"):
        records = read_metrics(tmp_path)
    assert [(r["step"], r["rollout/success_rate"]) for r in records] == [
        (1, 0.25),
        (2, 0.5),
        (3, 1.0),
    ]


def test_read_metrics_of_a_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_metrics(tmp_path)


def test_console_line_shows_step_success_and_phase_times(tmp_path, capsys):
    metrics = {
        "rollout/success_rate": 0.375,
        "rollout/valid_action_ratio": 0.9,
        "rollout/episode_length": 12.5,
        "rollout/prompt_tokens_per_step": 812.4,
        "rollout/response_tokens_per_step": 43.0,
        "loss/total": 0.0123,
        "train/grad_norm": 1.5,
        "time/generation": 6.0,
        "time/env": 2.0,
        "time/update": 2.0,
        "time/step": 10.0,
        "rollout/success_rate/pick": 1.0,  # not in the compact line
    }
    with MetricsLogger(tmp_path, ["console"]) as logger:
        logger.log(metrics, step=7)
    out = capsys.readouterr().out
    assert out == (
        "step 7 | success 0.375 | valid 0.900 | len 12.5 | prompt_tok 812 | resp_tok 43 | "
        "loss 0.0123 | gnorm 1.5 | 10.0s (gen 6.0 env 2.0 upd 2.0)\n"
    )
    # The console sink alone writes no files.
    assert not (tmp_path / METRICS_FILE).exists()


def test_console_line_of_metrics_it_does_not_know():
    line = format_console_line({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": 5.0}, 3)
    assert line == "step 3 | a 1 | b 2 | c 3 | d 4 | (+1 more)"
    assert format_console_line({"val/success_rate": 0.5}, 10) == "step 10 | val 0.500"


def test_unknown_sink_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"'stdout'.*known: console, jsonl, tensorboard, wandb"):
        MetricsLogger(tmp_path, ["console", "stdout"])
    # Also on ranks that do not write, so every rank fails the same way.
    with pytest.raises(ValueError, match="stdout"):
        MetricsLogger(tmp_path / "other", ["stdout"], enabled=False)


def test_non_numeric_metric_is_an_error(tmp_path):
    with MetricsLogger(tmp_path, ["jsonl"]) as logger, pytest.raises(TypeError, match="note"):
        logger.log({"note": "hello"}, step=0)


def test_disabled_logger_writes_nothing(tmp_path, capsys):
    run_dir = tmp_path / "run"
    logger = MetricsLogger(run_dir, ["console", "jsonl", "tensorboard"], enabled=False)
    logger.log({"rollout/success_rate": 1.0}, step=1)
    logger.log_table("samples", [{"a": 1}], step=1)
    logger.close()
    assert not run_dir.exists()
    assert capsys.readouterr() == ("", "")


def test_tables_go_to_tables_jsonl_and_the_console(tmp_path, capsys):
    rows = [
        {"task": "pick", "won": 1.0, "response": "go to\ndesk 1"},
        {"task": "clean", "won": 0.0, "note": math.nan},
    ]
    with MetricsLogger(tmp_path, ["console", "jsonl"]) as logger:
        logger.log_table("rollout/samples", rows, step=4)

    lines = (tmp_path / TABLES_FILE).read_text().splitlines()
    assert len(lines) == 1
    assert _strict_json(lines[0]) == {
        "step": 4,
        "name": "rollout/samples",
        "rows": [
            {"task": "pick", "won": 1.0, "response": "go to\ndesk 1"},
            {"task": "clean", "won": 0.0, "note": None},
        ],
    }
    assert read_tables(tmp_path, "rollout/samples")[0]["step"] == 4
    assert read_tables(tmp_path, "other") == []
    assert capsys.readouterr().out == (
        "rollout/samples (step 4)\n"
        "task   won  response       note\n"
        "-----  ---  -------------  ----\n"
        "pick   1    go to\\ndesk 1\n"
        "clean  0                   nan\n"
    )


def test_markdown_table():
    assert format_table([{"a": 1, "b": "x|y"}], markdown=True) == (
        "| a | b |\n|---|---|\n| 1 | x\\|y |"
    )


def test_tensorboard_sink_writes_scalars_and_text(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with MetricsLogger(tmp_path, ["tensorboard"], config={"trainer": {"total_steps": 3}}) as logger:
        logger.log({"rollout/success_rate": 0.25, "loss/total": math.nan}, step=1)
        logger.log({"rollout/success_rate": 0.5, "kl/kl": None}, step=2)
        logger.log_table("rollout/samples", [{"task": "pick", "won": 1}], step=2)

    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    scalars = acc.Scalars("rollout/success_rate")
    assert [(e.step, e.value) for e in scalars] == [(1, 0.25), (2, 0.5)]
    assert "kl/kl" not in acc.Tags()["scalars"]
    assert math.isnan(acc.Scalars("loss/total")[0].value)


def test_tensorboard_sink_without_the_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(ImportError, match=r"skillzero\[logging\]"):
        MetricsLogger(tmp_path, ["jsonl", "tensorboard"])


def test_wandb_sink_without_the_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(ImportError, match=r"skillzero\[logging\]"):
        MetricsLogger(tmp_path, ["wandb"])


def test_logging_after_close_is_a_no_op(tmp_path):
    logger = MetricsLogger(tmp_path, ["jsonl"])
    logger.log({"x": 1.0}, step=0)
    logger.close()
    logger.close()
    logger.log({"x": 2.0}, step=1)
    assert [r["x"] for r in read_metrics(tmp_path)] == [1.0]


def test_progress_bar_respects_enabled_and_the_environment(monkeypatch, capsys):
    monkeypatch.delenv("SKILLZERO_NO_PROGRESS", raising=False)
    bar = progress(4, "rollout", unit="env", leave=True)
    assert not bar.disable
    bar.update(4)
    bar.close()
    err = capsys.readouterr().err
    assert "rollout" in err
    assert "4/4" in err  # left on screen, with its final count

    with progress(4, "rollout", enabled=False) as bar:
        assert bar.disable
    monkeypatch.setenv("SKILLZERO_NO_PROGRESS", "1")
    with progress(4, "rollout") as bar:
        assert bar.disable
        bar.update(4)
    assert capsys.readouterr().err == ""
