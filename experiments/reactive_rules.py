"""What a hand-written agent reaches when it reads the same one-observation prompt as the LLM.

    python experiments/reactive_rules.py                                   # GoToLocal, 300 episodes
    python experiments/reactive_rules.py --env-id BabyAI-Text-GoToRedBallNoDists-v0

Calibrates the learning goals: the agents below see only what the policy sees with the offline
preset's prompt (the goal and the current observation), are played by ppo-grounding's `evaluate`
on its held-out seeds, and encode by hand the lookup the LLM has to learn from reward (`ppo_grounding.rule_agents.DirectionRuleAgent`):

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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tyro
from ppo_grounding import RandomAgent, evaluate
from ppo_grounding.rule_agents import GO_FORWARD, DirectionRuleAgent


@dataclass
class Args:
    env_id: str = "BabyAI-Text-GoToLocal-v0"
    """A GoTo level (missions "go to the/a <color> <type>")."""
    episodes: int = 300
    """Evaluation episodes per agent (the held-out seeds `evaluate` uses)."""
    noise: float = 0.2
    """Share of the sampled agents' moves drawn at random."""


def always_forward(prompts: list[str], action_names: Sequence[str]) -> np.ndarray:
    return np.full(len(prompts), GO_FORWARD, dtype=np.int64)


def main(args: Args) -> None:
    agents = {
        "direction rule": DirectionRuleAgent(avoid_obstacles=False),
        "+ obstacle": DirectionRuleAgent(avoid_obstacles=True),
        "direction rule, sampled": DirectionRuleAgent(avoid_obstacles=False, noise=args.noise),
        "+ obstacle, sampled": DirectionRuleAgent(avoid_obstacles=True, noise=args.noise),
        "always go forward": always_forward,
        "uniform random": RandomAgent(seed=0),
    }
    print(f"{args.env_id}, one-observation prompt, {args.episodes} held-out episodes each:")
    for name, agent in agents.items():
        result = evaluate(agent, args.env_id, episodes=args.episodes, num_observations=1)
        print(f"  {name:<24} {result.summary()}")


if __name__ == "__main__":
    main(tyro.cli(Args))
