"""The `ppo-grounding` command: train, evaluate, plot.

ppo-grounding train [--preset offline|paper] [--ppo.learning-rate 1e-4 ...]
ppo-grounding evaluate --checkpoint runs/quickstart/checkpoints/update_000060 --episodes 200
ppo-grounding plot runs/quickstart-* --out curves.png
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import tyro

from .config import PRESETS, TrainConfig
from .evaluate import EVAL_SEED_OFFSET


@dataclass
class EvaluateArgs:
    checkpoint: str
    """A policy directory (LLMPolicy.save_pretrained), a checkpoint directory, or a run directory (its latest checkpoint)."""
    env_id: str | None = None
    """Environment to evaluate in (default: the one the run trained in)."""
    episodes: int = 100
    """Episodes to play."""
    seed_offset: int = EVAL_SEED_OFFSET
    """Seed of the first episode; episode k uses seed_offset + k."""
    num_envs: int = 16
    """Episodes played side by side."""
    greedy: bool = False
    """Take the most likely action instead of sampling (the paper samples)."""
    baseline: bool = True
    """Also evaluate a uniformly random agent on the same seeds."""


@dataclass
class PlotArgs:
    runs: tyro.conf.Positional[list[str]] = field(default_factory=list)
    """Run directories (each holding metrics.jsonl)."""
    out: str = "learning_curve.png"
    """PNG file to write."""


def train(argv: list[str]) -> None:
    preset = "offline"
    if "--preset" in argv:
        i = argv.index("--preset")
        if i + 1 >= len(argv) or argv[i + 1] not in PRESETS:
            raise SystemExit(f"--preset needs one of {sorted(PRESETS)}")
        preset = argv[i + 1]
        argv = argv[:i] + argv[i + 2 :]
    config = tyro.cli(
        TrainConfig,
        default=PRESETS[preset](),
        args=argv,
        prog="ppo-grounding train",
        description=f"Train with PPO (preset: {preset}; --preset offline|paper picks the defaults).",
    )
    try:
        config.validate()
    except ValueError as error:
        raise SystemExit(str(error)) from None

    from .trainer import PPOTrainer

    trainer = PPOTrainer(config)
    state = trainer.train()
    print(
        f"trained {state.update} updates, {state.frames} frames in {state.elapsed_s / 60:.1f} min; "
        f"checkpoints in {Path(config.run.output_dir) / 'checkpoints'}"
    )


def evaluate(argv: list[str]) -> None:
    args = tyro.cli(EvaluateArgs, args=argv, prog="ppo-grounding evaluate")
    from .checkpoint import load_policy_for_eval
    from .evaluate import PolicyAgent, RandomAgent
    from .evaluate import evaluate as run_evaluation

    policy, run_config = load_policy_for_eval(args.checkpoint)
    env_id = args.env_id or run_config.env.env_id
    common = dict(
        episodes=args.episodes,
        seed_offset=args.seed_offset,
        num_envs=args.num_envs,
        num_observations=run_config.env.num_observations,
        language=run_config.env.language,
    )
    result = run_evaluation(
        PolicyAgent(policy, greedy=args.greedy), env_id, progress=True, **common
    )
    print(f"{env_id}\n  policy: {result.summary()}")
    if args.baseline:
        random_result = run_evaluation(RandomAgent(seed=args.seed_offset), env_id, **common)
        print(f"  random: {random_result.summary()}")


def plot(argv: list[str]) -> None:
    args = tyro.cli(PlotArgs, args=argv, prog="ppo-grounding plot")
    if not args.runs:
        raise SystemExit(
            "ppo-grounding plot: name at least one run directory, e.g. ppo-grounding plot runs/quickstart-*"
        )
    from .plot import plot_runs

    print(f"wrote {plot_runs(args.runs, args.out)}")


COMMANDS = {"train": train, "evaluate": evaluate, "plot": plot}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip())
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main()
