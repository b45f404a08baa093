"""``skillzero play``: one episode in the terminal, step by step.

Each step shows what the policy is given and what comes of its answer: the prompt, the
response, the parser's verdict (the action, valid or not and why) and the env's reply
(observation, reward, done, won). The responses come from a model (the config's
``model``, or ``--model`` naming a checkpoint or Hugging Face folder), from a person
typing at the terminal (``--human``) or from a file of responses (``--script``).

What is shown is what training uses, built by the same pieces: the env's prompt builder
and action parser from the registry, the skill block chosen and rendered by
:func:`~skillzero.core.collector.skill_block_for`, the history window and prompt
truncation of :func:`~skillzero.core.collector.fit_prompt`, and the sampling settings
of ``skillzero eval`` (``backend.val_sampling`` with the env's response-format overrides).
The prompt is printed as the model reads it: the prompt token ids (the chat template
applied to the builder's messages, cut to ``env.max_prompt_tokens`` where needed)
decoded back to text; ``--messages`` prints the chat messages instead. Invalid responses
appear in later prompts' history exactly as the collector writes them.

Typed and scripted responses are parsed by the env's action parser exactly as a model
response would be (so a person can check what the parser accepts); with ``--raw`` the
text is the action itself, sent to the env unparsed. One line is one response (``\\n``
in it stands for a line break); the end of input (Ctrl-D, or the end of the script) ends
the episode cleanly.

Heavy modules (torch, transformers, the collector) are imported only when an episode
runs, so building the command line stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from skillzero.contracts.env import ParsedAction, Task
    from skillzero.contracts.rollout import RolloutBackend, SamplingParams

RULE_WIDTH = 78


class PlayError(ValueError):
    """A problem the user can fix (unknown task, missing script, bad model folder)."""


@dataclass(frozen=True)
class PlayOptions:
    """The options of ``skillzero play`` besides the Hydra overrides.

    ``model``: a checkpoint folder (its ``model`` subfolder is loaded) or a Hugging Face
    model folder; None uses the config's ``model``. With ``human`` or ``script`` the
    model is not loaded: only its tokenizer, to template and count the prompt.
    ``task``: a task id of the split, or its index in the split's list; None draws one
    with ``seed``. ``split``: default ``env.train_split``. ``max_steps`` replaces
    ``env.max_steps``. ``raw``: typed or scripted text is the action, not parsed.
    ``messages``: show the chat messages instead of the templated prompt.
    """

    model: str | None = None
    human: bool = False
    script: str | None = None
    raw: bool = False
    task: str | None = None
    split: str | None = None
    seed: int = 0
    max_steps: int | None = None
    messages: bool = False


@dataclass(frozen=True)
class Response:
    """One response and how it came about (``detail``: tokens, finish reason)."""

    text: str
    detail: str = ""


@dataclass
class PlayedStep:
    """One step as shown: the prompt, the response, the parser's verdict, the reply."""

    step: int
    prompt: str
    prompt_tokens: int
    history_shown: int
    history_total: int
    prompt_cut: bool
    response: str
    action: str
    valid: bool
    reason: str
    observation: str
    reward: float
    done: bool
    won: bool
    truncated: bool
    error: str | None = None


@dataclass
class PlayResult:
    """The episode: its task, its steps, how it ended."""

    task: Task
    seed: int
    responder: str
    steps: list[PlayedStep] = field(default_factory=list)
    won: bool = False
    env_return: float = 0.0
    ended: str = ""
    skill_sources: tuple[str, ...] = ()

    @property
    def valid_actions(self) -> int:
        return sum(step.valid for step in self.steps)


# ----------------------------------------------------------------------------------------
# Where responses come from
# ----------------------------------------------------------------------------------------


class Responder(Protocol):
    """Answers one prompt; None means there is no more input (the episode ends)."""

    #: how the summary names the source of responses
    label: str
    #: the response is already on the screen (typed at a terminal): don't print it again
    echoed: bool

    def respond(self, prompt_ids: list[int], step: int) -> Response | None: ...


