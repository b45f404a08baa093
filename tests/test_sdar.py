"""The SDAR plugin: its loss terms, the RLSD advantage, the teacher prompt and callback,
and its configs."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict

from skillzero.contracts.env import PromptContext, Task, TurnRecord
from skillzero.contracts.losses import PolicyOutputs, WeightedTerm, combine, token_mean
from skillzero.contracts.skills import RenderedSkills, Skill, StaticSkillProvider
from skillzero.contracts.trajectory import K, StepSample, collate_steps
from skillzero.plugins.alfworld.prompt import AlfworldPrompt
from skillzero.plugins.sdar.losses import SDARLoss, SkillSDLoss, sdar_gate
from skillzero.plugins.sdar.teacher import (
    PRIVILEGED_HEADER,
    SDARTeacher,
    build_teacher_prompt,
    teacher_chat,
)


def loss_batch(mask: list[list[bool]], **tensors: list[list[float]]) -> TensorDict:
    data = {K.RESPONSE_MASK: torch.tensor(mask)}
    data.update({key: torch.tensor(value) for key, value in tensors.items()})
    return TensorDict(data, batch_size=[len(mask)])


# ----------------------------------------------------------------------------------------
# (a) the gate
# ----------------------------------------------------------------------------------------


def test_gate_values_beta_5_and_0():
    gap = torch.tensor([-0.5, -0.1, 0.0, 0.1, 0.5])
    expected = [1 / (1 + math.exp(-5 * g)) for g in (-0.5, -0.1, 0.0, 0.1, 0.5)]
    assert sdar_gate(gap, 5.0).tolist() == pytest.approx(expected, abs=1e-6)
    # the values sdar.md quotes: 0.08 / 0.38 / 0.5 / 0.62 / 0.92
    assert sdar_gate(gap, 5.0).tolist() == pytest.approx([0.076, 0.38, 0.5, 0.62, 0.924], abs=5e-3)
    assert sdar_gate(gap, 0.0).tolist() == [0.5] * 5


def test_sdar_loss_value_and_metrics_by_hand():
    # Δ = teacher - student on the three real tokens: -0.5, 0, +0.5 (last token masked)
    student = [[-1.0, -2.0, -1.5, -3.0]]
    teacher = [[-1.5, -2.0, -1.0, 0.0]]
    batch = loss_batch([[True, True, True, False]], teacher_log_probs=teacher)
    out = SDARLoss(beta=5.0)(batch, PolicyOutputs(torch.tensor(student)))
    g = [1 / (1 + math.exp(2.5)), 0.5, 1 / (1 + math.exp(-2.5))]
    assert float(out.loss.detach()) == pytest.approx(
        (g[0] * -0.5 + g[1] * 0.0 + g[2] * 0.5) / 3, abs=1e-6
    )
    assert out.metrics["gate_mean"] == pytest.approx(sum(g) / 3, abs=1e-6)
    assert out.metrics["gate_active_ratio"] == pytest.approx(1 / 3)  # only Δ = +0.5 has g > 0.5
    assert out.metrics["teacher_gap_mean"] == pytest.approx(0.0, abs=1e-7)

    flat = SDARLoss(beta=0.0)(batch, PolicyOutputs(torch.tensor(student)))
    assert flat.metrics["gate_mean"] == pytest.approx(0.5)
    assert flat.metrics["gate_active_ratio"] == 0.0
    assert float(flat.loss) == pytest.approx(0.5 * (-0.5 + 0.0 + 0.5) / 3, abs=1e-7)


def test_sdar_loss_ignores_garbage_past_the_response():
    batch = loss_batch([[True, False]], teacher_log_probs=[[-1.0, float("-inf")]])
    out = SDARLoss()(batch, PolicyOutputs(torch.tensor([[-1.0, 0.0]])))
    assert float(out.loss.detach()) == 0.0
    assert out.metrics["gate_mean"] == pytest.approx(0.5)


def test_unknown_gate_is_refused():
    with pytest.raises(ValueError, match="sigmoid"):
        SDARLoss(gate="entropy")


# ----------------------------------------------------------------------------------------
# (b) the gradient, on a real (tiny) causal LM
# ----------------------------------------------------------------------------------------


def response_log_probs(model, prompt: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
    """log π(response_t | prompt, response_<t) of every row, (B, R)."""
    ids = torch.cat([prompt, response], dim=1)
    logits = model(input_ids=ids).logits[:, prompt.shape[1] - 1 : -1]
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, response.unsqueeze(-1)).squeeze(-1)


def test_sdar_gradient_is_gated_likelihood_of_the_sampled_tokens(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    vocab = model.config.vocab_size
    prompt = torch.randint(5, vocab, (2, 6))
    response = torch.randint(5, vocab, (2, 5))
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])

    log_probs = response_log_probs(model, prompt, response)
    # a teacher that likes some tokens more and some less than the student
    teacher = log_probs.detach() + torch.tensor([[0.6, -0.4, 0.1, -1.0, 0.3]]).expand(2, 5)
    batch = TensorDict({K.RESPONSE_MASK: mask, K.TEACHER_LOG_PROBS: teacher}, batch_size=[2])
    params = [p for p in model.parameters() if p.requires_grad]

    SDARLoss(beta=5.0)(batch, PolicyOutputs(log_probs)).loss.backward()
    sdar_grads = [p.grad.clone() for p in params]
    model.zero_grad()

    gate = torch.sigmoid(5.0 * (teacher - log_probs.detach()))
    log_probs_again = response_log_probs(model, prompt, response)
    (-token_mean(gate * log_probs_again, batch)).backward()
    for a, b in zip(sdar_grads, [p.grad for p in params], strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
    assert any(float(g.abs().max()) > 0 for g in sdar_grads)


def test_sdar_gradient_per_token_never_pushes_down():
    # dL/dlog π_t = -g_t / N: every real token is pushed up, by its gate
    log_probs = torch.tensor([[-1.0, -2.0, -0.5]], requires_grad=True)
    teacher = torch.tensor([[-3.0, -1.0, -0.5]])
    batch = loss_batch([[True, True, True]], teacher_log_probs=teacher.tolist())
    SDARLoss(beta=5.0)(batch, PolicyOutputs(log_probs)).loss.backward()
    gate = torch.sigmoid(5.0 * (teacher - log_probs.detach()))
    assert torch.allclose(log_probs.grad, -gate / 3)
    assert bool((log_probs.grad < 0).all())


# ----------------------------------------------------------------------------------------
# (d) Skill-SD
# ----------------------------------------------------------------------------------------


def test_skill_sd_value_by_hand():
    student = [[-1.0, -2.0]]
    teacher = [[-1.5, -1.0]]
    old = [[-1.2, -2.0]]
    batch = loss_batch([[True, True]], teacher_log_probs=teacher, old_log_probs=old)
    log_probs = torch.tensor(student, requires_grad=True)
    out = SkillSDLoss()(batch, PolicyOutputs(log_probs))
    # ℓ = (0.5, -1.0); k3 = e^-ℓ - 1 + ℓ; ρ = (e^0.2, 1)
    k3 = [math.exp(-0.5) - 1 + 0.5, math.exp(1.0) - 1 - 1.0]
    rho = [math.exp(0.2), 1.0]
    assert float(out.loss.detach()) == pytest.approx(
        (rho[0] * k3[0] + rho[1] * k3[1]) / 2, abs=1e-6
    )
    assert out.metrics["k3_mean"] == pytest.approx(sum(k3) / 2, abs=1e-6)
    # ρ is not detached: the gradient is ρ·ℓ per token (over N = 2 tokens)
    out.loss.backward()
    assert log_probs.grad[0].tolist() == pytest.approx([rho[0] * 0.5 / 2, 1.0 * -1.0 / 2], abs=1e-6)


def test_skill_sd_is_zero_when_student_equals_teacher():
    values = [[-0.7, -1.3, -2.0]]
    batch = loss_batch([[True, True, False]], teacher_log_probs=values, old_log_probs=[[-1.0] * 3])
    log_probs = torch.tensor(values, requires_grad=True)
    out = SkillSDLoss()(batch, PolicyOutputs(log_probs))
    out.loss.backward()
    assert float(out.loss.detach()) == 0.0
    assert log_probs.grad.abs().max() == 0.0


def test_skill_sd_ratio_clamp():
    batch = loss_batch([[True]], teacher_log_probs=[[-2.0]], old_log_probs=[[-14.0]])
    out = SkillSDLoss(ratio_clamp=10.0)(batch, PolicyOutputs(torch.tensor([[-1.0]])))
    assert out.metrics["ratio_mean"] == pytest.approx(math.exp(10.0), rel=1e-5)
    assert float(out.loss.detach()) == pytest.approx(
        math.exp(10.0) * (math.exp(-1.0) - 1 + 1.0), rel=1e-5
    )


# ----------------------------------------------------------------------------------------
# (e) RLSD
# ----------------------------------------------------------------------------------------


def rlsd_batch(step: int) -> TensorDict:
    # group 0: two one-step episodes, returns 10 and 0 -> A = ±1/sqrt(2) (unbiased std);
    # row 2 is a padding row
    mask = torch.tensor([[True, True, False], [True, True, True], [False, False, False]])
    old = torch.tensor([[-1.0, -1.0, -1.0], [-2.0, -2.0, -2.0], [0.0, 0.0, 0.0]])
    gap = torch.tensor([[0.1, -0.5, 0.3], [0.1, -0.5, 0.3], [0.0, 0.0, 0.0]])
    return TensorDict(
        {
            K.RESPONSE_MASK: mask,
            K.OLD_LOG_PROBS: old,
            K.TEACHER_LOG_PROBS: old + gap,
            K.EPISODE_RETURN: torch.tensor([10.0, 0.0, 10.0]),
            K.GROUP_ID: torch.tensor([0, 0, -1]),
            K.TRAJ_ID: torch.tensor([0, 1, -1]),
            K.STEP: torch.tensor([0, 0, 0]),
            K.PENALTY: torch.zeros(3),
            K.TRAINING_STEP: torch.full((3,), step),
        },
        batch_size=[3],
    )


def clip(x: float, low: float = 0.8, high: float = 1.2) -> float:
    return min(max(x, low), high)


@pytest.mark.parametrize(("step", "lam"), [(1, 0.495), (50, 0.25), (100, 0.0), (150, 0.0)])
def test_rlsd_token_advantage_by_hand(step, lam):
    pytest.importorskip("skillzero.plugins.grpo.advantages")
    from skillzero.plugins.sdar.advantages import RLSDAdvantage

    estimator = RLSDAdvantage()
    adv = estimator(rlsd_batch(step))
    a = 1 / math.sqrt(2)  # (10 - 5) / 7.071...
    gaps = [0.1, -0.5, 0.3]
    # A > 0: w = clip(e^Δ); the teacher-preferred token (Δ=0.1) gets more of the credit
    positive = [a * ((1 - lam) + lam * clip(math.exp(d))) for d in gaps[:2]] + [0.0]
    # A < 0: w = clip(e^-Δ); the token the teacher rejects (Δ=-0.5) gets more of the blame
    negative = [-a * ((1 - lam) + lam * clip(math.exp(-d))) for d in gaps]
    assert adv.shape == (3, 3)
    assert adv[0].tolist() == pytest.approx(positive, abs=1e-5)
    assert adv[1].tolist() == pytest.approx(negative, abs=1e-5)
    assert adv[2].tolist() == [0.0, 0.0, 0.0]
    assert estimator.metrics()["lambda"] == pytest.approx(lam)


def test_rlsd_zero_advantage_stays_zero():
    pytest.importorskip("skillzero.plugins.grpo.advantages")
    from skillzero.plugins.sdar.advantages import RLSDAdvantage

    batch = rlsd_batch(1)
    batch[K.EPISODE_RETURN] = torch.tensor([10.0, 10.0, 10.0])
    assert RLSDAdvantage()(batch).abs().max() == 0.0


# ----------------------------------------------------------------------------------------
# (c) the teacher prompt
# ----------------------------------------------------------------------------------------

SKILLS = "Skills that may help with this task:\n- Heat: use the microwave.\n- Look: open it first."


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def template(tokenizer):
    def apply(messages):
        return list(
            tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=False
            )
        )

    return apply


CLEAN_TASK = Task("pick_clean/trial_1", "pick_clean_then_place_in_recep")


def alfworld_context(turns: int = 2, task: Task = CLEAN_TASK) -> PromptContext:
    first = "You are in the middle of a room. Your task is to: put a clean mug in coffeemachine."
    history = tuple(
        TurnRecord(f"You arrive at countertop {i}. You see a mug {i}.", f"go to countertop {i}")
        for i in range(1, turns + 1)
    )
    return PromptContext(
        task=task,
        observation="You arrive at sinkbasin 1.",
        step=turns + 1,
        history=history,
        admissible_actions=("clean mug 1 with sinkbasin 1", "look"),
        first_observation=first,
    )


def test_teacher_chat_puts_the_block_first_inside_the_user_message():
    builder = AlfworldPrompt({"history_length": 2})
    ctx = alfworld_context()
    student = builder.build(ctx)
    teacher = teacher_chat(builder, ctx, SKILLS)
    assert [m["role"] for m in teacher] == [m["role"] for m in student]
    expected = f"{PRIVILEGED_HEADER}\n{SKILLS}\n\n" + student[-1]["content"]
    assert teacher[-1]["content"] == expected
    # no skills: the teacher sees exactly the student's prompt
    assert teacher_chat(builder, ctx, "  ") == student


def test_teacher_prompt_keeps_the_template_first(tokenizer, template):
    builder = AlfworldPrompt({"history_length": 2})
    ctx = alfworld_context()
    prompt = build_teacher_prompt(builder, ctx, SKILLS, template, max_prompt_tokens=10_000)
    assert (prompt.history_kept, prompt.truncated, prompt.skill_cut) == (2, False, False)
    text = tokenizer.decode(prompt.ids)
    assert text.startswith(f"<|im_start|>user\n{PRIVILEGED_HEADER}\n{SKILLS}\n\n")
    assert builder.build(ctx)[-1]["content"] in text
    assert text.endswith("<|im_start|>assistant\n")


def test_history_is_cut_before_the_skill_block(tokenizer, template):
    builder = AlfworldPrompt({"history_length": 2})
    ctx = alfworld_context()
    lengths = {h: len(template(teacher_chat(builder, ctx, SKILLS, h))) for h in (0, 1, 2)}
    assert lengths[0] < lengths[1] < lengths[2]

    one = build_teacher_prompt(builder, ctx, SKILLS, template, lengths[1])
    assert (one.history_kept, one.truncated, one.skill_cut) == (1, True, False)
    assert not one.over_limit
    assert one.ids == template(teacher_chat(builder, ctx, SKILLS, 1))
    assert "countertop 2" in tokenizer.decode(one.ids)  # the most recent turn is kept
    assert "go to countertop 1" not in tokenizer.decode(one.ids)
    assert "This is step 3." in tokenizer.decode(one.ids)  # ctx.step, not the window size

    none = build_teacher_prompt(builder, ctx, SKILLS, template, lengths[0])
    assert (none.history_kept, none.truncated, none.skill_cut) == (0, True, False)
    assert SKILLS in tokenizer.decode(none.ids)


def test_a_prompt_that_cannot_fit_keeps_its_whole_skill_block(tokenizer, template):
    builder = AlfworldPrompt({"history_length": 2})
    ctx = alfworld_context()
    shortest = len(template(teacher_chat(builder, ctx, SKILLS, 0)))
    skill_cost = shortest - len(template(teacher_chat(builder, ctx, "", 0)))
    limit = max(skill_cost, shortest - 5)
    prompt = build_teacher_prompt(builder, ctx, SKILLS, template, limit)
    assert (prompt.history_kept, prompt.truncated, prompt.skill_cut) == (0, True, False)
    assert prompt.over_limit
    assert len(prompt.ids) == shortest
    assert SKILLS in tokenizer.decode(prompt.ids)


def test_a_skill_block_longer_than_the_limit_is_cut_at_a_line_and_reported(tokenizer, template):
    builder = AlfworldPrompt({"history_length": 2})
    ctx = alfworld_context(turns=0)
    lines = [f"- Skill {i}: take the mug {i} and go to the countertop {i}." for i in range(30)]
    block = "Skills that may help with this task:\n" + "\n".join(lines)
    student = len(template(builder.build(ctx)))
    limit = 80
    assert len(template(teacher_chat(builder, ctx, block))) - student > limit
    prompt = build_teacher_prompt(builder, ctx, block, template, limit)
    assert prompt.skill_cut
    assert prompt.truncated
    text = tokenizer.decode(prompt.ids)
    kept = text.split(f"{PRIVILEGED_HEADER}\n", 1)[1].split("\n\n", 1)[0]
    assert block.startswith(kept)
    assert kept != block
    assert block[len(kept)] == "\n"  # cut at a line boundary
    assert len(prompt.ids) - student <= limit
    assert builder.build(ctx)[-1]["content"] in text  # the student's prompt is whole


# ----------------------------------------------------------------------------------------
# the callback, with a small stand-in for the trainer's documented API
# ----------------------------------------------------------------------------------------


class FakeTrainer:
    """The attributes of the trainer API that ``sdar_teacher`` uses."""

    def __init__(self, template, max_prompt_tokens: int = 10_000) -> None:
        self.env_cfg = {"name": "alfworld", "max_prompt_tokens": max_prompt_tokens}
        self.prompt_builder = AlfworldPrompt({"history_length": 2})
        self.apply_chat_template = template
        self.is_main_process = True
        self.provider_configs: list[dict] = []
        self.rendered: list[str] = []
        self.budgets: list = []
        self.scored: list[list[int]] = []
        self.logged: list[tuple[dict, int]] = []

    def build_skill_provider(self, cfg):
        self.provider_configs.append(dict(cfg))
        return StaticSkillProvider(
            [
                Skill("g", "general", "General", "think first"),
                Skill("c", "pick_clean_then_place_in_recep", "Clean", "use the sinkbasin"),
            ]
        )

    def render_skills(self, provider, ctx, *, budget_tokens="config"):
        self.rendered.append(ctx.task.task_id)
        self.budgets.append(budget_tokens)
        skills = provider.skills_for(ctx.task)
        text = "\n".join(f"- {s.title}: {s.text}" for s in skills)
        return RenderedSkills(text, tuple(s.id for s in skills), tokens=len(text.split()))

    def score_responses(self, prompt_ids, batch):
        self.scored = [list(p) for p in prompt_ids]
        return torch.full(batch[K.RESPONSE_MASK].shape, -0.25)

    def log(self, metrics, step):
        self.logged.append((dict(metrics), step))


def teacher_batch(task: Task = CLEAN_TASK) -> TensorDict:
    contexts = [alfworld_context(turns=t, task=task) for t in (0, 1, 2)]
    samples = [
        StepSample([1, 2, 3], [4, 5], [-0.1, -0.2], prompt_context=ctx, task_id=ctx.task.task_id)
        for ctx in contexts
    ]
    return collate_steps(samples)


def test_callback_scores_teacher_prompts_and_logs_its_metrics(template):
    trainer = FakeTrainer(template)
    callback = SDARTeacher()
    batch = teacher_batch()
    callback.on_train_start(trainer)
    callback.after_rollout(trainer, 3, batch)

    assert trainer.provider_configs == [{"provider": "category", "bank": "alfworld", "params": {}}]
    assert trainer.rendered == ["pick_clean/trial_1"]  # rendered once per task
    skills = "- General: think first\n- Clean: use the sinkbasin"
    builder = trainer.prompt_builder
    expected = [template(teacher_chat(builder, ctx, skills)) for ctx in batch[K.PROMPT_CONTEXT]]
    assert trainer.scored == expected
    assert batch[K.TEACHER_LOG_PROBS].shape == batch[K.RESPONSE_MASK].shape
    metrics, step = trainer.logged[-1]
    assert step == 3
    assert metrics["sdar/teacher_prompt_tokens"] == pytest.approx(
        sum(len(ids) for ids in expected) / 3
    )
    assert metrics["sdar/truncated_samples"] == 0.0
    assert metrics["sdar/skill_cut_samples"] == 0.0
    assert {"sdar/over_limit_samples", "sdar/skill_block_tokens", "sdar/no_skill_samples"} <= set(
        metrics
    )


def test_callback_counts_truncated_samples(template):
    builder = AlfworldPrompt({"history_length": 2})
    skills = "- General: think first\n- Clean: use the sinkbasin"
    longest = alfworld_context(turns=2)
    limit = len(template(teacher_chat(builder, longest, skills, 1)))
    trainer = FakeTrainer(template, max_prompt_tokens=limit)
    batch = teacher_batch()
    SDARTeacher().after_rollout(trainer, 1, batch)
    metrics, _ = trainer.logged[-1]
    assert metrics["sdar/truncated_samples"] == 1.0  # only the two-turn sample was cut
    assert metrics["sdar/skill_cut_samples"] == 0.0
    assert max(len(ids) for ids in trainer.scored) <= limit


def test_callback_skill_all_and_teacher_budget(template):
    assert SDARTeacher(skill_all=True).skills_cfg["provider"] == "all"
    assert SDARTeacher(skills={"bank": "mine"}).skills_cfg["bank"] == "mine"
    # the teacher's block is rendered under its own budget, not the student's
    trainer = FakeTrainer(template, max_prompt_tokens=4096)
    SDARTeacher(skills={"budget_tokens": 100}).after_rollout(trainer, 1, teacher_batch())
    assert set(trainer.budgets) == {100}


class BankTrainer(FakeTrainer):
    """``FakeTrainer`` with the registered skill providers, rendered as the trainer does."""

    def build_skill_provider(self, cfg):
        from skillzero import registry

        self.provider_configs.append(dict(cfg))
        return registry.get("skill_providers", cfg["provider"]).create(dict(cfg))

    def render_skills(self, provider, ctx, *, budget_tokens="config"):
        from skillzero.contracts.skills import render_skill_block

        self.rendered.append(ctx.task.task_id)
        return render_skill_block(provider.skills_for(ctx.task, ""))


def test_teacher_gets_the_task_types_skills_from_the_alfworld_bank(tokenizer, template):
    from skillzero import registry

    try:
        registry.get("skill_providers", "category")
    except registry.UnknownComponentError:
        pytest.skip("the skills plugin (provider category) is not installed")
    heat = Task("heat/trial_1", "pick_heat_then_place_in_recep")
    trainer = BankTrainer(template, max_prompt_tokens=100_000)
    SDARTeacher().after_rollout(trainer, 1, teacher_batch(heat))
    assert trainer.provider_configs[0]["bank"] == "alfworld"
    text = tokenizer.decode(trainer.scored[0])
    bank = registry.get("skill_providers", "all").create({"provider": "all", "bank": "alfworld"})
    by_source: dict[str, list[str]] = {}
    for skill in bank.skills_for(heat):
        by_source.setdefault(skill.source, []).append(skill.title)
    assert all(title in text for title in by_source["general_skills.md"] + by_source["heat.md"])
    assert not any(title in text for title in by_source["cool.md"])
    assert text.startswith(f"<|im_start|>user\n{PRIVILEGED_HEADER}\n")


# ----------------------------------------------------------------------------------------
# (f) metric names through the trainer's combine(), registration and configs
# ----------------------------------------------------------------------------------------


def test_metric_names_when_registered_as_sdar_and_skill_sd():
    batch = loss_batch(
        [[True, True]], teacher_log_probs=[[-1.0, -2.0]], old_log_probs=[[-1.0, -1.0]]
    )
    outputs = PolicyOutputs(torch.tensor([[-1.5, -1.0]]))
    metrics = combine(
        [WeightedTerm("sdar", 0.01, SDARLoss()), WeightedTerm("skill_sd", 0.001, SkillSDLoss())],
        batch,
        outputs,
    ).metrics
    assert {
        "loss/sdar",
        "sdar/gate_mean",
        "sdar/gate_active_ratio",
        "sdar/teacher_gap_mean",
        "loss/skill_sd",
        "skill_sd/k3_mean",
        "skill_sd/ratio_mean",
        "loss/total",
    } <= set(metrics)


def test_plugin_registers_its_components():
    from skillzero import registry
    from skillzero.plugins.sdar.advantages import RLSDAdvantage

    assert registry.get("loss_terms", "sdar").load() is SDARLoss
    assert registry.get("loss_terms", "skill_sd").load() is SkillSDLoss
    assert registry.get("advantage_estimators", "rlsd").load() is RLSDAdvantage
    assert registry.get("trainer_callbacks", "sdar_teacher").load() is SDARTeacher
    assert registry.get("loss_terms", "sdar").plugin == "sdar"


EXPECTED_TERMS = {
    "sdar": {"ppo_clip": 1.0, "kl": 0.01, "entropy": -0.001, "sdar": 0.01},
    "grpo_opsd": {"ppo_clip": 1.0, "kl": 0.01, "entropy": -0.001, "sdar": 0.01},
    "opsd": {"ppo_clip": 0.0, "kl": 0.01, "entropy": -0.001, "sdar": 0.01},
    "skill_sd": {"ppo_clip": 1.0, "kl": 0.01, "entropy": -0.001, "skill_sd": 0.001},
    "rlsd": {"ppo_clip": 1.0, "kl": 0.01, "entropy": -0.001},
}


@pytest.mark.parametrize("algo", sorted(EXPECTED_TERMS))
def test_algo_configs_compose_and_validate(algo):
    from skillzero.core.config import compose, validate

    cfg = validate(compose([f"algo={algo}"]))
    terms = {t.name: t.coef for t in cfg.algo.loss_terms}
    assert terms == pytest.approx(EXPECTED_TERMS[algo])
    assert [cb.name for cb in cfg.algo.callbacks] == ["sdar_teacher"]
    assert cfg.skills.provider == "none"  # the student sees no skills
    sdar = [t for t in cfg.algo.loss_terms if t.name == "sdar"]
    if sdar:
        assert sdar[0].params["beta"] == (0.0 if algo == "grpo_opsd" else 5.0)
    assert cfg.algo.advantage.name == ("rlsd" if algo == "rlsd" else "grpo")


def test_skill_grpo_is_grpo_with_the_students_skills():
    from skillzero.core.config import compose, validate

    plain = validate(compose(["algo=skill_grpo"]))
    grpo = validate(compose(["algo=grpo"]))
    assert not plain.algo.callbacks
    assert [(t.name, t.coef) for t in plain.algo.loss_terms] == [
        (t.name, t.coef) for t in grpo.algo.loss_terms
    ]
    try:
        cfg = compose(["algo=skill_grpo", "skills=category"])
    except Exception as exc:
        if "unknown skills 'category'" not in str(exc):
            raise
        pytest.skip("the skills plugin (skills=category) is not installed")
    assert cfg.skills.provider == "category"
