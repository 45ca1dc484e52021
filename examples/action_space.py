"""The action-space experiment: does a policy still learn when useless actions are offered too?

Trains the offline preset on GoToRedBallNoDists twice, with the 6 real actions and with
`--extra-actions N` useless phrases (sleep, dance, ...) that the env executes as a no-op, then
evaluates each with the actions it trained with on the same held-out seeds.

    python examples/action_space.py                     # 4 extra actions, the preset's budget
    python examples/action_space.py --extra-actions 10 --train.ppo.total-frames 40960

Writes runs/action-space-<time>/extra-0 and extra-N: two ordinary run directories.
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
    extra_action_phrases,
    offline_preset,
)


def default_config() -> TrainConfig:
    config = offline_preset()
    config.env.env_id = "BabyAI-Text-GoToRedBallNoDists-v0"
    config.run.output_dir = time.strftime("runs/action-space-%Y%m%d-%H%M%S")
    return config


@dataclass
class Args:
    train: TrainConfig = field(default_factory=default_config)
    """Both runs' settings (the offline preset); each run goes in a subdirectory of its output dir."""
    extra_actions: int = 4
    """Useless phrases offered in the second run (1 to 10)."""
    eval_episodes: int = 200
    """Held-out episodes per policy."""


def main(args: Args) -> None:
    if not 1 <= args.extra_actions <= 10:
        raise SystemExit("--extra-actions: choose 1 to 10 useless phrases")
    results = {}
    for extra in (0, args.extra_actions):
        config = copy.deepcopy(args.train)
        config.env.extra_actions = extra
        config.run.output_dir = f"{args.train.run.output_dir}/extra-{extra}"
        phrases = extra_action_phrases(extra)
        print(
            f"Training on {config.env.env_id} with {config.env.num_actions} actions"
            + (f" (extra: {', '.join(phrases)})" if phrases else "")
            + f" for {config.ppo.total_frames} frames"
        )
        trainer = PPOTrainer(config)
        trainer.train()
        results[extra] = evaluate(
            PolicyAgent(trainer.policy),
            config.env.env_id,
            episodes=args.eval_episodes,
            num_observations=config.env.num_observations,
            language=config.env.language,
            extra_actions=phrases,  # played with the actions it trained with
        )

    print(f"\n{'actions offered':<18}{'success':>9}{'95% CI':>15}{'mean return':>13}")
    for extra, result in results.items():
        low, high = result.confidence_interval
        name = f"6 + {extra} useless" if extra else "6 (real only)"
        print(
            f"{name:<18}{result.success_rate:>9.3f}{f'{low:.2f}-{high:.2f}':>15}"
            f"{result.mean_return:>13.3f}"
        )


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
