"""Behaviour cloning first, then PPO from the cloned policy, as a new run of its own.

Clones the expert bot (`ppo-grounding clone`), then starts a PPO run from the clone's weights
with fresh counters and optimiser (`ppo-grounding train --run.init-from`), and evaluates both on
the same held-out seeds.

    python examples/clone_then_train.py                                     # GoToRedBallNoDists
    python examples/clone_then_train.py --demo-frames 20000 --train.env.env-id BabyAI-Text-GoToLocal-v0

The same from the command line:

    ppo-grounding clone --warm-start.demo-frames 5000 --run.output-dir runs/cloned
    ppo-grounding train --run.init-from runs/cloned --run.output-dir runs/cloned-ppo

Writes runs/clone-then-train-<time>/clone (the cloning run) and ppo (the PPO run).
"""

import copy
import time
from dataclasses import dataclass, field

import tyro
from ppo_grounding import (
    PolicyAgent,
    PPOTrainer,
    TrainConfig,
    evaluate,
    offline_preset,
)
from ppo_grounding.baselines import clone_expert
from ppo_grounding.sources import load_policy_for_eval


def default_config() -> TrainConfig:
    config = offline_preset()
    config.run.output_dir = time.strftime("runs/clone-then-train-%Y%m%d-%H%M%S")
    return config


@dataclass
class Args:
    train: TrainConfig = field(default_factory=default_config)
    """The PPO run's settings (the offline preset); the clone uses the same env and policy."""
    demo_frames: int = 5000
    """Expert steps to clone."""
    clone_epochs: int = 4
    """Passes of behaviour cloning over them."""
    eval_episodes: int = 200
    """Held-out episodes per policy."""


def main(args: Args) -> None:
    base = args.train.run.output_dir
    print(f"Cloning the expert on {args.demo_frames} steps of {args.train.env.env_id}")
    cloned = clone_expert(
        args.train, args.demo_frames, args.clone_epochs, output_dir=f"{base}/clone"
    )

    config = copy.deepcopy(args.train)
    config.warm_start.demo_frames = 0  # the weights come from the clone
    config.run.output_dir = f"{base}/ppo"
    config.run.init_from = f"{base}/clone"  # a run directory: its latest checkpoint
    print(f"PPO for {config.ppo.total_frames} frames from {cloned}")
    trainer = PPOTrainer(config)  # loads the clone's weights (run.init_from)
    trainer.train()

    common = dict(
        episodes=args.eval_episodes,
        num_observations=config.env.num_observations,
        language=config.env.language,
    )
    clone_policy, _ = load_policy_for_eval(cloned)
    print(f"\n{config.env.env_id}, {args.eval_episodes} held-out episodes per policy")
    for name, policy in (("cloned", clone_policy), ("cloned + PPO", trainer.policy)):
        result = evaluate(PolicyAgent(policy), config.env.env_id, **common)
        print(f"  {name:<13} {result.summary()}")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
