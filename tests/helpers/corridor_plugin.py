"""A test plugin: the corridor env (tests/helpers/envs.py) with a prompt builder, an
action parser and task lists, registered like any env plugin (hooks + config path), so
the training loop runs end to end in seconds with a tiny model.

Also provides a scripted rollout backend (``ScriptedBackend``) for collector tests that
need to control what the policy says, and a ``crash_before_step`` trainer callback that
simulates a crash, for resume tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from skillzero import hookimpl
from skillzero.contracts.callbacks import TrainerCallback
from skillzero.contracts.env import ParsedAction, PromptContext, Task, history_window
from skillzero.contracts.rollout import Generation, RolloutBackend, SamplingParams

CONF = Path(__file__).parent / "conf"


def corridor_tasks(env_cfg: Mapping[str, Any], split: str) -> list[Task]:
    """Corridors of length 1 and 2, two task types; 8 train and 4 valid tasks."""
    count = 8 if split == "train" else 4
    return [
        Task(
            f"{split}-{i}", task_type=f"len{1 + i % 2}", split=split, payload={"length": 1 + i % 2}
        )
        for i in range(count)
    ]


class CorridorPrompt:
    def __init__(self, env_cfg: Mapping[str, Any] | None = None) -> None:
        self.history_length = int((env_cfg or {}).get("history_length", 2))

    def task_text(self, ctx: PromptContext) -> str:
        return f"reach the end of corridor {ctx.task.task_id}"

    def build(self, ctx: PromptContext) -> list[dict[str, str]]:
        lines = [f"Task: {self.task_text(ctx)}."]
        if ctx.skill_block:
            lines.append(ctx.skill_block)
        lines.append(f"Step {ctx.step}.")
        for turn in history_window(ctx.history, self.history_length):
            lines.append(f"Saw: {turn.observation} Did: {turn.action}")
        lines.append(f"Now: {ctx.observation}")
        lines.append("Actions: " + ", ".join(ctx.admissible_actions or ()))
        return [{"role": "user", "content": "\n".join(lines)}]


_WORD = re.compile(r"\b(forward|back|wait)\b")


def corridor_parser(env_cfg: Mapping[str, Any] | None = None):
    def parse(text: str, admissible: Sequence[str] | None = None) -> ParsedAction:
        if not isinstance(text, str):
            return ParsedAction("", False, "not text")
        match = _WORD.search(text)
        if match is None:
            return ParsedAction("", False, "no action word")
        return ParsedAction(match.group(1), True)

    return parse


def vowel_parser(env_cfg: Mapping[str, Any] | None = None):
    """For the ``vowel`` env: a response that starts with a vowel walks ``forward``
    (and wins a length-1 corridor); anything else ``wait``s. A random policy wins a
    fraction of the time, so RL has something to learn from a random tiny model."""

    def parse(text: str, admissible: Sequence[str] | None = None) -> ParsedAction:
        first = text.strip()[:1].lower() if isinstance(text, str) else ""
        return ParsedAction("forward" if first in "aeiou" and first else "wait", True)

    return parse


def vowel_tasks(env_cfg: Mapping[str, Any], split: str) -> list[Task]:
    count = 16 if split == "train" else 4
    return [Task(f"{split}-{i}", "len1", split, {"length": 1}) for i in range(count)]


def make_corridor(env_cfg: Mapping[str, Any]):
    from helpers.envs import CorridorEnv

    return CorridorEnv(env_cfg)


class CrashBeforeStep(TrainerCallback):
    """Raises at the start of step ``step`` (after the previous step's checkpoint)."""

    def __init__(self, step: int = 3) -> None:
        self.crash_step = step

    def before_rollout(self, trainer: Any, step: int) -> None:
        if step == self.crash_step:
            raise KeyboardInterrupt(f"simulated crash before step {step}")


class ScriptedBackend(RolloutBackend):
    """Answers each prompt with the next string of ``script`` (cycled); test double of a
    policy for collector tests that need a known action sequence."""

    def __init__(self, tokenizer: Any, script: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.script = list(script)
        self.calls: list[int] = []
        self.position = 0

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams):
        self.calls.append(len(prompts))
        out = []
        for prompt in prompts:
            text = self.script[self.position % len(self.script)]
            self.position += 1
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            out.append(
                [Generation(list(prompt), ids, text, [-0.5] * len(ids), finish_reason="length")]
            )
        return out

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        pass


class CorridorPlugin:
    @hookimpl
    def register_envs(self, register):
        register(
            "corridor",
            env="helpers.corridor_plugin:make_corridor",
            tasks="helpers.corridor_plugin:corridor_tasks",
            prompt="helpers.corridor_plugin:CorridorPrompt",
            parser="helpers.corridor_plugin:corridor_parser",
            task_types=("len1", "len2"),
        )
        register(
            "vowel",
            env="helpers.corridor_plugin:make_corridor",
            tasks="helpers.corridor_plugin:vowel_tasks",
            prompt="helpers.corridor_plugin:CorridorPrompt",
            parser="helpers.corridor_plugin:vowel_parser",
            task_types=("len1",),
        )

    @hookimpl
    def register_config_paths(self, register):
        register(f"file://{CONF}")

    @hookimpl
    def register_trainer_callbacks(self, register):
        register("crash_before_step", "helpers.corridor_plugin:CrashBeforeStep")


def install() -> str:
    """Register the plugin (idempotent); returns its name."""
    from skillzero import registry

    name = "corridor-test"
    if registry.plugin_manager().has_plugin(name):
        return name
    return registry.register_plugin(CorridorPlugin(), name)


def corridor_run_overrides(model_dir: object, run_dir: object, *extra: str) -> list[str]:
    """Hydra overrides of a small GRPO run on the corridor env with the tiny model
    (shared by the training and checkpoint tests)."""
    return [
        "env=corridor",
        "algo=grpo",
        f"model.path={model_dir}",
        f"trainer.output_dir={run_dir}",
        "backend.sampling.max_new_tokens=6",
        "backend.val_sampling.max_new_tokens=6",
        "trainer.minibatch_size=8",
        "trainer.microbatch_size=4",
        "trainer.progress=false",
        "trainer.seed=3",
        *extra,
    ]
