"""The generalisation table in the README: train the offline default, then run the suite on it.

    python benchmarks/generalisation.py                   # about 4 min of training + 2 min of suite
    python benchmarks/generalisation.py --frames 40960 --episodes 300 --out results/gen

The same two commands a user runs (`ppo-grounding train`, then `ppo-grounding evaluate --suite
generalisation` with the random and expert agents beside the policy), with the offline preset's
defaults and seed, so a rerun gives the same run and the same table. Success rates, not timings:
the load on the machine changes how long it takes, not what it prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import tyro
from ppo_grounding.cli import main as ppo_grounding


@dataclass
class Args:
    run_dir: str = "runs/gen-demo"
    """Where the trained run goes (must not hold a run yet)."""
    frames: int = 20_480
    """PPO frames on the offline preset's level (GoToRedBallNoDists)."""
    episodes: int = 100
    """Episodes per test and agent."""
    out: str = "docs/generalisation"
    """Directory for generalisation.md and generalisation.csv."""


def main(args: Args) -> None:
    # One torch thread: reductions then run in the same order on every machine, so the run is too.
    ppo_grounding(
        [
            "train",
            "--run.output-dir",
            args.run_dir,
            "--ppo.total-frames",
            str(args.frames),
            "--run.torch-threads",
            "1",
        ]
    )
    ppo_grounding(
        [
            "evaluate",
            "--checkpoint",
            args.run_dir,
            "--suite",
            "generalisation",
            "--episodes",
            str(args.episodes),
            "--baselines",
            "random,expert",
            "--out",
            args.out,
        ]
    )


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
