"""Hand-written agents that read the same prompt as the LLM: references for what a prompt allows.

They follow `evaluate`'s agent protocol (prompts, action names -> action indices), so they are
played on the same held-out seeds as a trained policy. `DirectionRuleAgent` encodes by hand the
lookup a GoTo policy has to learn from reward: find the sentence of the last observation that
names the goal object and act on its direction words. The prompt readers below are the pieces
it is built from; the research scripts in `experiments/` use them to sort steps by where the goal
is. They read the English prompt template of `llm_policy.build_prompt` ("Goal of the agent: go to
the red key", "Observation k: You see ..., You see ...,").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = [
    "GO_FORWARD",
    "TURN_LEFT",
    "TURN_RIGHT",
    "DirectionRuleAgent",
    "direction_action",
    "goal_sentence",
    "offsets",
    "only_goal_sentence",
    "read_prompt",
]

TURN_LEFT, TURN_RIGHT, GO_FORWARD = 0, 1, 2
"""The indices of minigrid's navigation actions (the env's action i is minigrid action i)."""

_GOAL = re.compile(r"^Goal of the agent: go to (?:the|an?) (.+)$", re.M)
_OBSERVATION = re.compile(r"^Observation \d+: (.*)$", re.M)
_OBSERVATION_LINE = re.compile(r"^(Observation \d+: ).*$", re.M)
_OFFSET = re.compile(r"(\d+) steps? (left|right|forward)")


def read_prompt(prompt: str) -> tuple[str, list[str]]:
    """(goal object, sentences of the last observation) of an English GoTo prompt, e.g.
    ("red key", ["You see a wall 1 step left", "You see a red key 2 steps right"])."""
    goal = _GOAL.search(prompt)
    observations = _OBSERVATION.findall(prompt)
    if goal is None or not observations:
        raise ValueError(
            f"not a GoTo prompt of the English template (needs 'Goal of the agent: go to ...' "
            f"and an 'Observation k:' line): {prompt!r}"
        )
    sentences = [s.strip() for s in re.split(r",\s*(?=You see)", observations[-1]) if s.strip()]
    return goal.group(1), [s.rstrip(",") for s in sentences]


def offsets(sentence: str) -> dict[str, int]:
    """'You see a red key 2 steps left and 1 step forward' -> {'left': 2, 'forward': 1}."""
    return {side: int(n) for n, side in _OFFSET.findall(sentence)}


def goal_sentence(prompt: str) -> tuple[str | None, list[str]]:
    """The nearest sentence of the last observation that names the goal object (None when it is
    out of view), and all the sentences of that observation."""
    goal, sentences = read_prompt(prompt)
    named = [s for s in sentences if f" {goal} " in f"{s} "]
    if not named:
        return None, sentences
    return min(named, key=lambda s: sum(offsets(s).values())), sentences


def direction_action(sentence: str) -> int:
    """The direction rule on one sentence: anything "forward" -> go forward, else turn to the
    side it names."""
    where = offsets(sentence)
    if "forward" in where:
        return GO_FORWARD
    return TURN_LEFT if "left" in where else TURN_RIGHT


def only_goal_sentence(prompt: str) -> str:
    """The prompt with its last observation cut down to the goal object's sentence (empty when
    the goal is out of view); everything else unchanged."""
    target, _ = goal_sentence(prompt)
    kept = f"{target}," if target else ""
    last = list(_OBSERVATION_LINE.finditer(prompt))[-1]
    return prompt[: last.start()] + last.group(1) + kept + prompt[last.end() :]


class DirectionRuleAgent:
    """Acts on the direction words of the goal object's sentence; turns left while the goal is
    out of view. With `avoid_obstacles`, steps around an object or wall right in front instead
    of bumping into it; with `noise`, that share of moves is drawn uniformly from turn left /
    turn right / go forward, as a policy sampling from a softmax does."""

    def __init__(self, avoid_obstacles: bool = False, noise: float = 0.0, seed: int = 0):
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise={noise}: give a share of moves in [0, 1].")
        self.avoid_obstacles, self.noise = avoid_obstacles, noise
        self.rng = np.random.default_rng(seed)

    def act(self, prompt: str) -> int:
        target, sentences = goal_sentence(prompt)
        if target is None:
            return TURN_LEFT
        action = direction_action(target)
        blocked = any(s != target and offsets(s) == {"forward": 1} for s in sentences)
        if self.avoid_obstacles and action == GO_FORWARD and blocked:
            return TURN_RIGHT if "right" in offsets(target) else TURN_LEFT
        return action

    def __call__(self, prompts: list[str], action_names: Sequence[str]) -> np.ndarray:
        actions = np.array([self.act(p) for p in prompts], dtype=np.int64)  # (N,)
        noisy = self.rng.random(len(prompts)) < self.noise
        actions[noisy] = self.rng.integers(GO_FORWARD + 1, size=int(noisy.sum()))
        return actions
