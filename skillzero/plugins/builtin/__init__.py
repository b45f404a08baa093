"""First-party components every run needs: env-pool workers, the zero-skill provider and
the supervised ``nll`` loss term of ``skillzero sft``.

Loaded through the entry point ``builtin`` of the ``skillzero`` distribution, the same
way as any third-party plugin.
"""

from __future__ import annotations

from skillzero import hookimpl


@hookimpl
def register_env_workers(register):
    register(
        "process",
        "skillzero.core.pool:ProcessWorkerBackend",
        description="local worker processes, each holding several envs",
    )
    register(
        "ray",
        "skillzero.core.ray_pool:RayWorkerBackend",
        description="Ray actors on this machine or a Ray cluster, each holding several envs "
        "(extra `ray`)",
    )
    register(
        "inline",
        "skillzero.core.pool:InlineWorkerBackend",
        description="envs stepped in the calling process (debugging)",
    )


@hookimpl
def register_skill_providers(register):
    register("none", "skillzero.contracts.skills:NoSkills", description="no skills in context")


@hookimpl
def register_loss_terms(register):
    register(
        "nll",
        "skillzero.contracts.losses:NegativeLogLikelihood",
        description="token-mean negative log-likelihood of the responses (skillzero sft)",
    )
