"""What each env's agent has seen this episode, turned into prompts.

The prompt holds the goal, the last few observations and the actions between them, in the
paper's template (llm_policy.build_prompt).
The history of an env is cleared when its episode ends, so no prompt mixes two episodes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from llm_policy import build_prompt

if TYPE_CHECKING:
    import numpy as np
    from llm_policy import PromptTemplate


class EpisodeHistory:
    """Missions, observations and actions of the current episode of each of num_envs envs."""

    def __init__(
        self, num_envs: int, num_observations: int, template: str | PromptTemplate = "en"
    ) -> None:
        self.num_observations = num_observations
        self.template = template
        """A key of llm_policy.TEMPLATES (the prompt's wording follows the env's language), or a
        PromptTemplate."""
        self.missions = [""] * num_envs
        self.observations: list[deque[list[str]]] = [
            deque(maxlen=num_observations) for _ in range(num_envs)
        ]
        # One fewer action than observations is ever needed in a prompt.
        self.actions: list[deque[str]] = [
            deque(maxlen=max(num_observations - 1, 0)) for _ in range(num_envs)
        ]

    def start(self, env: int, mission: str, sentences: Sequence[str]) -> None:
        """A new episode begins in env with this mission and first observation."""
        self.missions[env] = mission
        self.observations[env].clear()
        self.actions[env].clear()
        self.observations[env].append(list(sentences))

    def record(self, env: int, action_name: str, sentences: Sequence[str]) -> None:
        """env took action_name and now sees sentences, within the same episode."""
        if self.num_observations > 1:
            self.actions[env].append(action_name)
        self.observations[env].append(list(sentences))

    def start_all(self, obs: dict) -> None:
        """Every env begins an episode; `obs` is a vector env's batched observation."""
        for env in range(len(self.missions)):
            self.start(env, obs["mission"][env], sentences_of(obs["text"][env]))

    def advance(
        self, obs: dict, action_names_taken: Sequence[str], done: Sequence[bool] | np.ndarray
    ) -> None:
        """After a vector-env step (SAME_STEP autoreset): an env whose episode ended starts the
        next one from its first observation in `obs`; the others record their action and what
        they now see."""
        for env in range(len(self.missions)):
            sentences = sentences_of(obs["text"][env])
            if done[env]:
                self.start(env, obs["mission"][env], sentences)
            else:
                self.record(env, action_names_taken[env], sentences)

    def prompt(self, env: int, action_names: Sequence[str]) -> str:
        return build_prompt(
            self.missions[env],
            list(self.observations[env]),
            list(self.actions[env]),
            action_names,
            num_observations=self.num_observations,
            template=self.template,
        )

    def prompts(self, action_names: Sequence[str]) -> list[str]:
        """One prompt per env, in env order."""
        return [self.prompt(env, action_names) for env in range(len(self.missions))]

    def final_prompt(
        self, env: int, action_name: str, sentences: Sequence[str], action_names: Sequence[str]
    ) -> str:
        """The prompt env would see after action_name led to sentences, without recording it
        (used to value the last observation of a truncated episode)."""
        observations = [*self.observations[env], list(sentences)][-self.num_observations :]
        actions = (
            [*self.actions[env], action_name][-(self.num_observations - 1) :]
            if self.num_observations > 1
            else []
        )
        return build_prompt(
            self.missions[env],
            observations,
            actions,
            action_names,
            num_observations=self.num_observations,
            template=self.template,
        )


def sentences_of(text: str) -> list[str]:
    """babyai-text joins an observation's sentences with newlines."""
    return [line for line in text.splitlines() if line]
