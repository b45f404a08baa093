"""How fast this machine runs the embedded default model: the numbers the main job's
time follows.

Prints one table: the machine's fp32 matmul rate, then for SmolLM2-135M-Instruct (or
``--model-path``) the prompt tokens per second of a forward pass, and of a training pass
(forward, backward, AdamW step; loss on the last ``--response`` tokens of each sample,
as the trainer's) with every weight trained and with only the top ``--top`` blocks
trained (``model.trainable_layers``), and the ratio of the two; then the forward and the
top-blocks training pass again with ``model.compute_dtype=bfloat16`` (matrix products in
bfloat16, weights and LM head in float32) and their ratios to float32. bfloat16 pays
off on CPUs with AVX512-BF16 or AMX (``native bf16`` in the header); elsewhere it is
emulated and slower.

    OMP_NUM_THREADS=2 python benchmarks/model_speed.py
    python benchmarks/model_speed.py --threads 1 --batch 4 --tokens 300

The quickstart (README) spends about two thirds of its time in these passes: divide its
measured minutes by how much faster your numbers are than the README's.
"""

from __future__ import annotations

import argparse
import os
import platform
import time


def best_of(repeats: int, run) -> float:
    """The fastest of ``repeats`` timed calls (seconds): the least disturbed one."""
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    parser.add_argument("--batch", type=int, default=4, help="samples per training pass")
    parser.add_argument("--tokens", type=int, default=300, help="tokens per sample")
    parser.add_argument("--response", type=int, default=13, help="tokens with a loss")
    parser.add_argument("--top", type=int, default=10, help="blocks trained in the last row")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-path", default=None)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from skillzero.core.config import compose
    from skillzero.core.models import native_bf16, resolve_model_path, set_compute_dtype
    from skillzero.core.policy import freeze_lower_layers

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows: list[tuple[str, str, str]] = []

    size = 2048
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    seconds = best_of(args.repeats, lambda: [a @ b for _ in range(5)])
    rows.append(("fp32 matmul 2048x2048", f"{5 * 2 * size**3 / seconds / 1e9:.0f} GFLOPS", ""))

    path = args.model_path or resolve_model_path(compose(["algo=grpo"]).model)
    ids = torch.randint(100, 20000, (args.batch, args.tokens))
    labels = ids[:, -args.response :]
    tokens = args.batch * args.tokens

    def load(compute_dtype: torch.dtype | None = None) -> torch.nn.Module:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32, attn_implementation="sdpa"
        )
        return set_compute_dtype(model, compute_dtype)

    def forward_rate(compute_dtype: torch.dtype | None = None) -> float:
        model = load(compute_dtype).eval()
        with torch.no_grad():
            return tokens / best_of(args.repeats, lambda: model(input_ids=ids, logits_to_keep=1))

    forward = forward_rate()
    rows.append(("forward (prompt tokens/s)", f"{forward:.0f}", ""))

    def training_rate(top: int | None, compute_dtype: torch.dtype | None = None) -> float:
        trained = load(compute_dtype).train()
        if top is not None:
            freeze_lower_layers(trained, top)
        params = [p for p in trained.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-5, foreach=False)

        def step() -> None:
            logits = trained(input_ids=ids, logits_to_keep=args.response + 1).logits[:, :-1]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
            )
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        step()  # optimizer state allocated outside the timing
        return tokens / best_of(args.repeats, step)

    full = training_rate(None)
    top = training_rate(args.top)
    rows.append(("training pass, every weight (tokens/s)", f"{full:.0f}", "1.00x"))
    name = f"training pass, top {args.top} blocks (tokens/s)"
    rows.append((name, f"{top:.0f}", f"{top / full:.2f}x"))
    mixed_forward = forward_rate(torch.bfloat16)
    rows.append(
        (
            "forward, bf16 compute (tokens/s)",
            f"{mixed_forward:.0f}",
            f"{mixed_forward / forward:.2f}x vs fp32",
        )
    )
    mixed_top = training_rate(args.top, torch.bfloat16)
    name = f"training pass, top {args.top} blocks, bf16 compute (tokens/s)"
    rows.append((name, f"{mixed_top:.0f}", f"{mixed_top / top:.2f}x vs fp32"))

    print(
        f"{platform.processor() or platform.machine()}, {args.threads} thread(s), torch "
        f"{torch.__version__}; native bf16: {native_bf16('cpu')}; batch {args.batch} x "
        f"{args.tokens} tokens, model {path}"
    )
    width = max(len(name) for name, _, _ in rows)
    print(f"{'measure':<{width}}  {'value':>14}  ratio")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>14}  {ratio}")


if __name__ == "__main__":
    main()
