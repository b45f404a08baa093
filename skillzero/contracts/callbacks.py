"""Trainer callbacks: code that runs at fixed points of the training loop.

Callbacks are how an algorithm changes *what* is collected rather than *how* the loss is
computed: a skill curriculum changes the skills in the prompts every few steps, a
teacher scorer adds ``teacher_log_probs`` to the batch. A callback's state is saved in
checkpoints through :meth:`state_dict` / :meth:`load_state_dict`.

Every method has a no-op default, so a callback implements only what it needs. The
``trainer`` argument is the running trainer; callbacks use its documented attributes
(``step``, ``config``, ``skill_provider``, ``validate(...)``, ``log(...)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tensordict import TensorDict


class TrainerCallback:
    """Base class of trainer callbacks; override the hooks you need."""

    name: str = ""

    def on_train_start(self, trainer: Any) -> None:
        """Once, after the trainer is built and any checkpoint restored."""

    def before_rollout(self, trainer: Any, step: int) -> None:
        """Before collecting the rollouts of ``step``."""

    def after_rollout(self, trainer: Any, step: int, batch: TensorDict) -> None:
        """After collection, before advantages; may add keys to ``batch``."""

    def after_update(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        """After the policy update of ``step``; may add metrics."""

    def on_validation(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        """After a validation pass at ``step``."""

    def on_train_end(self, trainer: Any) -> None:
        """Once, after the last step (final evaluations go here)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
