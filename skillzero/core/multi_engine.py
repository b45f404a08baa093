"""Several rollout engines behind one :class:`RolloutBackend`: ``trainer.rollout.engines``.

With ``engines: N`` (N > 1) the trainer's rollout backend is a :class:`MultiEngineBackend`:
N copies of the configured backend (``backend=transformers``, ``backend=vllm``, any
registered one), each in its own Ray actor, on this machine or anywhere in the Ray
cluster. It implements the same contract as one backend, so the collector and the
trainer do not know the difference:

- :meth:`~MultiEngineBackend.generate` splits each turn's prompts into N contiguous
  shares of about equal size and sends them to the engines at once. The collector orders
  prompts by env, so the members of a group are neighbours and share a long prompt
  prefix; a cut between two shares goes, among the positions near the even split, where
  the two prompts share the shortest prefix: between groups, not inside one, so each
  engine's prefix cache sees whole groups.
- :meth:`~MultiEngineBackend.load_weights` puts the new weights into Ray's object store
  once and every engine loads them from there; it returns when all have.
- ``sleep``/``wake``/``close`` go to every engine.

Greedy generation gives the same tokens as one engine. Seeded sampling is reproducible
for a given N: share ``k`` is sampled with a seed derived from the call's seed and ``k``
(share 0 keeps the call's seed), so the engines do not draw the same random numbers.

Engines ask Ray for ``num_cpus`` CPUs and ``num_gpus`` GPUs each (None: one GPU when the
cluster has GPUs, else none); see ``docs/scale.md`` for where they run on a GPU cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from skillzero.contracts.rollout import Generation, RolloutBackend, SamplingParams
from skillzero.contracts.settings import cfg_get
from skillzero.core import ray_cluster

if TYPE_CHECKING:
    import torch


class EngineActor:
    """What runs inside one Ray actor: one rollout backend from the registry."""

    def __init__(
        self, backend_name: str, model_cfg: Mapping[str, Any], backend_cfg: Mapping[str, Any]
    ) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from skillzero import registry

        self.backend = registry.get("rollout_backends", backend_name).create(
            dict(model_cfg), dict(backend_cfg)
        )

    def ready(self) -> int:
        return os.getpid()

    def tokenizer(self) -> Any:
        return self.backend.tokenizer

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[list[Generation]]:
        return self.backend.generate(prompts, params)

    def load_weights(self, state: Mapping[str, torch.Tensor]) -> None:
        self.backend.load_weights(state.items())

    def sleep(self) -> None:
        self.backend.sleep()

    def wake(self) -> None:
        self.backend.wake()

    def close(self) -> None:
        self.backend.close()


def _shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def split_prompts(prompts: Sequence[Sequence[int]], parts: int) -> list[range]:
    """Contiguous shares of ``prompts`` for ``parts`` engines (fewer when there are
    fewer prompts), of about equal size; each cut is placed, within half a share of the
    even split, where the neighbouring prompts share the shortest prefix (between
    groups), the nearest such place on a tie."""
    n = len(prompts)
    parts = max(1, min(parts, n))
    if parts == 1:
        return [range(n)] if n else []
    size = n / parts
    cuts = [0]
    for k in range(1, parts):
        ideal = round(k * size)
        low = max(cuts[-1] + 1, ideal - int(size // 2))
        high = min(n - (parts - k), ideal + int(size // 2))
        best = max(low, min(ideal, high))
        best_key: tuple[int, int] | None = None
        for cut in range(low, high + 1):
            key = (_shared_prefix(prompts[cut - 1], prompts[cut]), abs(cut - ideal))
            if best_key is None or key < best_key:
                best, best_key = cut, key
        cuts.append(best)
    cuts.append(n)
    return [range(a, b) for a, b in itertools.pairwise(cuts)]


def share_seed(seed: int | None, share: int) -> int | None:
    """The sampling seed of share ``share`` of a call seeded with ``seed``."""
    if seed is None or share == 0:
        return seed
    return (int(seed) * 1_000_003 + 7919 * share) % (2**31 - 1)


class MultiEngineBackend(RolloutBackend):
    """``engines`` copies of the rollout backend ``backend_name`` as Ray actors (see the
    module docstring). ``address``: the Ray cluster (None: ``$RAY_ADDRESS``, else a local
    one); ``num_cpus``/``num_gpus``: each engine's request; ``startup_timeout``: seconds
    an engine may take to load its model."""

    def __init__(
        self,
        backend_name: str,
        model_cfg: Mapping[str, Any],
        backend_cfg: Mapping[str, Any],
        *,
        engines: int = 2,
        num_cpus: float = 1.0,
        num_gpus: float | None = None,
        address: str | None = None,
        startup_timeout: float = 1800.0,
    ) -> None:
        if engines < 1:
            raise ValueError(f"trainer.rollout.engines must be >= 1, got {engines}")
        ray = ray_cluster.init_ray(address, what="trainer.rollout.engines > 1")
        self.ray = ray
        if num_gpus is None:
            num_gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        self.resources = {"CPU": float(num_cpus), "GPU": float(num_gpus)}
        self.engines: list[Any] = []
        self._reserved = 0
        actor_class = ray.remote(EngineActor)
        try:
            for _ in range(engines):
                ray_cluster.reserve(
                    self.resources,
                    "a rollout engine (Ray actor)",
                    "trainer.rollout.num_cpus / num_gpus",
                )
                self._reserved += 1
                self.engines.append(
                    actor_class.options(
                        num_cpus=float(num_cpus), num_gpus=float(num_gpus), max_restarts=0
                    ).remote(backend_name, dict(model_cfg), dict(backend_cfg))
                )
            # the engines load their models in parallel
            self.pids = ray.get(
                [engine.ready.remote() for engine in self.engines], timeout=startup_timeout
            )
            self.tokenizer = self._fetch_tokenizer(model_cfg)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise RuntimeError(
                f"the rollout engines did not start within {startup_timeout} s; the cluster "
                f"has {ray.available_resources()} free and each engine asks for "
                f"{self.resources} (trainer.rollout.num_cpus / num_gpus)"
            ) from None
        except ray.exceptions.RayError as exc:
            self.close()
            raise RuntimeError(f"a rollout engine failed to start: {exc}") from None
        except BaseException:
            self.close()
            raise

    def _fetch_tokenizer(self, model_cfg: Mapping[str, Any]) -> Any:
        """The engines' own tokenizer (prompts must be templated exactly as they read
        them); loaded here from the model folder when it does not travel."""
        try:
            return self.ray.get(self.engines[0].tokenizer.remote())
        except self.ray.exceptions.RayError:
            from transformers import AutoTokenizer

            from skillzero.core.models import resolve_model_path

            return AutoTokenizer.from_pretrained(resolve_model_path(model_cfg))

    @property
    def num_engines(self) -> int:
        return len(self.engines)

    def _get(self, refs: list[Any]) -> list[Any]:
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayActorError as exc:
            raise RuntimeError(f"a rollout engine died: {exc}") from None

    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Generation]]:
        if not prompts:
            return []
        shares = split_prompts(prompts, len(self.engines))
        refs = [
            engine.generate.remote(
                [list(prompts[i]) for i in share],
                dataclasses.replace(params, seed=share_seed(params.seed, k)),
            )
            for k, (engine, share) in enumerate(zip(self.engines, shares, strict=False))
        ]
        out: list[list[Generation]] = []
        for part in self._get(refs):
            out.extend(part)
        return out

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        state = dict(named_tensors)
        ref = self.ray.put(state)  # one copy in the object store for all engines
        del state
        self._get([engine.load_weights.remote(ref) for engine in self.engines])

    def sleep(self) -> None:
        self._get([engine.sleep.remote() for engine in self.engines])

    def wake(self) -> None:
        self._get([engine.wake.remote() for engine in self.engines])

    def close(self) -> None:
        ray = self.ray
        for engine in self.engines:
            with contextlib.suppress(Exception):  # a dead engine has nothing left to free
                ray.get(engine.close.remote(), timeout=60)
            with contextlib.suppress(Exception):
                ray.kill(engine, no_restart=True)
        self.engines = []
        for _ in range(self._reserved):
            ray_cluster.release(self.resources)
        self._reserved = 0


def build_rollout_backend(
    backend_name: str,
    model_cfg: Mapping[str, Any],
    backend_cfg: Mapping[str, Any],
    rollout_cfg: Mapping[str, Any] | Any = None,
) -> RolloutBackend:
    """The trainer's rollout backend: the registered ``backend_name`` in this process
    when ``trainer.rollout.engines`` is 1, else a :class:`MultiEngineBackend`."""
    engines = int(cfg_get(rollout_cfg, "engines", 1))
    if engines < 1:
        raise ValueError(f"trainer.rollout.engines must be >= 1, got {engines}")
    if engines == 1:
        from skillzero import registry

        return registry.get("rollout_backends", backend_name).create(model_cfg, backend_cfg)
    return MultiEngineBackend(
        backend_name,
        model_cfg,
        backend_cfg,
        engines=engines,
        num_cpus=float(cfg_get(rollout_cfg, "num_cpus", 1.0)),
        num_gpus=cfg_get(rollout_cfg, "num_gpus"),
        address=cfg_get(rollout_cfg, "address"),
        startup_timeout=float(cfg_get(rollout_cfg, "startup_timeout", 1800.0)),
    )
