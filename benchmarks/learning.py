"""Learning benchmark: success rate against frames and minutes for the offline model, from scratch.

    python benchmarks/learning.py                                                   # GoToRedBallNoDists, 3 min
    python benchmarks/learning.py --env-id BabyAI-Text-GoToLocal-v0 --minutes 30
    python benchmarks/learning.py --env-id BabyAI-Text-GoToLocal-v0 --minutes 30 --demo-frames 10000

The first two train with PPO alone from a random initialisation; --demo-frames first imitates the
expert bot for that many steps (behaviour cloning, its time counted in the budget), then PPO.

Trains with the offline preset for a wall-clock budget on this machine, then evaluates the policy,
a uniformly random agent and a "blind walk" (random actions drawn with the trained policy's own
action frequencies, which ignores the text: the floor that proves grounding) on the same held-out
seeds. Prints success at each minute and the final table; writes the learning curve PNG.
Run it alone: other processes on the machine change frames/s and so what fits in the budget.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro
from ppo_grounding import PolicyAgent, PPOTrainer, RandomAgent, evaluate, offline_preset
from ppo_grounding.imitation import WARM_START_FILE
from ppo_grounding.metrics import read_metrics
from ppo_grounding.plot import plot_runs


@dataclass
class Args:
    env_id: str = "BabyAI-Text-GoToRedBallNoDists-v0"
    """Level to learn."""
    minutes: float = 3.0
    """Wall-clock training budget."""
    episodes: int = 300
    """Evaluation episodes per agent."""
    seed: int = 1
    """Run seed."""
    num_observations: int | None = None
    """Observations in the prompt (default: the offline preset's)."""
    learning_rate: float | None = None
    """Learning rate (default: the offline preset's)."""
    gae_lambda: float | None = None
    """GAE lambda (default: the offline preset's)."""
    model: str | None = None
    """Model (default: the offline preset's)."""
    normalization: str | None = None
    """Score normalisation (default: the offline preset's)."""
    clip_vloss: bool | None = None
    """Clip the value loss (default: the offline preset's)."""
    demo_frames: int = 0
    """Expert steps for a behaviour-cloning warm start before PPO (0: PPO alone, from scratch)."""
    warm_start_epochs: int = 4
    """Behaviour-cloning epochs over the demonstrations (with --demo-frames)."""
    png: str | None = None
    """Where to write the curve (default: <run dir>/learning_curve.png)."""


PRESET_OVERRIDES = {
    "num_observations": ("env", "num_observations"),
    "learning_rate": ("ppo", "learning_rate"),
    "gae_lambda": ("ppo", "gae_lambda"),
    "model": ("policy", "model"),
    "normalization": ("policy", "normalization"),
    "clip_vloss": ("ppo", "clip_vloss"),
}
"""Args fields that replace the offline preset's value when given: field -> (section, name)."""


def main(args: Args) -> None:
    config = offline_preset()
    config.env.env_id = args.env_id
    config.ppo.total_frames = 10**9
    config.run.max_minutes = args.minutes
    config.run.seed = args.seed
    config.run.checkpoint_every = 0
    for name, (section, field) in PRESET_OVERRIDES.items():
        value = getattr(args, name)
        if value is not None:
            setattr(getattr(config, section), field, value)
    config.warm_start.demo_frames = args.demo_frames
    config.warm_start.epochs = args.warm_start_epochs
    level = args.env_id.removeprefix("BabyAI-Text-").removesuffix("-v0")
    config.run.output_dir = time.strftime(f"runs/learning-{level}-%Y%m%d-%H%M%S")

    print(
        f"torch threads: {torch.get_num_threads()}; config:\n{json.dumps(config.to_dict(), indent=1)}"
    )
    trainer = PPOTrainer(config)
    trainer.train()

    rows = read_metrics(config.run.output_dir)
    print(f"\n{'minute':>6}{'frames':>9}{'success':>9}{'fps':>7}")
    next_minute = 0.5
    for row in rows:
        if row["time/elapsed_s"] / 60 >= next_minute or row is rows[-1]:
            success = row["charts/success_rate"]
            success = "-" if success is None else f"{success:.2f}"
            print(
                f"{row['time/elapsed_s'] / 60:>6.1f}{int(row['charts/frames']):>9}"
                f"{success:>9}{row['charts/SPS']:>7.0f}"
            )
            next_minute = row["time/elapsed_s"] / 60 + 0.5
    last = rows[-1]
    names = trainer.action_names
    frequencies = [last[f"charts/action_frac/{name}"] for name in names]

    common = dict(episodes=args.episodes, num_observations=config.env.num_observations)
    results = {
        "trained (sampled)": evaluate(PolicyAgent(trainer.policy), args.env_id, **common),
        "uniform random": evaluate(RandomAgent(seed=0), args.env_id, **common),
        "blind walk": evaluate(RandomAgent(seed=0, weights=frequencies), args.env_id, **common),
    }
    print(
        f"\n{args.env_id}: {last['charts/frames']:.0f} frames in {last['time/elapsed_s'] / 60:.1f} min, "
        f"{last['charts/frames'] / last['time/elapsed_s']:.0f} frames/s"
    )
    if trainer.state.demo_frames:
        warm = json.loads((Path(config.run.output_dir) / WARM_START_FILE).read_text())
        epoch = warm["epochs"][-1]
        print(
            f"warm start: {warm['demo_frames']} expert steps, {len(warm['epochs'])} epochs of "
            f"behaviour cloning, imitation accuracy {epoch['warm_start/accuracy']:.3f}, "
            f"{epoch['time/elapsed_s'] / 60:.1f} min (included in the minutes above; "
            "the frames above are PPO's)"
        )
    print(
        "blind walk action frequencies: "
        + ", ".join(f"{n} {f:.2f}" for n, f in zip(names, frequencies, strict=False))
    )
    for name, result in results.items():
        print(f"  {name:<18} {result.summary()}")
    png = args.png or str(Path(config.run.output_dir) / "learning_curve.png")
    plot_runs(
        [config.run.output_dir],
        png,
        baselines={
            "uniform random": results["uniform random"].success_rate,
            "blind walk": results["blind walk"].success_rate,
        },
    )
    print(f"curve: {png}")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
