"""Sharded checkpoints (torch.distributed.checkpoint): what a checkpoint holds, resume on
a different number of ranks (2 -> 1 and 1 -> 2 on CPU with gloo), and checkpoints of the older
format (the optimizer gathered in ``optimizer.pt``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.corridor_plugin import CorridorPlugin, corridor_run_overrides

from skillzero.core import checkpoint as ckpt

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def corridor(plugin):
    plugin(CorridorPlugin(), "corridor-test")


def _overrides(tiny_model_dir, run_dir, *extra):
    return corridor_run_overrides(
        tiny_model_dir, run_dir, "trainer.plots=false", "trainer.optim.lr=1e-3", *extra
    )


def _train(overrides):
    from skillzero.core.config import compose, validate
    from skillzero.core.training import train

    return train(validate(compose(overrides)))


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(ckpt.step_dir(run, step) / "model" / "model.safetensors")


def _resume_from(source: Path, target: Path, step: int) -> None:
    """A copy of run ``source`` whose latest checkpoint is ``step``."""
    shutil.copytree(source, target)
    for found, path in ckpt.list_checkpoints(target):
        if found > step:
            shutil.rmtree(path)


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=atol), key


def test_checkpoint_holds_shards_and_a_model_folder(corridor, tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    _train(_overrides(tiny_model_dir, run, "trainer.total_steps=1"))
    final = ckpt.step_dir(run, 1)
    assert ckpt.checkpoint_format(final) == "sharded"
    assert not (final / ckpt.LEGACY_OPTIMIZER).exists()  # nothing gathered the optimizer
    assert (final / "dcp" / ".metadata").is_file()
    assert list((final / "dcp").glob("*.distcp"))
    from transformers import AutoModelForCausalLM

    # the Hugging Face export stays
    model = AutoModelForCausalLM.from_pretrained(final / "model")
    _assert_same_weights(
        {k: v for k, v in model.state_dict().items() if k in _weights(run, 1)},
        _weights(run, 1),
        atol=0,
    )
    # the DCP copy holds the same weights and the optimizer state (read offline)
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    dcp_to_torch_save(final / "dcp", tmp_path / "full.pt")
    full = torch.load(tmp_path / "full.pt", weights_only=False)
    for key, value in _weights(run, 1).items():
        assert torch.equal(full["model"][key], value), key
    adam = full["optimizer"]["state"]
    assert adam
    assert all("exp_avg" in entry for entry in adam.values())


def test_legacy_checkpoint_resumes_and_broken_one_is_a_clear_error(
    corridor, tiny_model_dir, tmp_path
):
    common = ["trainer.total_steps=2", "trainer.save_every=1"]
    straight = tmp_path / "straight"
    _train(_overrides(tiny_model_dir, straight, *common))

    # step 1 rewritten in the format before DCP: optimizer.pt, no dcp/
    legacy = tmp_path / "legacy"
    _resume_from(straight, legacy, 1)
    step1 = ckpt.step_dir(legacy, 1)
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    dcp_to_torch_save(step1 / "dcp", tmp_path / "full.pt")
    full = torch.load(tmp_path / "full.pt", weights_only=False)
    torch.save(full["optimizer"], step1 / ckpt.LEGACY_OPTIMIZER)
    shutil.rmtree(step1 / "dcp")
    assert ckpt.checkpoint_format(step1) == "legacy"
    _train(_overrides(tiny_model_dir, legacy, *common, "trainer.resume=true"))
    _assert_same_weights(_weights(legacy, 2), _weights(straight, 2), atol=1e-6)

    # neither format: the error says what is missing
    broken = tmp_path / "broken"
    _resume_from(straight, broken, 1)
    shutil.rmtree(ckpt.step_dir(broken, 1) / "dcp")
    with pytest.raises(FileNotFoundError, match=r"neither dcp/ .* nor optimizer\.pt"):
        _train(_overrides(tiny_model_dir, broken, *common, "trainer.resume=true"))


@pytest.mark.slow
def test_checkpoints_resume_on_another_number_of_ranks(corridor, tiny_model_dir, tmp_path):
    """2 FSDP ranks (gloo) train 2 steps with a checkpoint each; resuming step 1 on one
    rank gives step 2's weights again: DCP resharded the model and the optimizer. And
    back: that one-rank checkpoint of step 2 resumes on 2 ranks, and step 3 there equals
    step 3 on one rank."""
    common = ["trainer.total_steps=2", "trainer.save_every=1"]
    two = tmp_path / "two"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "tests"))

    def on_two_ranks(run: Path, *extra: str) -> None:
        proc = subprocess.run(
            [
                sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2", "-m", "helpers.train_script",
                *_overrides(tiny_model_dir, run, *extra),
            ],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]

    on_two_ranks(two, *common)
    step1 = ckpt.step_dir(two, 1)
    # each rank wrote its own shards; no file holds the gathered optimizer
    assert len(list((step1 / "dcp").glob("*.distcp"))) == 2
    assert not (step1 / ckpt.LEGACY_OPTIMIZER).exists()

    one = tmp_path / "one"
    _resume_from(two, one, 1)
    _train(_overrides(tiny_model_dir, one, *common, "trainer.resume=true"))
    # 1 and 2 ranks give the same update to ~1e-6 (test_fsdp_two_cpu_ranks_match_one)
    _assert_same_weights(_weights(one, 2), _weights(two, 2), atol=1e-5)
    assert any(not torch.equal(_weights(two, 1)[k], _weights(two, 2)[k]) for k in _weights(two, 1))

    # 1 -> 2: step 2 of the one-rank run was written by one rank
    assert len(list((ckpt.step_dir(one, 2) / "dcp").glob("*.distcp"))) == 1
    back = tmp_path / "back"
    shutil.copytree(one, back)
    longer = ["trainer.total_steps=3", "trainer.save_every=1", "trainer.resume=true"]
    on_two_ranks(back, *longer)
    _train(_overrides(tiny_model_dir, one, *longer))
    _assert_same_weights(_weights(back, 3), _weights(one, 3), atol=1e-5)
    assert any(not torch.equal(_weights(one, 2)[k], _weights(one, 3)[k]) for k in _weights(one, 2))
