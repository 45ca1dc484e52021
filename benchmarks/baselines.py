"""Baselines benchmark: every method on the same level, the same budget and the same held-out seeds.

    python benchmarks/baselines.py --env-id BabyAI-Text-GoToRedBall-v0 --minutes 30
    python benchmarks/baselines.py --env-id BabyAI-Text-GoToRedBallNoDists-v0 --frames 40960
    python benchmarks/baselines.py --frames 2048 --episodes 20 --methods glam symbolic drrn random

Trains, one after the other, each of

    glam      the LLM policy scoring the action phrases (the offline preset), PPO
    npae      the same model with an action head instead of scoring (head="action_head"), PPO
    symbolic  PPO on minigrid's symbolic view (baselines/symbolic.py), the same PPO settings
              except --symbolic-learning-rate and --symbolic-reward-scale
    drrn      Q-learning over the text actions on the same prompts (baselines/drrn.py)
    cloning   behaviour cloning of the expert (baselines/cloning.py) on --demo-frames expert
              steps (default: the frame budget), no PPO

on the budget `--frames` (environment steps, summed over envs) and/or `--minutes` (wall clock,
each method its own), then evaluates each, and the untrained references

    random    uniformly random actions
    blind     a blind walk: random actions with the trained glam policy's action frequencies
              (needs glam); the floor that says whether a policy reads the text
    expert    the expert bot (minigrid's BabyAIBot), the ceiling

on `--episodes` held-out seeds (1,000,000 + k, the same for every method), with the success rate's
95% Wilson interval. Prints one table and writes it to <output dir>/baselines.json. The goal for
GoToRedBall (the red ball among distractors) is that glam beats the blind walk with
non-overlapping intervals; the last line says whether it does.

Run it alone: other processes on the machine change frames/s, and so what fits in a time budget.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import tyro
from ppo_grounding import (
    ExpertAgent,
    PolicyAgent,
    PPOTrainer,
    RandomAgent,
    TrainConfig,
    evaluate,
    load_policy,
    offline_preset,
)
from ppo_grounding.baselines import (
    DRRNConfig,
    DRRNTrainer,
    SymbolicPPOTrainer,
    clone_expert,
)
from ppo_grounding.metrics import read_metrics

Method = Literal["glam", "npae", "symbolic", "drrn", "cloning", "random", "blind", "expert"]
ALL_METHODS: tuple[Method, ...] = (
    "glam",
    "npae",
    "symbolic",
    "drrn",
    "cloning",
    "random",
    "blind",
    "expert",
)


@dataclass
class Args:
    env_id: str = "BabyAI-Text-GoToRedBall-v0"
    """Level to learn and evaluate."""
    frames: int | None = None
    """Frame budget of each trained method (environment steps summed over envs)."""
    minutes: float | None = None
    """Wall-clock budget of each trained method (with --frames: whichever ends first)."""
    episodes: int = 300
    """Held-out evaluation episodes per method."""
    methods: tuple[Method, ...] = ALL_METHODS
    """Methods to run, in this order."""
    seed: int = 1
    """Run seed of every trained method."""
    demo_frames: int | None = None
    """Expert steps that cloning imitates (default: --frames, else 20000)."""
    cloning_epochs: int = 4
    """Behaviour-cloning passes over the demonstrations."""
    symbolic_learning_rate: float = 1e-3
    """Learning rate of symbolic PPO (its small network learns faster than the LLM's 3e-4)."""
    symbolic_reward_scale: float = 1.0
    """Reward scale of symbolic PPO (x20 with the value clip of 0.2 slows its critic)."""
    drrn_exploration_frames: int = 20_000
    """DRRN's epsilon decays over this many frames when only --minutes is given (with --frames:
    over half the budget)."""
    output_dir: str | None = None
    """Where the runs go (default: runs/baselines-<level>-<time>)."""
    torch_threads: int | None = None
    """torch.set_num_threads (None: torch's default)."""


def base_config(args: Args, output_dir: Path, name: str) -> TrainConfig:
    config = offline_preset()
    config.env.env_id = args.env_id
    config.ppo.total_frames = args.frames if args.frames is not None else 10**9
    config.run.max_minutes = args.minutes
    config.run.seed = args.seed
    config.run.checkpoint_every = 0
    config.run.torch_threads = args.torch_threads
    config.run.output_dir = str(output_dir / name)
    return config


def main(args: Args) -> None:
    if args.frames is None and args.minutes is None:
        raise SystemExit("give a budget: --frames N and/or --minutes M")
    level = args.env_id.removeprefix("BabyAI-Text-").removesuffix("-v0")
    output_dir = Path(args.output_dir or time.strftime(f"runs/baselines-{level}-%Y%m%d-%H%M%S"))
    output_dir.mkdir(parents=True, exist_ok=True)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    print(f"torch threads: {torch.get_num_threads()}; runs in {output_dir}")
    num_observations = offline_preset().env.num_observations
    rows: dict[str, dict] = {}
    frequencies = None

    def record(name: str, agent, frames: float | None, seconds: float | None, note: str = ""):
        result = evaluate(
            agent, args.env_id, episodes=args.episodes, num_observations=num_observations
        )
        low, high = result.confidence_interval
        rows[name] = {
            "success": result.success_rate,
            "ci_low": low,
            "ci_high": high,
            "mean_return": result.mean_return,
            "frames": frames,
            "minutes": None if seconds is None else seconds / 60,
            "note": note,
        }
        print(f"{name}: {result.summary()} {note}", flush=True)

    def ppo_run(name: str, head: str) -> None:
        nonlocal frequencies
        config = base_config(args, output_dir, name)
        config.policy.head = head
        trainer = PPOTrainer(config)
        state = trainer.train()
        if name == "glam":
            last = read_metrics(config.run.output_dir)[-1]
            frequencies = [last[f"charts/action_frac/{a}"] for a in trainer.action_names]
        record(name, PolicyAgent(trainer.policy), state.frames, state.elapsed_s)

    for method in args.methods:
        print(f"\n== {method}", flush=True)
        if method == "glam":
            ppo_run("glam", "score")
        elif method == "npae":
            ppo_run("npae", "action_head")
        elif method == "symbolic":
            config = base_config(args, output_dir, "symbolic")
            config.ppo.learning_rate = args.symbolic_learning_rate
            config.ppo.reward_scale = args.symbolic_reward_scale
            trainer = SymbolicPPOTrainer(config)
            trainer.train()
            trainer.policy.save(output_dir / "symbolic")
            record("symbolic", trainer.agent(), trainer.frames, trainer.elapsed_s)
        elif method == "drrn":
            config = base_config(args, output_dir, "drrn")
            drrn = DRRNConfig()
            if args.frames is None:
                drrn.exploration_frames = args.drrn_exploration_frames
            trainer = DRRNTrainer(config, drrn)
            trainer.train()
            trainer.policy.save(output_dir / "drrn")
            record("drrn", trainer.agent(), trainer.frames, trainer.elapsed_s)
        elif method == "cloning":
            config = base_config(args, output_dir, "cloning")
            demo_frames = args.demo_frames or args.frames or 20_000
            start = time.perf_counter()
            checkpoint = clone_expert(
                copy.deepcopy(config), demo_frames=demo_frames, epochs=args.cloning_epochs
            )
            seconds = time.perf_counter() - start
            policy, _, _ = load_policy(checkpoint.parent.parent)
            record(
                "cloning",
                PolicyAgent(policy),
                demo_frames,
                seconds,
                f"({demo_frames} expert steps, {args.cloning_epochs} epochs)",
            )
        elif method == "random":
            record("random", RandomAgent(seed=0), None, None)
        elif method == "blind":
            if frequencies is None:
                print("blind: skipped (it takes glam's action frequencies: run glam before it)")
                continue
            note = "(frequencies " + ", ".join(f"{f:.2f}" for f in frequencies) + ")"
            record("blind", RandomAgent(seed=0, weights=frequencies), None, None, note)
        elif method == "expert":
            record("expert", ExpertAgent(), None, None)

    budget = ", ".join(
        b
        for b in (
            f"{args.frames} frames" if args.frames is not None else "",
            f"{args.minutes} min" if args.minutes is not None else "",
        )
        if b
    )
    print(f"\n{args.env_id}, budget {budget} per method, {args.episodes} held-out episodes")
    print(f"{'method':<10}{'success':>9}{'95% CI':>15}{'return':>8}{'frames':>10}{'minutes':>9}")
    for name, row in rows.items():
        frames = "-" if row["frames"] is None else f"{row['frames']:.0f}"
        minutes = "-" if row["minutes"] is None else f"{row['minutes']:.1f}"
        print(
            f"{name:<10}{row['success']:>9.3f}{row['ci_low']:>8.3f}-{row['ci_high']:.3f}"
            f"{row['mean_return']:>8.3f}{frames:>10}{minutes:>9}"
        )
    if "glam" in rows and "blind" in rows:
        glam, blind = rows["glam"], rows["blind"]
        if glam["ci_low"] > blind["ci_high"]:
            verdict = "glam beats the blind walk (intervals do not overlap): goal met"
        else:
            verdict = (
                "glam does NOT beat the blind walk with non-overlapping intervals: goal not met"
            )
        print(verdict)
    summary = {"args": vars(args), "rows": rows}
    (output_dir / "baselines.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"table: {output_dir / 'baselines.json'}")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
