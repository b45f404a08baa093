"""The hooks of the GRPO-family plugin (entry point ``grpo``).

Import-light on purpose: components are ``"module:attribute"`` strings that skillzero
imports on first use, so discovering plugins never imports torch.
"""

from __future__ import annotations

from typing import Any

from skillzero import hookimpl

CONFIG_PATH = "pkg://skillzero.plugins.grpo.conf"
_ADVANTAGES = "skillzero.plugins.grpo.advantages"
_LOSSES = "skillzero.plugins.grpo.losses"


@hookimpl
def register_advantage_estimators(register: Any) -> None:
    register(
        "grpo",
        f"{_ADVANTAGES}:GRPOAdvantage",
        description="group-relative episode return (mean/std over the group's step samples)",
    )
    register(
        "gigpo",
        f"{_ADVANTAGES}:GiGPOAdvantage",
        description="GiGPO: episode-level GRPO plus step-level advantages in anchor-state groups",
    )


@hookimpl
def register_loss_terms(register: Any) -> None:
    register(
        "ppo_clip",
        f"{_LOSSES}:PPOClipLoss",
        description="PPO clipped surrogate with dual clip (verl's compute_policy_loss)",
    )
    register(
        "kl",
        f"{_LOSSES}:LowVarKLLoss",
        description="KL to the frozen reference policy (low_var_kl/k3 by default, k1, k2)",
    )
    register(
        "entropy",
        f"{_LOSSES}:EntropyLoss",
        description="token-mean entropy; give it a negative coef for an entropy bonus",
    )


@hookimpl
def register_config_paths(register: Any) -> None:
    # Adds conf/algo/{grpo,gigpo}.yaml to Hydra's search path: `algo=grpo`, `algo=gigpo`.
    register(CONFIG_PATH)
