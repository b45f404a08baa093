"""Time per training iteration, split by phase, and the framework's own overhead.

Runs the real training loop (``skillzero.core.training.Trainer``) for a few steps on the
embedded default (SmolLM2-135M-Instruct, the default ALFWorld games, CPU unless a GPU is
present) and prints, per phase, the mean seconds per step and its share of the step:
generation, env stepping, log-prob recomputation (old + reference), update
(forward/backward/optimizer), weight sync, and "other": everything else the framework
does (prompt building, collation, broadcasting, advantages, logging). The target is
other < 10% of a step.

    python benchmarks/train_step.py                       # 3 steps, 2 groups x 2 envs
    python benchmarks/train_step.py --steps 5 --groups 4 --group-size 8 --max-steps 6
    python benchmarks/train_step.py --algo gigpo --extra trainer.microbatch_size=8

The first step is reported but left out of the means (it includes one-off start-up
work such as worker start and allocator warm-up).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

PHASES = ("generation", "env", "log_probs", "callbacks", "update", "weight_sync", "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=3, help="env turns per episode")
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--algo", default="grpo")
    parser.add_argument("--env", default="alfworld")
    parser.add_argument("--extra", nargs="*", default=[], help="more Hydra overrides")
    args = parser.parse_args()

    from skillzero.core.config import compose, validate
    from skillzero.core.training import Trainer

    with tempfile.TemporaryDirectory() as run_dir:
        overrides = [
            f"env={args.env}",
            f"algo={args.algo}",
            f"env.num_groups={args.groups}",
            f"env.group_size={args.group_size}",
            f"env.max_steps={args.max_steps}",
            f"backend.sampling.max_new_tokens={args.new_tokens}",
            'backend.sampling.stop=["</action>"]',
            f"trainer.total_steps={args.steps}",
            f"trainer.output_dir={run_dir}",
            "trainer.minibatch_size=256",
            "trainer.microbatch_size=4",
            "trainer.progress=false",
            "trainer.plots=false",
            "trainer.loggers=[jsonl]",
            *args.extra,
        ]
        started = time.perf_counter()
        trainer = Trainer(validate(compose(overrides)))
        setup = time.perf_counter() - started
        rows = []
        try:
            for callback in trainer.callbacks:
                callback.on_train_start(trainer)
            for step in range(1, args.steps + 1):
                rows.append(trainer.train_step(step))
                trainer.step = step
        finally:
            trainer.close()
            trainer.ctx.close()

    device = trainer.ctx.device
    print(
        f"device: {device} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cpus, torch threads {__import__('torch').get_num_threads()})"
    )
    print(f"setup (model load, pools, plugins): {setup:.1f}s")
    print(
        f"config: {args.env} {args.algo}, {args.groups} groups x {args.group_size} envs, "
        f"{args.max_steps} turns, {args.new_tokens} new tokens\n"
    )
    header = (
        f"{'step':>4} {'samples':>7} " + " ".join(f"{p:>11}" for p in PHASES) + f" {'total':>8}"
    )
    print(header)
    for i, row in enumerate(rows, start=1):
        cells = " ".join(f"{row.get(f'time/{p}', 0.0):>10.2f}s" for p in PHASES)
        print(f"{i:>4} {int(row.get('rollout/samples', 0)):>7} {cells} {row['time/step']:>7.2f}s")
    measured = rows[1:] or rows
    totals = {p: statistics.mean(r.get(f"time/{p}", 0.0) for r in measured) for p in PHASES}
    step = statistics.mean(r["time/step"] for r in measured)
    print("\nmean share of a step (steps 2..):")
    for phase in PHASES:
        print(f"  {phase:<12} {totals[phase]:>8.2f}s  {100 * totals[phase] / step:>5.1f}%")
    overhead = totals["other"] / step
    print(
        f"\nframework overhead (other / step): {100 * overhead:.1f}%  "
        f"(target < 10%: {'met' if overhead < 0.10 else 'NOT met'})"
    )
    compute = totals["generation"] + totals["log_probs"] + totals["update"] + totals["callbacks"]
    print(f"model compute (generation + log-probs + update) / step: {100 * compute / step:.1f}%")


if __name__ == "__main__":
    main()