class ModelResponder:
    """A rollout backend sampling with ``sampling``; step ``k`` is seeded with
    ``sampling.seed + k - 1``, as the collector seeds its successive generate calls."""

    def __init__(self, backend: RolloutBackend, sampling: SamplingParams, label: str) -> None:
        self.backend = backend
        self.sampling = sampling
        self.label = label
        self.echoed = False

    def respond(self, prompt_ids: list[int], step: int) -> Response | None:
        params = self.sampling
        if params.seed is not None:
            params = dataclasses.replace(params, seed=params.seed + step - 1)
        generation = self.backend.generate([prompt_ids], params)[0][0]
        detail = f"{len(generation.token_ids)} tokens, finish: {generation.finish_reason}"
        return Response(generation.text, detail)


LINE_BREAK_NOTE = "\\n stands for a line break, \\\\ for a backslash"


def decode_line(line: str) -> str:
    """One typed or scripted line as a response: the line end dropped, ``\\n`` turned
    into a line break and ``\\\\`` into one backslash (so that a multi-line response
    fits on one line); any other character, other backslashes included, is kept."""
    line = line.rstrip("\r\n")
    return re.sub(r"\\(\\|n)", lambda m: "\n" if m.group(1) == "n" else "\\", line)


class LineResponder:
    """One response per line of ``lines`` (typed or read from a file), decoded by
    :func:`decode_line`; an empty line is an empty response. ``ask`` is printed to
    ``out`` before each read (the typing prompt); ``echoed``: the text is already on the
    screen (typed at a terminal), so it is not printed again."""

    def __init__(
        self,
        lines: Iterator[str],
        label: str,
        *,
        ask: str = "",
        out: TextIO | None = None,
        echoed: bool = False,
    ) -> None:
        self.lines = lines
        self.label = label
        self.ask = ask
        self.out = out
        self.echoed = echoed

    def respond(self, prompt_ids: list[int], step: int) -> Response | None:
        if self.ask and self.out is not None:
            self.out.write(self.ask)
            self.out.flush()
        line = next(self.lines, None)
        if line is None:
            if self.ask and self.out is not None:
                self.out.write("\n")
            return None
        return Response(decode_line(line))


def _stdin_lines(stream: TextIO) -> Iterator[str]:
    while True:
        line = stream.readline()
        if not line:  # end of input (Ctrl-D)
            return
        yield line


