"""How much of the expert's action can be read off a one-observation prompt.

    python experiments/expert_predictability.py                      # GoToLocal, 16 envs x 400 steps
    python experiments/expert_predictability.py --env-id BabyAI-Text-GoToRedBallNoDists-v0

Lets babyai-text's expert (minigrid's BabyAIBot) play, and at every step checks whether the
goal object ("go to the red key" -> "red key") is named in the current observation. Where it is
named once, a rule on that sentence's direction words ("... left and ... forward" -> go forward,
"... left" -> turn left, "... right" -> turn right, "... forward" -> go forward: `direction_action`
of reactive_rules.py) is compared with the expert's action, against the baseline of always answering the expert's most frequent action.
This bounds what imitation from one observation can reach, and shows the lookup the policy has to
learn: find the goal object's sentence, then read its directions.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import babyai_text  # noqa: F401  (registers the BabyAI-Text-* IDs)
import gymnasium as gym
import numpy as np
import tyro
from ppo_grounding.rule_agents import direction_action


@dataclass
class Args:
    env_id: str = "BabyAI-Text-GoToLocal-v0"
    """A GoTo level (missions "go to the/a <color> <type>")."""
    num_envs: int = 16
    """Envs played at once."""
    steps: int = 400
    """Steps per env."""
    seed: int = 5
    """Seed of the first env (env i gets seed + i)."""


def main(args: Args) -> None:
    envs = gym.make_vec(
        args.env_id,
        num_envs=args.num_envs,
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
    )
    obs, _ = envs.reset(seed=args.seed)
    in_view = agree = named_once = 0
    expert_actions: Counter[int] = Counter()
    for _ in range(args.steps):
        action = np.asarray(envs.call("expert_action"), dtype=np.int64)
        for i in range(args.num_envs):
            goal = re.sub(r"^go to (the|a) ", "", obs["mission"][i])
            named = [s for s in obs["text"][i].splitlines() if f" {goal} " in f"{s} "]
            in_view += bool(named)
            if len(named) == 1:
                named_once += 1
                expert_actions[int(action[i])] += 1
                agree += direction_action(named[0]) == int(action[i])
        obs, *_ = envs.step(action)
    envs.close()
    total = args.num_envs * args.steps
    majority = max(expert_actions.values()) / named_once
    print(f"{args.env_id}: {total} expert steps")
    print(f"  goal object named in the observation: {in_view / total:.1%} of steps")
    print(f"  where named once ({named_once} steps), the expert's action is predicted by")
    print(f"    the direction-word rule:            {agree / named_once:.1%}")
    print(f"    its most frequent action (baseline): {majority:.1%}")
    print(f"    ratio rule / baseline:               {agree / named_once / majority:.2f}x")


if __name__ == "__main__":
    main(tyro.cli(Args))
