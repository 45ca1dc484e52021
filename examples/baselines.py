"""The comparison methods on one level, one budget, the same held-out seeds, and your own agent.

Trains symbolic PPO (minigrid's 7x7x3 view + mission, a small CNN) and DRRN (Q-learning over the
action phrases) on the same TrainConfig budget, then evaluates them beside a uniformly random
agent, a hand-written agent that reads the prompt (the agent protocol: a callable from prompts
and action names to action indices) and the expert bot.

    python examples/baselines.py                                   # GoToRedBallNoDists, 20,480 frames
    python examples/baselines.py --train.env.env-id BabyAI-Text-GoToRedBall-v0

`benchmarks/baselines.py` runs every method, the LLM policy included, at equal budgets.
"""

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import tyro
from ppo_grounding import ExpertAgent, RandomAgent, TrainConfig, evaluate, offline_preset
from ppo_grounding.baselines import DRRNTrainer, SymbolicPPOTrainer


class ForwardUnlessBlocked:
    """Your own baseline: any callable (prompts, action_names) -> action indices. This one goes
    forward unless the prompt says a wall or an object is right in front, then turns left."""

    def __call__(self, prompts, action_names):
        forward, left = action_names.index("go forward"), action_names.index("turn left")
        return np.array([left if self.blocked(p) else forward for p in prompts])

    @staticmethod
    def blocked(prompt: str) -> bool:
        """Whether the last observation has a sentence "You see <something> 1 step forward"."""
        observation = prompt.split("Observation")[-1].split(":", 1)[-1]
        return any(
            s.strip().endswith(" 1 step forward") and " and " not in s
            for s in observation.split(",")
        )


def default_config() -> TrainConfig:
    config = offline_preset()
    config.env.env_id = "BabyAI-Text-GoToRedBallNoDists-v0"
    config.ppo.learning_rate = 1e-3  # the small networks learn faster than the LLM's 3e-4
    config.ppo.reward_scale = 1.0
    config.run.output_dir = time.strftime("runs/baselines-example-%Y%m%d-%H%M%S")
    return config


@dataclass
class Args:
    train: TrainConfig = field(default_factory=default_config)
    """Level, budget (ppo.total_frames) and PPO settings of both trained baselines."""
    eval_episodes: int = 200
    """Held-out episodes per agent (the same seeds for every agent)."""


def main(args: Args) -> None:
    agents = {}
    for name, make in (("symbolic PPO", SymbolicPPOTrainer), ("DRRN", DRRNTrainer)):
        config = copy.deepcopy(args.train)
        config.run.output_dir = f"{args.train.run.output_dir}/{name.split()[0].lower()}"
        print(f"Training {name} on {config.env.env_id} for {config.ppo.total_frames} frames")
        trainer = make(config)
        trainer.train()
        agents[name] = trainer.agent()
    agents["random"] = RandomAgent(seed=0)
    agents["forward unless blocked"] = ForwardUnlessBlocked()
    agents["expert"] = ExpertAgent()

    print(f"\n{'agent':<24}{'success':>9}{'95% CI':>13}{'mean return':>13}")
    for name, agent in agents.items():
        result = evaluate(
            agent,
            args.train.env.env_id,
            episodes=args.eval_episodes,
            num_observations=args.train.env.num_observations,
        )
        low, high = result.confidence_interval
        print(
            f"{name:<24}{result.success_rate:>9.3f}{f'{low:.2f}-{high:.2f}':>13}"
            f"{result.mean_return:>13.3f}"
        )


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
