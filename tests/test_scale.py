"""The multi-node recipe of docs/scale.md on one machine: a Ray cluster already running
(the head this test starts), and ``torchrun`` with 2 FSDP ranks on gloo whose rank 0
joins that cluster through ``$RAY_ADDRESS`` for its env workers and 2 rollout engines."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skillzero.core import checkpoint as ckpt

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_torchrun_ranks_with_ray_envs_and_engines(tiny_model_dir, tmp_path, ray_local):
    ray = ray_local
    address = ray.get_runtime_context().gcs_address
    cpus = ray.cluster_resources()["CPU"]
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "tests"), RAY_ADDRESS=address)
    proc = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node=2", "-m", "helpers.train_script",
            "env=corridor", "algo=grpo", f"model.path={tiny_model_dir}",
            f"trainer.output_dir={run}", "backend.sampling.max_new_tokens=6",
            "trainer.minibatch_size=8", "trainer.microbatch_size=4",
            "trainer.progress=false", "trainer.plots=false", "trainer.seed=3",
            "trainer.total_steps=2", "trainer.save_every=1", "trainer.val_every=2",
            "env.pool.backend=ray", "env.pool.workers=2",
            "trainer.rollout.engines=2", "trainer.rollout.num_cpus=0.5",
        ],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    # rank 0 joined the running cluster: it did not start one of its own
    assert "Started a local Ray instance" not in proc.stderr
    from skillzero.core.metrics_log import read_metrics

    records = read_metrics(run)
    assert sorted(r["step"] for r in records) == [1, 2]  # one line per step: rank 0 logs
    last = {k: v for r in records if r["step"] == 2 for k, v in r.items()}
    assert math.isfinite(last["train/grad_norm"])
    assert "val/success_rate" in last
    assert last["rollout/samples"] >= 4
    # both ranks wrote their shards of the checkpoint
    final = ckpt.step_dir(run, 2)
    assert ckpt.checkpoint_format(final) == "sharded"
    assert len(list((final / "dcp").glob("*.distcp"))) == 2
    # the run's actors left with it: the cluster has all its CPUs free again
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < cpus and time.monotonic() < deadline:
        time.sleep(1)
    assert ray.available_resources().get("CPU", 0) == cpus
