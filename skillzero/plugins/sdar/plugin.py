"""The hooks of the SDAR plugin (entry point ``sdar``).

Import-light on purpose: components are ``"module:attribute"`` strings that skillzero
imports on first use, so discovering plugins never imports torch.
"""

from __future__ import annotations

from typing import Any

from skillzero import hookimpl

CONFIG_PATH = "pkg://skillzero.plugins.sdar.conf"
_PACKAGE = "skillzero.plugins.sdar"


@hookimpl
def register_loss_terms(register: Any) -> None:
    register(
        "sdar",
        f"{_PACKAGE}.losses:SDARLoss",
        description="SDAR: teacher-gap-gated self-distillation (needs the sdar_teacher callback)",
    )
    register(
        "skill_sd",
        f"{_PACKAGE}.losses:SkillSDLoss",
        description="Skill-SD: importance-weighted k3 reverse KL to the skill-prompted teacher",
    )


@hookimpl
def register_advantage_estimators(register: Any) -> None:
    register(
        "rlsd",
        f"{_PACKAGE}.advantages:RLSDAdvantage",
        description="RLSD: GRPO advantage reweighted per token by the clipped teacher ratio",
    )


@hookimpl
def register_trainer_callbacks(register: Any) -> None:
    register(
        "sdar_teacher",
        f"{_PACKAGE}.teacher:SDARTeacher",
        description="scores the responses under skill-augmented prompts (teacher_log_probs)",
    )


@hookimpl
def register_config_paths(register: Any) -> None:
    # Adds conf/algo/*.yaml to Hydra's search path: `algo=sdar`, `algo=rlsd`, ...
    register(CONFIG_PATH)
