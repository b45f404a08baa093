"""``skillzero eval``: success of a model or checkpoint on an env split.

Plays every task of the split (or the first ``eval.num_tasks``) once, with the validation
sampling settings (``backend.val_sampling``) and the configured skill provider
(``skills=none`` measures the zero-skill agent), and reports success overall and per task
type, valid-action ratio, episode length, and prompt/response/skill tokens per step, as
a printed table and a JSON file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from skillzero.core.collection import episode_metrics, mix_seed, sampling_params
from skillzero.core.collector import Assignment, Collector, skill_block_for
from skillzero.core.components import (
    build_env,
    count_tokens,
    make_backend,
    make_pool,
    make_skill_provider,
)
from skillzero.core.config import to_container
from skillzero.core.models import resolve_model_path
from skillzero.core.tasks import balanced_subset


def resolve_eval_model(cfg: DictConfig) -> str:
    """The weights to evaluate: ``eval.checkpoint`` (a trainer checkpoint folder, whose
    ``model`` subfolder holds the weights, or a model folder), else ``model``."""
    checkpoint = cfg.eval.checkpoint
    if checkpoint:
        path = Path(str(checkpoint)).expanduser()
        if (path / "model" / "config.json").is_file():
            return str(path / "model")
        if (path / "config.json").is_file():
            return str(path)
        raise FileNotFoundError(
            f"eval.checkpoint={checkpoint!r} is neither a checkpoint folder (with model/) "
            "nor a Hugging Face model folder (with config.json)"
        )
    return resolve_model_path(cfg.model)


def format_report(metrics: dict[str, float], title: str) -> str:
    """A two-column table of the report's metrics."""
    rows = [(key, value) for key, value in metrics.items()]
    width = max(len(key) for key, _ in rows) if rows else 10
    lines = [title, "-" * (width + 12)]
    for key, value in rows:
        shown = f"{value:.3f}" if abs(value - round(value)) > 1e-9 else f"{round(value)}"
        lines.append(f"{key:<{width}}  {shown:>9}")
    return "\n".join(lines)


def run_evaluation(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate and return the report (metrics, per-episode results, settings)."""
    from transformers import AutoTokenizer

    env = build_env(cfg.env)
    env_spec, env_cfg = env.spec, env.cfg
    split = str(cfg.eval.split or cfg.env.val_split)
    tasks = list(env_spec.list_tasks(env_cfg, split))
    if cfg.eval.num_tasks:  # round-robin over task types, as the trainer's validation
        tasks = balanced_subset(tasks, int(cfg.eval.num_tasks))
    if not tasks:
        raise ValueError(f"env {cfg.env.name!r} has no tasks in split {split!r}")
    model_path = resolve_eval_model(cfg)
    backend = make_backend(cfg, model_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    skills_cfg = to_container(cfg.skills)
    provider = make_skill_provider(skills_cfg, str(cfg.env.name))

    def render(prov: Any, ctx: Any) -> Any:
        return skill_block_for(
            prov,
            ctx,
            env.prompt_builder,
            lambda text: count_tokens(tokenizer, text),
            cfg.skills.budget_tokens,
        )

    started = time.perf_counter()
    seed = int(cfg.eval.seed)
    with make_pool(
        env_spec,
        env_cfg,
        cfg.env.pool,
        num_groups=max(1, min(int(cfg.eval.num_envs), len(tasks))),
        group_size=1,
        seed=seed,
    ) as pool:
        from skillzero.core.metrics_log import progress

        collector = Collector(
            pool,
            backend,
            env.prompt_builder,
            env.parser,
            max_prompt_tokens=int(cfg.env.max_prompt_tokens),
            render_skills=render,
            eos_token_id=tokenizer.eos_token_id,
        )
        bar = progress(len(tasks), f"eval {cfg.env.name}/{split}", unit="ep")
        result = collector.run(
            [Assignment(t, mix_seed(seed, i), i) for i, t in enumerate(tasks)],
            sampling_params(cfg.backend.val_sampling, seed=seed, overrides=env.sampling_overrides),
            skill_provider=provider,
            record_samples=False,
            progress=bar,
        )
        bar.close()
    backend.close()
    metrics = {
        key.removeprefix("eval/"): value
        for key, value in episode_metrics(result.episodes, env_spec, "eval").items()
    }
    metrics["seconds"] = time.perf_counter() - started
    return {
        "env": cfg.env.name,
        "split": split,
        "model": model_path,
        "skills": skills_cfg["provider"],
        "sampling": to_container(cfg.backend.val_sampling),
        "metrics": metrics,
        "episodes": [
            {
                **episode.as_record(),
                "env_return": episode.env_return,
                "prompt_tokens": episode.prompt_tokens,
                "response_tokens": episode.response_tokens,
                "skill_sources": list(episode.skill_sources),
                "error": episode.error,
                "seed": episode.seed,
                # what `skillzero sft sft.source=<this report>` replays
                "actions": list(episode.actions),
            }
            for episode in result.episodes
        ],
    }


def evaluate(cfg: DictConfig) -> int:
    """Entry point of ``skillzero eval``: prints the table and writes the JSON report."""
    report = run_evaluation(cfg)
    if cfg.eval.output:
        out = Path(str(cfg.eval.output))
    elif cfg.eval.checkpoint:
        out = Path(str(cfg.eval.checkpoint)) / f"eval-{report['split']}-{report['skills']}.json"
    else:
        out = Path(f"eval-{report['env']}-{report['split']}-{report['skills']}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    title = (
        f"{report['env']} / {report['split']}: {len(report['episodes'])} episodes, "
        f"skills={report['skills']}, model={report['model']}"
    )
    print(format_report(report["metrics"], title))
    print(f"report: {out}")
    return 0
