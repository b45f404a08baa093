"""One policy update on a fixed batch, for the 1-rank vs 2-rank FSDP test.

``torchrun --nproc_per_node=N -m helpers.fsdp_update MODEL_DIR OUT.pt``: builds a
deterministic batch of 10 step samples, recomputes log-probs under the sharded policy,
runs one PPO epoch (mini-batches of 6, micro-batches of 2: the ranks get padding rows)
with PPO-clip + low-var KL + entropy, and rank 0 saves metrics and the new weights.
"""

from __future__ import annotations

import sys

import torch


def main(model_dir: str, out: str) -> None:
    torch.set_num_threads(1)
    from skillzero.contracts.losses import WeightedTerm
    from skillzero.contracts.trajectory import K, StepSample, collate_steps
    from skillzero.core.distributed import init_distributed
    from skillzero.core.policy import Policy
    from skillzero.plugins.grpo.losses import EntropyLoss, LowVarKLLoss, PPOClipLoss

    ctx = init_distributed("cpu")
    gen = torch.Generator().manual_seed(0)
    samples = []
    for i in range(10):
        prompt = torch.randint(
            5, 300, (int(torch.randint(4, 12, (1,), generator=gen)),), generator=gen
        )
        response = torch.randint(
            5, 300, (int(torch.randint(1, 6, (1,), generator=gen)),), generator=gen
        )
        samples.append(
            StepSample(
                prompt.tolist(),
                response.tolist(),
                [0.0] * len(response),
                group_id=i // 4,
                traj_id=i,
                action_valid=bool(i % 3),
            )
        )
    batch = collate_steps(samples)
    trainer_cfg = {
        "microbatch_size": 2,
        "log_prob_microbatch_size": 3,
        "total_steps": 1,
        "optim": {"lr": 1e-3, "eps": 1e-3, "weight_decay": 0.01, "grad_clip": 1.0},
    }
    policy = Policy(
        model_dir,
        {"dtype": "float32", "attn_implementation": "sdpa"},
        trainer_cfg,
        ctx,
        need_reference=True,
    )
    # (on CPU the full state dict may alias the live parameters: copy it)
    initial = {k: v.clone() for k, v in policy.full_state_dict().items()}
    old = policy.compute_log_probs(batch)
    # Adam's first step is about lr * sign(grad): with a tiny eps, gradients that are
    # zero up to rounding would flip signs between 1 and 2 ranks; eps 1e-3 keeps the
    # comparison about the gradients themselves.
    # perturb the "old" log-probs so that some ratios fall outside the clip range
    noise = torch.randn(old.shape, generator=gen) * 0.3
    batch[K.OLD_LOG_PROBS] = (old + noise) * batch[K.RESPONSE_MASK]
    batch[K.REF_LOG_PROBS] = policy.compute_log_probs(batch, reference=True)
    batch[K.ADVANTAGES] = torch.randn(10, generator=gen)
    terms = [
        WeightedTerm("ppo_clip", 1.0, PPOClipLoss(0.2, dual_clip=3.0)),
        WeightedTerm("kl", 0.01, LowVarKLLoss()),
        WeightedTerm("entropy", -0.001, EntropyLoss()),
    ]
    metrics = policy.update(
        batch,
        terms,
        minibatch_size=6,
        ppo_epochs=1,
        generator=torch.Generator().manual_seed(1),
        needs_entropy=True,
    )
    weights = policy.full_state_dict()
    if ctx.is_main:
        torch.save(
            {"metrics": metrics, "old_log_probs": old, "weights": weights, "initial": initial}, out
        )
    ctx.barrier()
    ctx.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
