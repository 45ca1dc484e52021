"""Evaluation: success rate (return > 0) with a 95% confidence interval, and mean return.

Episodes are reset with explicit seeds starting at EVAL_SEED_OFFSET. Training seeds its envs
with run.seed + env index (small numbers) and lets their RNGs run on from there, so evaluation
episodes are laid out from seeds that training never reset with.

An agent is any callable `agent(prompts, action_names) -> actions`: one prompt per env (str), the
action phrases the env offers, and back one action index per prompt (shape (N,)). `evaluate`
builds the prompts; the generalisation tests (suite.py) change only what goes into them: the
env's language and action names, a wrapper that rewrites the env's text (`env_wrapper`, see
substitutions.py) and the prompt's wording (`template`).

Under a launcher with N processes (`torchrun --nproc_per_node N ...`), process r plays the
episodes k = r, r + N, r + 2N, ... (seeds unchanged: seed_offset + k) and every process gets the
gathered result, aggregated in episode order: with an agent whose action depends only on its
prompt (greedy, a rule) it equals the one-process result. A sampling agent draws from its own
generator in each process, so its episodes differ from one process's.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import babyai_text  # also registers the BabyAI-Text-* IDs
import gymnasium as gym
import numpy as np
import torch
from llm_policy import OFFLINE_MODELS, LLMPolicy, PromptTemplate
from tqdm.auto import tqdm

from . import distributed
from .config import TrainConfig

# Made in envs.py; also importable from here, where they used to live.
from .envs import EXTRA_ACTION_PHRASES, extra_action_phrases, make_env  # noqa: F401
from .history import EpisodeHistory, sentences_of
from .reporter import stderr_is_terminal
from .sources import load_policy_for_eval, source_kind

if TYPE_CHECKING:
    from babyai_text import BabyAITextEnv

EVAL_SEED_OFFSET = 1_000_000

TextAgent = Callable[[list[str], Sequence[str]], np.ndarray]
"""An agent that acts on the prompts alone."""


class EnvAgent(Protocol):
    """An agent that also reads the envs (its `reads_env` attribute is true)."""

    def __call__(
        self, prompts: list[str], action_names: Sequence[str], *, envs: Sequence[gym.Env]
    ) -> np.ndarray: ...


Agent = TextAgent | EnvAgent
"""An agent maps prompts (one per env) and the action names to action indices, shape (N,).