def read_script(path: str | os.PathLike[str]) -> list[str]:
    """The responses of a script file: one per line."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise PlayError(f"--script {path}: no such file")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlayError(f"--script {path}: cannot read it ({exc})") from None
    # "\n" only: a response may hold other characters that str.splitlines splits on
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def raw_action(text: str) -> ParsedAction:
    """``--raw``: the text itself is the action; only an empty one is invalid."""
    from skillzero.contracts.env import ParsedAction

    action = text.strip()
    return ParsedAction(action=action, valid=bool(action), reason="" if action else "empty action")


# ----------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------


class _Printer:
    """Section rules and labels; bold/red/green only on a terminal (and no $NO_COLOR)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        isatty = getattr(out, "isatty", None)
        self.color = bool(isatty and isatty()) and "NO_COLOR" not in os.environ

    def _style(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def rule(self, title: str, char: str = "-") -> None:
        head = f"{char * 3} {title} "
        self.line(self._style(head + char * max(3, RULE_WIDTH - len(head)), "1"))

    def good(self, text: str) -> str:
        return self._style(text, "32")

    def bad(self, text: str) -> str:
        return self._style(text, "31")

    def flush(self) -> None:
        self.out.flush()


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


# ----------------------------------------------------------------------------------------
# The episode
# ----------------------------------------------------------------------------------------


def choose_task(tasks: Sequence[Task], wanted: str | None, seed: int) -> tuple[int, Task]:
    """The task to play and its index: ``wanted`` as a task id, else as an index into
    ``tasks``, else as a part of exactly one task id; None draws one with ``seed``."""
    if not tasks:
        raise PlayError("the split has no tasks")
    if wanted is None:
        index = random.Random(seed).randrange(len(tasks))
        return index, tasks[index]
    for index, task in enumerate(tasks):
        if task.task_id == wanted:
            return index, task
    if wanted.lstrip("-").isdigit():
        index = int(wanted)
        if not 0 <= index < len(tasks):
            raise PlayError(
                f"--task {wanted}: the split has {len(tasks)} tasks (0..{len(tasks) - 1})"
            )
        return index, tasks[index]
    matches = [(i, t) for i, t in enumerate(tasks) if wanted in t.task_id]
    if len(matches) == 1:
        return matches[0]
    examples = ", ".join(t.task_id for _, t in (matches or list(enumerate(tasks)))[:3])
    if matches:
        raise PlayError(f"--task {wanted!r} matches {len(matches)} tasks, e.g. {examples}")
    raise PlayError(
        f"--task {wanted!r} is neither a task id, an index nor part of one; "
        f"{len(tasks)} tasks, e.g. {examples}"
    )


def _model_path(cfg: DictConfig, options: PlayOptions) -> str:
    from omegaconf import OmegaConf

    from skillzero.core.evaluation import resolve_eval_model
    from skillzero.core.models import ModelUnavailableError

    try:
        return resolve_eval_model(OmegaConf.merge(cfg, {"eval": {"checkpoint": options.model}}))
    except FileNotFoundError as exc:
        raise PlayError(str(exc).replace("eval.checkpoint", "--model")) from None
    except ModelUnavailableError as exc:
        raise PlayError(str(exc)) from None


def play_episode(
    cfg: DictConfig,
    options: PlayOptions,
    *,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
) -> PlayResult:
    """Play one episode as ``options`` say, printing every step to ``out`` (stdout);
    ``--human`` reads ``stdin``."""
    from transformers import AutoTokenizer

    from skillzero import registry
    from skillzero.contracts.env import sampling_overrides
    from skillzero.core.collection import sampling_params
    from skillzero.core.components import make_backend, make_skill_provider
    from skillzero.core.config import to_container
    from skillzero.core.pool import EnvPool

    if options.human and options.script:
        raise PlayError("choose one of --human and --script")
    if options.raw and not (options.human or options.script):
        raise PlayError("--raw applies to typed or scripted responses (--human or --script)")
    if options.max_steps is not None and options.max_steps < 1:
        raise PlayError(f"--max-steps must be >= 1, got {options.max_steps}")
    script = read_script(options.script) if options.script else None
    printer = _Printer(sys.stdout if out is None else out)

    env_name = str(cfg.env.name)
    env_spec = registry.get("envs", env_name)
    env_cfg = to_container(cfg.env)
    if options.max_steps is not None:
        env_cfg["max_steps"] = int(options.max_steps)
    split = str(options.split or cfg.env.train_split)
    try:
        tasks = list(env_spec.list_tasks(env_cfg, split))
    except FileNotFoundError as exc:
        raise PlayError(str(exc)) from None
    if not tasks:
        raise PlayError(f"env {env_name!r} has no tasks in split {split!r}")
    index, task = choose_task(tasks, options.task, options.seed)

    model_path = _model_path(cfg, options)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    try:
        builder = env_spec.make_prompt_builder(env_cfg)
        parser = env_spec.make_action_parser(env_cfg)
    except ValueError as exc:  # a bad env setting (e.g. an unknown response format)
        raise PlayError(str(exc)) from None
    episode = _Episode(
        printer=printer,
        options=options,
        builder=builder,
        parser=parser,
        tokenizer=tokenizer,
        max_prompt_tokens=int(cfg.env.max_prompt_tokens),
        skill_provider=make_skill_provider(to_container(cfg.skills), env_name),
        skill_budget=cfg.skills.budget_tokens,
    )

    backend = None
    responder: Responder
    if script is not None:
        responder = LineResponder(iter(script), f"script {options.script}")
    elif options.human:
        stream = sys.stdin if stdin is None else stdin
        responder = LineResponder(
            _stdin_lines(stream),
            "typed",
            ask="response> ",
            out=printer.out,
            echoed=bool(getattr(stream, "isatty", lambda: False)()),
        )
    else:
        backend = make_backend(cfg, model_path)
        # validation sampling, with what the env's response format asks for, as `eval`
        sampling = sampling_params(
            cfg.backend.val_sampling, seed=options.seed, overrides=sampling_overrides(builder)
        )
        responder = ModelResponder(
            backend,
            sampling,
            f"model {model_path} (backend {cfg.backend.name}; temperature "
            f"{sampling.temperature:g}, at most {sampling.max_new_tokens} new tokens)",
        )

    result = PlayResult(task=task, seed=options.seed, responder=responder.label)
    printer.rule(f"skillzero play: {env_name} / {split}", "=")
    printer.line(f"task       {task.task_id}  ({task.task_type}; index {index} of {len(tasks)})")
    printer.line(f"seed       {options.seed}")
    printer.line(f"max steps  {env_cfg.get('max_steps')}")
    printer.line(f"skills     {cfg.skills.provider}")
    printer.line(f"responses  {responder.label}")
    if options.human or options.script:
        how = (
            "sent to the env as the action itself (--raw)"
            if options.raw
            else f"parsed by the {env_name} action parser like a model response"
        )
        printer.line(f"           one line per response ({LINE_BREAK_NOTE}), {how}")
    if options.human:
        printer.line("           end of input (Ctrl-D) ends the episode")
    shown = (
        "the chat messages of the prompt builder (--messages)"
        if options.messages
        else "as the model reads it: the prompt token ids (chat template applied), decoded"
    )
    printer.line(f"prompt     {shown}")
    printer.flush()
    try:
        with EnvPool(
            env_spec.env,
            env_cfg,
            num_groups=1,
            group_size=1,
            workers=1,
            backend=str(cfg.env.pool.backend),
            seed=options.seed,
            receive_timeout=cfg.env.pool.receive_timeout,
        ) as pool:
            episode.play(pool, responder, result)
    finally:
        if backend is not None:
            backend.close()
    _summary(printer, result)
    printer.flush()
    return result


@dataclass
class _Episode:
    """Plays one episode in env 0 of a pool, with the collector's bookkeeping: the same
    prompt context each step, the same history records (invalid responses as
    :func:`~skillzero.core.collector.invalid_history_action` writes them) and the same
    update of the admissible actions."""

    printer: _Printer
    options: PlayOptions
    builder: Any
    parser: Any
    tokenizer: Any
    max_prompt_tokens: int
    skill_provider: Any
    skill_budget: int | None

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """Prompt ids of a chat, templated as the trainer does (generation prompt added)."""
        return list(
            self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=False
            )
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def play(self, pool: Any, responder: Responder, result: PlayResult) -> None:
        from skillzero.contracts.env import PromptContext, TurnRecord
        from skillzero.core.collector import fit_prompt, invalid_history_action, skill_block_for

        printer, options, task = self.printer, self.options, result.task
        reply = pool.reset_envs({0: (task, options.seed)})[0]
        if reply.done:
            result.ended = f"the env failed to start the task: {reply.info.get('error')}"
            printer.line(printer.bad(result.ended))
            return
        observation = first_observation = reply.observation
        admissible = reply.admissible_actions
        history: list[TurnRecord] = []
        skill_block = ""

        def context() -> PromptContext:
            return PromptContext(
                task=task,
                observation=observation,
                step=len(history) + 1,
                history=tuple(history),
                admissible_actions=tuple(admissible) if admissible else None,
                first_observation=first_observation,
                skill_block=skill_block,
            )

        # chosen once per episode, from its first context, as the collector does
        skills = skill_block_for(
            self.skill_provider, context(), self.builder, self.count_tokens, self.skill_budget
        )
        skill_block = skills.text
        result.skill_sources = tuple(skills.sources)
        if skills.text:
            printer.line(f"skill block  {skills.tokens} tokens from {', '.join(skills.sources)}")

        while True:
            step = len(history) + 1
            ids, used, cut = fit_prompt(
                context(), self.builder, self.chat_ids, self.max_prompt_tokens
            )
            if options.messages:
                prompt = "\n".join(
                    f"[{m['role']}]\n{m['content']}" for m in self.builder.build(used)
                )
            else:
                prompt = self.tokenizer.decode(ids, skip_special_tokens=False)
            notes = [f"{len(ids)} tokens", f"history: {len(used.history)} of {len(history)} turns"]
            if cut:
                notes.append(f"start cut to env.max_prompt_tokens={self.max_prompt_tokens}")
            printer.line()
            printer.rule(f"step {step}", "=")
            printer.rule(f"prompt ({'; '.join(notes)})")
            printer.line(prompt)
            printer.rule("response")
            printer.flush()
            response = responder.respond(list(ids), step)
            if response is None:
                printer.line("(no response)")
                result.ended = "end of input" if options.human else "the script has no more lines"
                return
            if not responder.echoed:
                printer.line(response.text)
            if response.detail:
                printer.line(f"({response.detail})")
            if options.raw:
                parsed = raw_action(response.text)
            else:
                parsed = self.parser(response.text, admissible)
            printer.rule("action")
            if parsed.valid:
                printer.line(f"{printer.good('valid')}    {parsed.action!r}")
            else:
                printer.line(f"{printer.bad('INVALID')}  {parsed.reason or '(no reason given)'}")
                printer.line(f"the env receives {parsed.action!r}")
            printer.flush()

            reply = pool.step({0: parsed.action})[0]
            error = reply.info.get("error")
            printer.rule(f"observation (reward {reply.reward:g})")
            printer.line(reply.observation)
            status = f"done: {_yes(reply.done)}   won: {_yes(reply.won)}"
            if reply.truncated:
                status += "   (step limit reached)"
            printer.line(printer.good(status) if reply.won else status)
            if error:
                printer.line(printer.bad(f"env error: {error}"))
            printer.flush()
            result.steps.append(
                PlayedStep(
                    step=step,
                    prompt=prompt,
                    prompt_tokens=len(ids),
                    history_shown=len(used.history),
                    history_total=len(history),
                    prompt_cut=cut,
                    response=response.text,
                    action=parsed.action,
                    valid=parsed.valid,
                    reason=parsed.reason,
                    observation=reply.observation,
                    reward=float(reply.reward),
                    done=reply.done,
                    won=reply.won,
                    truncated=reply.truncated,
                    error=error,
                )
            )
            result.env_return += float(reply.reward)
            shown = parsed.action if parsed.valid else invalid_history_action(parsed.reason)
            history.append(TurnRecord(observation, shown))
            observation = reply.observation
            if reply.admissible_actions is not None or reply.done:
                admissible = reply.admissible_actions
            if reply.done:
                result.won = reply.won
                if error:
                    result.ended = f"env error: {error}"
                elif reply.won:
                    result.ended = "won"
                elif reply.truncated:
                    result.ended = "step limit reached"
                else:
                    result.ended = "the env ended the episode"
                return


def _summary(printer: _Printer, result: PlayResult) -> None:
    printer.line()
    printer.rule("summary", "=")
    steps = len(result.steps)
    printer.line(f"task       {result.task.task_id}  ({result.task.task_type})")
    printer.line(f"responses  {result.responder}")
    printer.line(f"steps      {steps}")
    printer.line(f"valid      {result.valid_actions} of {steps}")
    printer.line(f"return     {result.env_return:g}")
    won = _yes(result.won)
    printer.line(f"won        {printer.good(won) if result.won else won}")
    printer.line(f"ended      {result.ended}")


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``skillzero play`` (the Hydra overrides are the positionals)."""
    parser.add_argument(
        "overrides",
        nargs="*",
        help="Hydra overrides, e.g. env=alfworld skills=category (all together, before or "
        "after the options)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--human",
        action="store_true",
        help="type the responses (one line each; parsed like a model response unless --raw; "
        "Ctrl-D ends the episode)",
    )
    source.add_argument(
        "--script",
        metavar="FILE",
        help="take the responses from FILE, one per line (\\n in a line: a line break)",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="with --human/--script: the text is the action, sent to the env unparsed",
    )
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="a checkpoint folder or Hugging Face model folder (default: the config's model); "
        "with --human/--script only its tokenizer is used",
    )
    parser.add_argument(
        "--task", metavar="ID", help="a task id, its index in the split, or a unique part of one"
    )
    parser.add_argument("--split", help="the split to draw the task from (env.train_split)")
    parser.add_argument(
        "--seed", type=int, default=0, help="env and sampling seed; draws the task without --task"
    )
    parser.add_argument(
        "--max-steps", type=int, metavar="N", help="end the episode after N steps (env.max_steps)"
    )
    parser.add_argument(
        "--messages",
        action="store_true",
        help="show the chat messages instead of the templated prompt",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the composed config and exit"
    )


def options_from_args(args: argparse.Namespace) -> PlayOptions:
    """:class:`PlayOptions` from the parsed command line."""
    return PlayOptions(
        model=args.model,
        human=bool(args.human),
        script=args.script,
        raw=bool(args.raw),
        task=args.task,
        split=args.split,
        seed=int(args.seed),
        max_steps=args.max_steps,
        messages=bool(args.messages),
    )


def play(cfg: DictConfig, options: PlayOptions) -> int:
    """Entry point of ``skillzero play``: plays the episode; 0 once it is played,
    whether or not it was won."""
    play_episode(cfg, options)
    return 0
