"""Quickstart: ground the offline model in BabyAI-Text with PPO, then compare it with a random agent.

    python examples/quickstart.py                       # the offline preset, a few minutes on 2 cores
    python examples/quickstart.py --ppo.total-frames 60000 --env.env-id BabyAI-Text-GoToLocal-v0

Writes runs/quickstart-<time>/: metrics.jsonl, TensorBoard events, checkpoints, learning_curve.png.
"""

import time

import tyro

from ppo_grounding import PPOTrainer, PolicyAgent, RandomAgent, TrainConfig, evaluate, offline_preset
from ppo_grounding.plot import plot_runs

EVAL_EPISODES = 200


def main() -> None:
    default = offline_preset()
    default.run.output_dir = time.strftime("runs/quickstart-%Y%m%d-%H%M%S")
    config = tyro.cli(TrainConfig, default=default, description=__doc__)

    print(f"Training {config.policy.model} on {config.env.env_id} for {config.ppo.total_frames} frames")
    trainer = PPOTrainer(config)
    trainer.train()

    print(f"\nEvaluating on {EVAL_EPISODES} episodes whose seeds training never used")
    common = dict(episodes=EVAL_EPISODES, num_observations=config.env.num_observations, language=config.env.language)
    trained = evaluate(PolicyAgent(trainer.policy), config.env.env_id, progress=True, **common)
    random = evaluate(RandomAgent(seed=0), config.env.env_id, **common)

    print(f"\n{'agent':<16}{'success':>9}{'95% CI':>15}{'mean return':>13}")
    for name, result in (("PPO-trained LLM", trained), ("uniform random", random)):
        low, high = result.confidence_interval
        print(f"{name:<16}{result.success_rate:>9.3f}{f'{low:.2f}-{high:.2f}':>15}{result.mean_return:>13.3f}")

    curve = plot_runs([config.run.output_dir], f"{config.run.output_dir}/learning_curve.png",
                      baselines={"uniform random": random.success_rate})
    print(f"\nLearning curve: {curve}\nTensorBoard:    tensorboard --logdir {config.run.output_dir}")


if __name__ == "__main__":
    main()
