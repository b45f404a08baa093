"""Process-group set-up and the few collectives the trainer uses.

``skillzero train`` runs as one process, or as N processes under ``torchrun``; either way
a process group exists (a one-rank group when run alone), so the training code has one
path. CPU runs use gloo, GPU runs NCCL.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    """Where this process sits: rank, world size, and its torch device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def broadcast_object(self, obj: Any = None, src: int = 0) -> Any:
        """``obj`` from rank ``src`` on every rank (pickled; for batches and metadata)."""
        if self.world_size == 1:
            return obj
        holder = [obj if self.rank == src else None]
        dist.broadcast_object_list(holder, src=src, device=self._collective_device())
        return holder[0]

    def all_reduce_sum(self, values: dict[str, float]) -> dict[str, float]:
        """Sum a dict of floats over ranks (every rank must pass the same keys)."""
        if self.world_size == 1 or not values:
            return dict(values)
        keys = sorted(values)
        tensor = torch.tensor(
            [values[k] for k in keys], dtype=torch.float64, device=self._collective_device()
        )
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return dict(zip(keys, tensor.tolist(), strict=True))

    def all_gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate equally shaped per-rank tensors along dim 0, in rank order."""
        if self.world_size == 1:
            return tensor
        device = self._collective_device()
        local = tensor.to(device).contiguous()
        parts = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(parts, local)
        return torch.cat(parts, dim=0).to(tensor.device)

    def _collective_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def resolve_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: this rank's GPU when CUDA is available, else the CPU."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(preference)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def init_distributed(device_preference: str = "auto") -> DistContext:
    """Join (or create) the process group of this run.

    Under ``torchrun`` the ``RANK``/``WORLD_SIZE``/``MASTER_ADDR`` variables describe the
    group; a plain process makes a one-rank group on a free local port.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = resolve_device(device_preference, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if "WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ:
            dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
        else:
            dist.init_process_group(
                backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
            )
        owns = True
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        device=device,
        owns_group=owns,
    )
