"""What a hand-written agent reaches when it reads the same one-observation prompt as the LLM.

    python benchmarks/reactive_rules.py                                   # GoToLocal, 300 episodes
    python benchmarks/reactive_rules.py --env-id BabyAI-Text-GoToRedBallNoDists-v0

Calibrates the learning goals: the agents below see only what the policy sees with the offline
preset's prompt (the goal and the current observation), are played by ppo-grounding's `evaluate`
on its held-out seeds, and encode by hand the lookup the LLM has to learn from reward:

- direction rule: find the sentence that names the goal object ("go to the red key" -> "red key",
  the nearest if several), act on its direction words ("... left" -> turn left, "... right" -> turn
  right, anything with "forward" -> go forward); goal not in view -> turn left (look around);
- + obstacle: the same, but when going forward would bump into another object or a wall right in
  front ("You see a yellow box 1 step forward"), turn toward the goal's side instead;
- sampled: either rule, with one move in five drawn uniformly from turn left / turn right / go
  forward, as a policy that samples from a softmax does; the noise also frees it where the
  deterministic rule loops (goal straight ahead behind an obstacle, goal never in view).

Uniform random and always-"go forward" agents are printed on the same seeds for reference.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tyro
from ppo_grounding import RandomAgent, evaluate

TURN_LEFT, TURN_RIGHT, GO_FORWARD = 0, 1, 2


@dataclass
class Args:
    env_id: str = "BabyAI-Text-GoToLocal-v0"
    """A GoTo level (missions "go to the/a <color> <type>")."""
    episodes: int = 300
    """Evaluation episodes per agent (the held-out seeds `evaluate` uses)."""
    noise: float = 0.2
    """Share of the sampled agents' moves drawn at random."""


def read_prompt(prompt: str) -> tuple[str, list[str]]:
    """The goal object and the sentences of the last observation of a paper-template prompt."""
    goal = re.search(r"^Goal of the agent: go to (?:the|an?) (.+)$", prompt, re.M)
    observations = re.findall(r"^Observation \d+: (.*)$", prompt, re.M)
    if goal is None or not observations:
        raise ValueError(f"not a GoTo prompt of the paper's template: {prompt!r}")
    sentences = [s.strip() for s in re.split(r",\s*(?=You see)", observations[-1]) if s.strip()]
    return goal.group(1), [s.rstrip(",") for s in sentences]


def offsets(sentence: str) -> dict[str, int]:
    """'You see a red key 2 steps left and 1 step forward' -> {'left': 2, 'forward': 1}."""
    return {side: int(n) for n, side in re.findall(r"(\d+) steps? (left|right|forward)", sentence)}


def goal_sentence(prompt: str) -> tuple[str | None, list[str]]:
    """The nearest sentence of the last observation naming the goal object (None when it is out
    of view), and all the sentences of that observation."""
    goal, sentences = read_prompt(prompt)
    named = [s for s in sentences if f" {goal} " in f"{s} "]
    if not named:
        return None, sentences
    return min(named, key=lambda s: sum(offsets(s).values())), sentences


def direction_action(sentence: str) -> int:
    """The direction rule on one sentence: anything with "forward" -> go forward, else turn to
    the side it names."""
    where = offsets(sentence)
    if "forward" in where:
        return GO_FORWARD
    return TURN_LEFT if "left" in where else TURN_RIGHT


class DirectionRule:
    """Acts on the direction words of the goal object's sentence; optionally steps around obstacles."""

    def __init__(self, avoid_obstacles: bool, noise: float = 0.0, seed: int = 0):
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
        actions = np.array([self.act(p) for p in prompts], dtype=np.int64)
        noisy = self.rng.random(len(prompts)) < self.noise
        actions[noisy] = self.rng.integers(GO_FORWARD + 1, size=int(noisy.sum()))
        return actions


def always_forward(prompts: list[str], action_names: Sequence[str]) -> np.ndarray:
    return np.full(len(prompts), GO_FORWARD, dtype=np.int64)


def main(args: Args) -> None:
    agents = {
        "direction rule": DirectionRule(avoid_obstacles=False),
        "+ obstacle": DirectionRule(avoid_obstacles=True),
        "direction rule, sampled": DirectionRule(avoid_obstacles=False, noise=args.noise),
        "+ obstacle, sampled": DirectionRule(avoid_obstacles=True, noise=args.noise),
        "always go forward": always_forward,
        "uniform random": RandomAgent(seed=0),
    }
    print(f"{args.env_id}, one-observation prompt, {args.episodes} held-out episodes each:")
    for name, agent in agents.items():
        result = evaluate(agent, args.env_id, episodes=args.episodes, num_observations=1)
        print(f"  {name:<24} {result.summary()}")


if __name__ == "__main__":
    main(tyro.cli(Args))
