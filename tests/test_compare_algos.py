"""``benchmarks/compare_algos.py``: merging evaluations over seeds and the table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "compare_algos.py"


def _module():
    spec = importlib.util.spec_from_file_location("compare_algos", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report(success: float, won: list[bool]) -> dict:
    return {
        "metrics": {
            "success_rate": success,
            "success_rate/heat": 2 * success,
            "success_rate/pick_two": 0.0,
            "valid_action_ratio": 1.0,
        },
        "episodes": [{"won": w} for w in won],
    }


def test_merge_averages_seeds_and_counts_wins(tmp_path: Path) -> None:
    compare = _module()
    merged = compare._merge([_report(0.5, [True, False]), _report(0.0, [False, False])], [0, 1])
    assert merged["metrics"]["success_rate"] == 0.25
    assert merged["metrics"]["success_rate/heat"] == 0.5
    assert (merged["wins"], merged["episodes"]) == (1, 4)
    row = compare._row("skill0", merged, 171.4, 756.0)
    assert row["pick_two"] == 0.0  # the report's own key, not a short alias
    table = compare._table([compare._row("grpo", merged, 0.0, 444.0), row])
    lines = table.splitlines()
    assert lines[0].split(" | ")[:3] == ["algo", "success", "won"]
    assert "skill0 | 0.250 | 1/4 |" in table
    assert "skill0 - grpo zero-skill success: +0.000" in table


def test_report_rereads_every_seed(tmp_path: Path, capsys) -> None:
    compare = _module()
    (tmp_path / "grpo.eval.json").write_text(json.dumps(_report(0.5, [True, False])))
    (tmp_path / "grpo.eval.s1.json").write_text(json.dumps(_report(0.0, [False, False])))
    row = {"algo": "grpo", "success": 0.5, "skill_tokens": 0.0, "train_s": 10.0}
    for short in compare.SHORT_TYPES:
        row[short] = None
    data = {"settings": {"eval_seeds": [0, 1]}, "rows": [row]}
    (tmp_path / "compare.json").write_text(json.dumps(data))
    import sys

    argv = sys.argv
    sys.argv = ["compare_algos.py", "--report", str(tmp_path)]
    try:
        compare.main()
    finally:
        sys.argv = argv
    assert "grpo | 0.250 | 1/4 |" in capsys.readouterr().out
