"""GRPO, SKILL0 and SDAR from the same starting checkpoint, on the same games and seeds.

Each algorithm trains for the same number of steps with ``skillzero train`` (the
README's quickstart preset unless told otherwise: the cached SFT warm start of the
embedded default model as the starting policy, the generated ALFWorld games), then its
final checkpoint is evaluated with **zero skills** by ``skillzero eval`` on the same
validation tasks and seeds. One table:

- zero-skill validation success, overall and per task type, and valid-action ratio;
- the same for the starting checkpoint (the row ``start``);
- mean skill tokens per step in the training rollouts (what in-context skills cost);
- wall time of the training run.

    python benchmarks/compare_algos.py                         # quickstart sizes
    python benchmarks/compare_algos.py --steps 6 --algos grpo,skill0,sdar \\
        --extra env.num_groups=4 trainer.val_tasks=24
    python benchmarks/compare_algos.py --eval-seeds 0,1,2,3 --reuse   # re-evaluate only
    python benchmarks/compare_algos.py --report runs/compare   # print a finished run

Results and settings go to ``<out>/compare.json`` (the project's own table is not
published yet; see the README's "Planned"). Run with ``OMP_NUM_THREADS`` at most the
core count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_ALGOS = ("grpo", "skill0", "sdar")
EXTRA_BY_ALGO = {
    # SKILL0 validates its curriculum once per stage of this short run
    "skill0": ["algo.callbacks.0.params.every=1"],
}
SHORT_TYPES = ("pick", "look", "clean", "heat", "cool", "pick_two")
"""The task-type names of the eval report's `success_rate/<type>` keys (ALFWorld's
``SHORT_NAMES``)."""


def _run(cmd: list[str], log: Path) -> float:
    begin = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle:
        status = subprocess.call(cmd, stdout=handle, stderr=subprocess.STDOUT)
    if status != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"command failed ({status}): {' '.join(cmd)}\n{tail}")
    return time.perf_counter() - begin


def _skillzero() -> list[str]:
    return [sys.executable, "-m", "skillzero.cli"]


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    from skillzero.core.metrics_log import read_metrics

    return read_metrics(run_dir)


def _evaluate(checkpoint: str, out: Path, common: list[str], log: Path, seed: int) -> dict:
    _run(
        [
            *_skillzero(),
            "eval",
            *common,
            "skills=none",
            f"eval.checkpoint={checkpoint}",
            f"eval.output={out}",
            f"eval.seed={seed}",
        ],
        log,
    )
    return json.loads(out.read_text())


def _evaluate_seeds(
    checkpoint: str,
    name: str,
    out: Path,
    common: list[str],
    seeds: list[int],
    reuse: bool = False,
) -> dict[str, Any]:
    """Evaluate once per sampling seed (``<name>.eval.json`` for the first seed,
    ``<name>.eval.s<seed>.json`` for the others; with ``reuse``, a report already there
    is read instead) and merge: every metric is the mean over seeds (each seed plays the
    same tasks), plus ``episodes`` and ``wins`` in total."""
    reports = []
    for i, seed in enumerate(seeds):
        stem = f"{name}.eval" if i == 0 else f"{name}.eval.s{seed}"
        path = out / f"{stem}.json"
        if reuse and path.is_file():
            reports.append(json.loads(path.read_text()))
            continue
        reports.append(_evaluate(checkpoint, path, common, out / f"{stem}.log", seed))
    return _merge(reports, seeds)


def _merge(reports: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    keys = set.intersection(*(set(r["metrics"]) for r in reports))
    metrics = {k: statistics.mean(float(r["metrics"][k]) for r in reports) for k in sorted(keys)}
    wins = sum(int(e.get("won", False)) for r in reports for e in r.get("episodes", []))
    episodes = sum(len(r.get("episodes", [])) for r in reports)
    return {"metrics": metrics, "seeds": seeds, "wins": wins, "episodes": episodes}


def _reports_of(out: Path, name: str) -> list[dict[str, Any]]:
    """The eval reports a finished comparison wrote for ``name`` (first seed first)."""
    first = out / f"{name}.eval.json"
    if not first.is_file():
        return []
    others = sorted(out.glob(f"{name}.eval.s*.json"))
    return [json.loads(path.read_text()) for path in [first, *others]]


def _row(name: str, report: dict[str, Any], skill_tokens: float, seconds: float) -> dict:
    metrics = report["metrics"]
    row = {
        "algo": name,
        "success": metrics.get("success_rate", 0.0),
        "wins": report.get("wins"),
        "episodes": report.get("episodes"),
        "valid": metrics.get("valid_action_ratio", 0.0),
        "skill_tokens": skill_tokens,
        "train_s": seconds,
    }
    for short in SHORT_TYPES:
        row[short] = metrics.get(f"success_rate/{short}")
    return row


def _table(rows: list[dict[str, Any]]) -> str:
    header = ["algo", "success", "won", *SHORT_TYPES, "valid", "skill tok/step", "train s"]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    base = next((r for r in rows if r["algo"] == "grpo"), None)
    for row in rows:
        won = f"{row['wins']}/{row['episodes']}" if row.get("episodes") else "-"
        cells = [row["algo"], f"{row['success']:.3f}", won]
        cells += ["-" if row[s] is None else f"{row[s]:.2f}" for s in SHORT_TYPES]
        cells += [f"{row['valid']:.3f}", f"{row['skill_tokens']:.0f}", f"{row['train_s']:.0f}"]
        lines.append(" | ".join(cells))
    if base is not None:
        lines.append("")
        for row in rows:
            if row["algo"] not in ("grpo", "start"):
                lines.append(
                    f"{row['algo']} - grpo zero-skill success: "
                    f"{row['success'] - base['success']:+.3f}"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", default=",".join(DEFAULT_ALGOS))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--env", default="alfworld")
    parser.add_argument("--preset", default="quickstart", help="experiment=... (or none)")
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument("--eval-tasks", type=int, default=24, help="validation tasks evaluated")
    parser.add_argument(
        "--eval-seeds",
        default="0",
        help="sampling seeds of the evaluations, comma-separated; every model plays the "
        "tasks once per seed and the table shows the mean",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="skip the training of an algorithm whose run folder already holds a "
        "checkpoint (re-evaluate it only)",
    )
    parser.add_argument("--extra", nargs="*", default=[], help="Hydra overrides for all runs")
    parser.add_argument("--report", metavar="DIR", help="only print the table of DIR")
    args = parser.parse_args()

    out = Path(args.report or args.out).resolve()
    if args.report:
        data = json.loads((out / "compare.json").read_text())
        rows = []
        for row in data["rows"]:  # re-read each eval report: the table's columns may change
            reports = _reports_of(out, row["algo"])
            if reports:
                merged = _merge(reports, data["settings"].get("eval_seeds", [0]))
                row = _row(row["algo"], merged, row["skill_tokens"], row["train_s"])
            rows.append(row)
        print(_table(rows))
        return

    out.mkdir(parents=True, exist_ok=True)
    common = [f"env={args.env}", f"eval.num_tasks={args.eval_tasks}", *args.extra]
    if args.preset != "none":
        common.insert(1, f"experiment={args.preset}")
    seeds = [int(s) for s in str(args.eval_seeds).split(",") if s.strip()]
    previous_seconds: dict[str, float] = {}
    if args.reuse and (out / "compare.json").is_file():  # the wall time of the first run
        earlier = json.loads((out / "compare.json").read_text())
        previous_seconds = {r["algo"]: float(r["train_s"]) for r in earlier["rows"]}
    rows: list[dict[str, Any]] = []
    start_model: str | None = None
    for algo in args.algos.split(","):
        run_dir = out / algo
        cmd = [
            *_skillzero(),
            "train",
            f"algo={algo}",
            *common,
            f"trainer.total_steps={args.steps}",
            f"trainer.output_dir={run_dir}",
            "trainer.progress=false",
            *EXTRA_BY_ALGO.get(algo, []),
        ]
        checkpoints = sorted((run_dir / "checkpoints").glob("step_*"))
        records = _metrics(run_dir) if checkpoints else []
        if args.reuse and checkpoints:
            print(f"[compare] {algo}: reusing {checkpoints[-1]}", flush=True)
            seconds = previous_seconds.get(algo) or sum(
                float(r.get("time/step", 0.0)) for r in records
            )
        else:
            print(f"[compare] {algo}: {' '.join(cmd[2:])}", flush=True)
            seconds = _run(cmd, out / f"{algo}.train.log")
            records = _metrics(run_dir)
        tokens = [
            r["rollout/skill_tokens_per_step"]
            for r in records
            if "rollout/skill_tokens_per_step" in r
        ]
        checkpoints = sorted((run_dir / "checkpoints").glob("step_*"))
        if not checkpoints:
            raise SystemExit(f"{algo}: no checkpoint in {run_dir}")
        if start_model is None:
            start_model = _starting_model(run_dir)
            if start_model:
                report = _evaluate_seeds(start_model, "start", out, common, seeds, args.reuse)
                rows.append(_row("start", report, 0.0, 0.0))
        report = _evaluate_seeds(str(checkpoints[-1]), algo, out, common, seeds, args.reuse)
        rows.append(_row(algo, report, statistics.mean(tokens) if tokens else 0.0, seconds))
        print(_table(rows), flush=True)

    settings = {
        "algos": args.algos.split(","),
        "steps": args.steps,
        "overrides": common,
        "start_model": start_model,
        "eval_seeds": seeds,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }
    (out / "compare.json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=2))
    print()
    print(_table(rows))
    print(f"\nsettings: {json.dumps(settings)}")


def _starting_model(run_dir: Path) -> str | None:
    """The model folder a run started from: the warm start it used (the trainer writes
    ``warm_start.json``), else its ``model.path`` (None: the embedded default)."""
    record = run_dir / "warm_start.json"
    if record.is_file():
        return str(json.loads(record.read_text())["model"])
    from omegaconf import OmegaConf

    path = OmegaConf.load(run_dir / "config.yaml").model.get("path")
    return str(path) if path else None


if __name__ == "__main__":
    main()
