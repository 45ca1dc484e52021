"""Evaluate a trained policy against a uniformly random agent on the same held-out seeds.

python examples/evaluate.py runs/quickstart-20261125-150000 --episodes 500
python examples/evaluate.py runs/my-run --env-id BabyAI-Text-MixedTestLocal-v0   # generalisation
"""

from dataclasses import dataclass

import tyro
from ppo_grounding import PolicyAgent, RandomAgent, evaluate
from ppo_grounding.sources import load_policy_for_eval


@dataclass
class Args:
    run: tyro.conf.Positional[str]
    """A run directory, one of its checkpoints, or a saved policy directory."""
    env_id: str | None = None
    """Environment (default: the one the run trained in)."""
    episodes: int = 200
    """Episodes per agent."""
    greedy: bool = False
    """Take the most likely action instead of sampling from the policy."""


def main(args: Args) -> None:
    policy, config = load_policy_for_eval(args.run, report=print)  # which checkpoint it read
    env_id = args.env_id or config.env.env_id
    common = dict(
        episodes=args.episodes,
        num_observations=config.env.num_observations,
        language=config.env.language,
    )
    agents = {
        "trained policy": PolicyAgent(policy, greedy=args.greedy),
        "uniform random": RandomAgent(seed=0),
    }
    print(f"{env_id}, {args.episodes} episodes per agent, seeds disjoint from training")
    for name, agent in agents.items():
        print(f"  {name:<15} {evaluate(agent, env_id, **common).summary()}")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
