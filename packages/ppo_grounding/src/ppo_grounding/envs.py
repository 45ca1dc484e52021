"""Every env of the package is made here: one keyword builder (`env_kwargs`) turns our options into
babyai_text's keywords, for a single env (`make_env`: evaluation, the generalisation suite,
replays) or a run's vector env (`make_envs`: PPO, behaviour cloning, the baselines), so the two
cannot drift apart.

A run's vector env takes any BabyAI-Text ID, sync or async, with SAME_STEP autoreset, offering
env.extra_actions useless phrases after the real actions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

import gymnasium as gym
from babyai_text import EXTRA_ACTION_PHRASES  # importing babyai_text registers BabyAI-Text-*

if TYPE_CHECKING:
    from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

    from .config import TrainConfig

__all__ = ["EXTRA_ACTION_PHRASES", "env_kwargs", "extra_action_phrases", "make_env", "make_envs"]


def extra_action_phrases(n: int) -> tuple[str, ...]:
    """The first `n` of babyai_text.EXTRA_ACTION_PHRASES (0: none)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(EXTRA_ACTION_PHRASES):
        raise ValueError(
            f"{n!r} extra actions: choose an int from 0 to {len(EXTRA_ACTION_PHRASES)} "
            f"(the phrases, in order: {', '.join(EXTRA_ACTION_PHRASES)})"
        )
    return EXTRA_ACTION_PHRASES[:n]


def env_kwargs(
    *,
    language: str = "en",
    action_names: str | None = None,
    extra_actions: Sequence[str] = (),
    render_mode: str | None = None,
    symbolic: bool = False,
) -> dict:
    """babyai_text's keywords for these options; a keyword at its default is left out (the env's
    default is the same), so `env.spec.kwargs` names only what was chosen."""
    kwargs: dict = {"language": language}
    if action_names is not None:
        kwargs["action_names"] = action_names
    if extra_actions:
        kwargs["extra_actions"] = tuple(extra_actions)
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    if symbolic:
        kwargs["symbolic"] = True
    return kwargs


def make_env(
    env_id: str,
    *,
    language: str = "en",
    action_names: str | None = None,
    extra_actions: Sequence[str] = (),
    env_wrapper: Callable[[gym.Env], gym.Env] | None = None,
    render_mode: str | None = None,
) -> gym.Env:
    """`gym.make` with the keywords of an evaluation; `env_wrapper` goes on top."""
    env = gym.make(
        env_id,
        **env_kwargs(
            language=language,
            action_names=action_names,
            extra_actions=extra_actions,
            render_mode=render_mode,
        ),
    )
    return env if env_wrapper is None else env_wrapper(env)


def make_envs(
    config: TrainConfig, num_envs: int | None = None, *, symbolic: bool = False
) -> SyncVectorEnv | AsyncVectorEnv:
    """The vector env of a run. Autoreset is SAME_STEP: the step that ends an episode returns the
    first observation of the next one (the final one is in info["final_obs"][i]), so the prompt
    history can be cleared right there.

    `num_envs` is this process's share of config.env.num_envs under a launcher (None: all).
    With env.extra_actions = N, every env offers the first N of EXTRA_ACTION_PHRASES after its
    real actions (babyai_text's `extra_actions=`): they execute minigrid's no-op.

    `symbolic=True` is the symbolic baseline's env: it also returns the grid's arrays, and offers
    only the 6 real actions whatever env.extra_actions says, since that network has 6 outputs."""
    extra = () if symbolic else extra_action_phrases(config.env.extra_actions)
    envs = gym.make_vec(
        config.env.env_id,
        num_envs=config.env.num_envs if num_envs is None else num_envs,
        vectorization_mode=config.env.vectorization,
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
        **env_kwargs(language=config.env.language, extra_actions=extra, symbolic=symbolic),
    )
    # make_vec's "sync" / "async" mode without vector wrappers builds exactly this class, which
    # has the get_attr / call that the base VectorEnv lacks.
    return cast("SyncVectorEnv | AsyncVectorEnv", envs)