An agent whose `reads_env` attribute is true (the expert bot, which plans on the level's state,
not on text) is also given `envs=`, the envs those prompts come from, in the same order.
"""


@dataclass
class EvalResult:
    episodes: int
    successes: int
    mean_return: float
    mean_length: float
    by_task: dict[str, EvalResult] = field(default_factory=dict)
    """On the Mixed levels: the same figures per task kind (`info["task"]`), else empty."""

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes

    @property
    def confidence_interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.episodes)

    def summary(self) -> str:
        low, high = self.confidence_interval
        return (
            f"success {self.success_rate:.3f} (95% CI {low:.3f}-{high:.3f}) over {self.episodes} episodes, "
            f"mean return {self.mean_return:.3f}, mean length {self.mean_length:.1f}"
        )


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (sound at 0 and 1, unlike the normal one)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


class PolicyAgent:
    """Acts with an LLMPolicy: samples from its distribution (the paper), or takes the argmax."""

    def __init__(self, policy, *, greedy: bool = False, generator: torch.Generator | None = None):
        self.policy, self.greedy, self.generator = policy, greedy, generator

    @torch.no_grad()
    def __call__(self, prompts: list[str], action_names: Sequence[str]) -> np.ndarray:
        # on the CPU: the sampling generator lives there, and so do the env's actions
        logits = self.policy(prompts, [list(action_names)] * len(prompts)).logits.cpu()
        if self.greedy:
            return logits.argmax(-1).numpy()
        probs = torch.softmax(logits.float(), -1)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1).numpy()


class ExpertAgent:
    """minigrid's BabyAIBot (`babyai_text.Expert`) on each env: it reads the level's state, never
    the prompt, so it is a reference that no word substitution can change."""

    reads_env = True

    def __init__(self) -> None:
        self.experts: dict[int, babyai_text.Expert] = {}

    def __call__(self, prompts: list[str], action_names: Sequence[str], *, envs) -> np.ndarray:
        actions = []
        for env in envs:
            key = id(env.unwrapped)
            if key not in self.experts:
                self.experts[key] = babyai_text.Expert(env)
            actions.append(self.experts[key].act())
        return np.array(actions, dtype=np.int64)


class RandomAgent:
    """Uniform over the actions; `weights` gives a blind walk with fixed action frequencies."""

    def __init__(self, seed: int = 0, weights: Sequence[float] | None = None):
        self.rng = np.random.default_rng(seed)
        self.weights = (
            None if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
        )

    def __call__(self, prompts: list[str], action_names: Sequence[str]) -> np.ndarray:
        return self.rng.choice(len(action_names), size=len(prompts), p=self.weights)


def _result(returns: Sequence[float], lengths: Sequence[int]) -> EvalResult:
    return EvalResult(
        episodes=len(returns),
        successes=sum(r > 0 for r in returns),
        mean_return=float(np.mean(returns)),
        mean_length=float(np.mean(lengths)),
    )


def evaluate(
    agent: Agent,
    env_id: str,
    *,
    episodes: int = 100,
    seed_offset: int = EVAL_SEED_OFFSET,
    num_envs: int = 16,
    num_observations: int = 3,
    language: str = "en",
    action_names: str | None = None,
    extra_actions: Sequence[str] = (),
    template: PromptTemplate | str | None = None,
    env_wrapper: Callable[[gym.Env], gym.Env] | None = None,
    progress: bool = False,
    label: str = "evaluate",
) -> EvalResult:
    """Play `episodes` episodes, seeds seed_offset .. seed_offset + episodes - 1, num_envs at a time.

    Args:
        agent: `agent(prompts, action_names) -> actions`, see `Agent`.
        env_id: a BabyAI-Text ID.
        num_observations: observations kept in each prompt.
        language: language of the env's descriptions and mission ("en", "fr").
        action_names: the env's action-name variant ("en", "fr", "synonyms"; None: `language`).
        extra_actions: useless phrases offered after the real actions, executed as a no-op
            (see `extra_action_phrases`).
        template: prompt wording, a `llm_policy.PromptTemplate` or a `TEMPLATES` key (None:
            `language`).
        env_wrapper: applied to every env after `gym.make` (e.g. `SubstituteWords`).
        progress: show a progress bar over episodes, named `label`.

    Returns:
        Success rate, mean return and length over the episodes, and per task kind on the Mixed
        levels (`EvalResult.by_task`), aggregated in episode order. Each seed lays out the same
        episode whatever the agent, so two agents evaluated with the same arguments meet the
        same episodes. Under a launcher the episodes are shared out among the processes (see the
        module docstring).
    """
    if episodes < 1:
        raise ValueError(f"episodes={episodes}: evaluate at least 1 episode.")
    processes = distributed.get()
    mine = list(range(processes.rank, episodes, processes.world_size))
    """The episodes this process plays (all of them for one process)."""
    num_envs = max(1, min(num_envs, len(mine)))
    envs = [
        make_env(
            env_id,
            language=language,
            action_names=action_names,
            extra_actions=extra_actions,
            env_wrapper=env_wrapper,
        )
        for _ in range(num_envs)
    ]
    names = list(cast("BabyAITextEnv", envs[0].unwrapped).action_names)
    history = EpisodeHistory(num_envs, num_observations, language if template is None else template)
    queue = iter(mine)
    active = [True] * num_envs
    playing = [0] * num_envs
    """The episode (k) each env plays."""
    returns, lengths = [0.0] * num_envs, [0] * num_envs
    tasks: list[str | None] = [None] * num_envs
    finished: list[tuple[int, float, int, str | None]] = []

    def start(i: int) -> None:
        k = next(queue, None)
        if k is None:
            active[i] = False
            return
        obs, info = envs[i].reset(seed=seed_offset + k)
        history.start(i, obs["mission"], sentences_of(obs["text"]))
        playing[i], returns[i], lengths[i], tasks[i] = k, 0.0, 0, info.get("task")

    for i in range(num_envs):
        start(i)
    bar = None
    if progress and processes.is_main and stderr_is_terminal():  # no redraws in logs
        bar = tqdm(total=len(mine), desc=label, unit="ep", leave=False)
    while any(active):
        live = [i for i in range(num_envs) if active[i]]
        prompts = [history.prompt(i, names) for i in live]
        if getattr(agent, "reads_env", False):
            actions = cast(EnvAgent, agent)(prompts, names, envs=[envs[i] for i in live])
        else:
            actions = cast(TextAgent, agent)(prompts, names)
        for i, action in zip(live, actions, strict=False):
            obs, reward, terminated, truncated, _ = envs[i].step(int(action))
            returns[i] += float(reward)
            lengths[i] += 1
            if terminated or truncated:
                finished.append((playing[i], returns[i], lengths[i], tasks[i]))
                if bar is not None:
                    bar.update(1)
                start(i)
            else:
                history.record(i, names[int(action)], sentences_of(obs["text"]))
    if bar is not None:
        bar.close()
    for env in envs:
        env.close()
    # Every process's episodes, in episode order: the figures do not depend on who played what.
    done = sorted(processes.gather_objects(finished))
    result = _result([r for _, r, _, _ in done], [n for _, _, n, _ in done])
    for task in sorted({t for _, _, _, t in done if t is not None}):
        of_task = [(r, n) for _, r, n, t in done if t == task]
        result.by_task[task] = _result([r for r, _ in of_task], [n for _, n in of_task])
    return result


def load_policy(source: str | os.PathLike, *, report: Callable[[str], object] | None = None):
    """(policy, TrainConfig, kind) from any model source, checked before any long work.

    `source` is a run directory (its latest checkpoint), a checkpoint directory, a policy
    directory (`LLMPolicy.save_pretrained`): kind "trained", with the run's config; or a Hugging
    Face model directory or id, or an offline model name ("offline-gpt2", "offline-t5"): kind
    "untrained", an `LLMPolicy` with fresh heads over that model (zero-shot), with the default
    TrainConfig. A path that does not exist raises FileNotFoundError naming what is accepted.
    `report`, if given, receives one line naming what was loaded (a checkpoint with its update
    and frames, or the untrained model).
    """
    text = str(source)
    path = Path(text).expanduser()
    accepted = (
        "pass a run directory (--run.output-dir of `ppo-grounding train`), one of its "
        "checkpoints/update_* directories, a saved policy directory, a Hugging Face model "
        f"directory or id, or an offline model name ({', '.join(sorted(OFFLINE_MODELS))})"
    )
    config = TrainConfig()
    if path.is_dir():
        if source_kind(path) != "other" or (path / "policy").is_dir():
            # (policy/ alone: a checkpoint missing its config; loading it names what is wrong)
            policy, config = load_policy_for_eval(path, report=report)
            return policy, config, "trained"
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} holds no model: {accepted}.")
    elif path.exists():
        raise FileNotFoundError(f"{path} is a file, not a model directory: {accepted}.")
    elif text not in OFFLINE_MODELS and (
        text.startswith((".", "/", "~"))
        or text.count("/") != 1
        or Path(text.split("/")[0]).is_dir()
    ):
        raise FileNotFoundError(f"{text} does not exist: {accepted}.")
    policy_config = dataclasses.replace(config.policy, model=text)
    try:
        policy = LLMPolicy(policy_config)
        if report is not None:
            report(f"loaded {text}, untrained (fresh heads: zero-shot)")
        return policy, config, "untrained"
    except OSError as error:
        raise FileNotFoundError(
            f"{text!r} is no local path, and loading it as a Hugging Face id failed ({error}): "
            f"{accepted}."
        ) from None
