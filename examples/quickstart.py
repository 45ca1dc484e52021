"""Quickstart: ground the offline model in BabyAI-Text with PPO, then compare it with a random agent
and a blind walk.

    python examples/quickstart.py                       # the offline preset, a few minutes on 2 cores
    python examples/quickstart.py --train.ppo.total-frames 60000 --train.env.env-id BabyAI-Text-GoToLocal-v0

Writes runs/quickstart-<time>/: metrics.jsonl, TensorBoard events, checkpoints, learning_curve.png.
"""

import shlex
import time
from dataclasses import dataclass, field

import tyro
from ppo_grounding import (
    PolicyAgent,
    PPOTrainer,
    RandomAgent,
    TrainConfig,
    evaluate,
    offline_preset,
)
from ppo_grounding.cli import check_out_dir
from ppo_grounding.metrics import read_metrics
from ppo_grounding.plot import plot_runs
from ppo_grounding.trainer import TrainingInterrupted


def default_config() -> TrainConfig:
    config = offline_preset()
    config.run.output_dir = time.strftime("runs/quickstart-%Y%m%d-%H%M%S")
    return config


@dataclass
class Args:
    train: TrainConfig = field(default_factory=default_config)
    """The training run (the offline preset)."""
    eval_episodes: int = 200
    """Episodes per agent in the final evaluation."""


def main(args: Args) -> None:
    config, episodes = args.train, args.eval_episodes
    try:  # before training: the curve and checkpoints must have somewhere to go
        check_out_dir(config.run.output_dir, "--train.run.output-dir")
    except ValueError as error:
        raise SystemExit(f"quickstart: {error}") from None

    print(
        f"Training {config.policy.model} on {config.env.env_id} for {config.ppo.total_frames} frames"
    )
    trainer = PPOTrainer(config)
    try:
        trainer.train()
    except TrainingInterrupted:
        resume = f"--train.run.output-dir {shlex.quote(config.run.output_dir)} --train.run.resume"
        raise SystemExit(
            f"\nquickstart: stopped. The latest checkpoint stays in {config.run.output_dir}; "
            f"continue with the same options plus: {resume}"
        ) from None

    print(f"\nEvaluating on {episodes} episodes whose seeds training never used")
    common = dict(
        episodes=episodes,
        num_observations=config.env.num_observations,
        language=config.env.language,
    )
    trained = evaluate(PolicyAgent(trainer.policy), config.env.env_id, progress=True, **common)
    random = evaluate(RandomAgent(seed=0), config.env.env_id, **common)
    # The blind walk plays the trained policy's own action frequencies (its last update's),
    # ignoring the text: what the policy beats beyond it, it owes to reading the observations.
    last = read_metrics(config.run.output_dir)[-1]
    frequencies = [last[f"charts/action_frac/{name}"] for name in trainer.action_names]
    blind = evaluate(RandomAgent(seed=0, weights=frequencies), config.env.env_id, **common)

    print(f"\n{'agent':<16}{'success':>9}{'95% CI':>15}{'mean return':>13}")
    rows = (("PPO-trained LLM", trained), ("uniform random", random), ("blind walk", blind))
    for name, result in rows:
        low, high = result.confidence_interval
        print(
            f"{name:<16}{result.success_rate:>9.3f}{f'{low:.2f}-{high:.2f}':>15}{result.mean_return:>13.3f}"
        )

    curve = plot_runs(
        [config.run.output_dir],
        f"{config.run.output_dir}/learning_curve.png",
        baselines={"uniform random": random.success_rate, "blind walk": blind.success_rate},
    )
    print(
        f"\nLearning curve: {curve}\nTensorBoard:    tensorboard --logdir {config.run.output_dir}"
    )


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
