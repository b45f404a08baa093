"""Atomic training checkpoints.

A checkpoint is a folder ``<run>/checkpoints/step_000042/``::

    model/              Hugging Face folder (config, safetensors, tokenizer):
                        AutoModelForCausalLM.from_pretrained(".../model") loads it
    dcp/                model and optimizer state as a torch.distributed.checkpoint
                        (DCP): every rank writes its own shards, nothing is gathered
    trainer_state.pt    step, LR scheduler, task-sampler position, callback and plugin
                        state (e.g. a skill curriculum), the config it was written with
    rng/rank<r>.pt      Python, NumPy and torch RNG states of each rank
    COMPLETE            written last

Everything is first written to ``step_000042.partial`` and renamed once ``COMPLETE`` is
on disk, so a crash mid-write leaves a ``.partial`` folder that is never mistaken for a
checkpoint (and is removed by the next save).

Resuming reads ``dcp/`` on any number of ranks: DCP reshards the saved tensors to the
sharding of the resuming run (2 ranks to 1, 8 to 16). All ranks must see the same
checkpoint folder (a shared filesystem on a multi-node run). Checkpoints written before
``dcp/`` existed hold the optimizer gathered in ``optimizer.pt``; they still load (the
weights from ``model/``, the optimizer read on rank 0 and scattered).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

COMPLETE = "COMPLETE"
SHARDED = "dcp"
LEGACY_OPTIMIZER = "optimizer.pt"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def checkpoint_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def step_dir(run_dir: str | Path, step: int) -> Path:
    return checkpoint_root(run_dir) / f"step_{step:06d}"


def is_complete(path: str | Path) -> bool:
    return (Path(path) / COMPLETE).is_file()


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir() and is_complete(child):
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def begin(run_dir: str | Path, step: int) -> Path:
    """Create (afresh) the ``.partial`` folder of ``step`` and return it (rank 0)."""
    final = step_dir(run_dir, step)
    partial = final.with_name(final.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    (partial / "rng").mkdir()
    return partial


def save_rng(partial: Path, rank: int) -> None:
    torch.save(rng_state(), partial / "rng" / f"rank{rank}.pt")


def commit(partial: Path, step: int, keep: int = 0) -> Path:
    """Mark ``partial`` complete and move it to its final name; prune old ones (rank 0)."""
    marker = partial / COMPLETE
    with open(marker, "w") as handle:
        json.dump({"step": step, "time": time.time()}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_dir(partial)
    final = partial.with_name(partial.name[: -len(".partial")])
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    _fsync_dir(final.parent)
    if keep > 0:
        for _, old in list_checkpoints(final.parent.parent)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_trainer_state(path: str | Path) -> dict[str, Any]:
    return torch.load(Path(path) / "trainer_state.pt", weights_only=False)


def load_rng(path: str | Path, rank: int) -> dict[str, Any] | None:
    file = Path(path) / "rng" / f"rank{rank}.pt"
    return torch.load(file, weights_only=False) if file.exists() else None


def save_sharded(folder: str | Path, model: torch.nn.Module, optimizer: Any) -> None:
    """Write ``model``'s and ``optimizer``'s state to ``folder/dcp`` with
    ``torch.distributed.checkpoint``: each rank writes the shards it holds (an FSDP2
    model's DTensors; a plain module's tensors once). Collective: every rank calls it
    with the same ``folder``."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optimizer_state = get_state_dict(model, optimizer)
    dcp.save(
        {"model": model_state, "optimizer": optimizer_state},
        checkpoint_id=str(Path(folder) / SHARDED),
    )


def load_sharded(folder: str | Path, model: torch.nn.Module, optimizer: Any) -> None:
    """Load ``folder/dcp`` into ``model`` and ``optimizer`` in place, resharded to this
    run's ranks (the world size may differ from the one that saved it). Collective."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    # the state dicts of this run say how each tensor is sharded here; DCP fills them
    model_state, optimizer_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optimizer": optimizer_state}
    dcp.load(state, checkpoint_id=str(Path(folder) / SHARDED))
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"]
    )


def checkpoint_format(path: str | Path) -> str:
    """``"sharded"`` (``dcp/``), ``"legacy"`` (``optimizer.pt``, the weights in
    ``model/``), or a :class:`FileNotFoundError` saying what the folder lacks."""
    path = Path(path)
    if (path / SHARDED / ".metadata").is_file():
        return "sharded"
    if (path / LEGACY_OPTIMIZER).is_file():
        return "legacy"
    raise FileNotFoundError(
        f"{path} is not a resumable checkpoint: it has neither {SHARDED}/ (the sharded "
        f"model and optimizer state) nor {LEGACY_OPTIMIZER} (the format before it); its "
        "model/ folder can still start a new run (model.path=...)"
    )
