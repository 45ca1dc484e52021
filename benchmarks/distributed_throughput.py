"""Data-parallel throughput: frames/s of one process x 2 threads vs 2 processes x 1 thread.

    python benchmarks/distributed_throughput.py
    python benchmarks/distributed_throughput.py --updates 2 --num-envs 4 --num-steps 4 \\
        --minibatch-size 8          # a quick check that it runs, not a measurement

Both runs are the same `ppo-grounding train` command on the offline preset (offline-gpt2 from
scratch, 16 envs x 32 steps, minibatches of 128: the global sizes), in
BabyAI-Text-GoToLocal-v0, with the same seed:
- one process without a launcher, torch with 2 threads;
- `torchrun --standalone --nproc_per_node 2`, 1 thread each (gloo): each process steps 8 envs and
  takes 64 transitions of each minibatch, and DDP averages the gradients.
Frames/s is counted over the updates after the warm-up ones, from the run's own metrics.jsonl
(time/elapsed_s: rollout + update, checkpoints excluded). The ratio is printed. Run it alone on
the machine: with 2 cores, anything else running changes both figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tyro
from ppo_grounding.config import offline_preset
from ppo_grounding.metrics import read_metrics


@dataclass
class Args:
    env_id: str = "BabyAI-Text-GoToLocal-v0"
    """Environment."""
    warmup_updates: int = 1
    """Untimed updates first (model loading, first allocations)."""
    updates: int = 3
    """Timed updates per run."""
    num_envs: int | None = None
    """Global envs (default: the offline preset's 16)."""
    num_steps: int | None = None
    """Steps per env per rollout (default: the preset's 32)."""
    minibatch_size: int | None = None
    """Global minibatch (default: the preset's 128)."""
    processes: int = 2
    """Processes of the data-parallel run (1 thread each); the single run gets as many threads."""
    timeout_s: float = 3600
    """Give up on a run after this long."""


def train_command(args: Args, output_dir: Path, threads: int, batch: int) -> list[str]:
    options = [
        "train",
        "--env.env-id",
        args.env_id,
        "--ppo.total-frames",
        str(batch * (args.warmup_updates + args.updates)),
        "--run.output-dir",
        str(output_dir),
        "--run.torch-threads",
        str(threads),
        "--run.checkpoint-every",
        "0",
        "--run.no-progress",
        "--run.no-tensorboard",
    ]
    for flag, value in (
        ("--env.num-envs", args.num_envs),
        ("--ppo.num-steps", args.num_steps),
        ("--ppo.minibatch-size", args.minibatch_size),
    ):
        if value is not None:
            options += [flag, str(value)]
    return options


def frames_per_second(output_dir: Path, warmup_updates: int) -> float:
    rows = read_metrics(output_dir)
    start = (
        rows[warmup_updates - 1] if warmup_updates else {"charts/frames": 0, "time/elapsed_s": 0}
    )
    end = rows[-1]
    return (end["charts/frames"] - start["charts/frames"]) / (
        end["time/elapsed_s"] - start["time/elapsed_s"]
    )


def run(command: list[str], threads: int, timeout_s: float) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")


def main(args: Args) -> None:
    preset = offline_preset()
    num_envs = args.num_envs or preset.env.num_envs
    batch = num_envs * (args.num_steps or preset.ppo.num_steps)
    n = args.processes
    with tempfile.TemporaryDirectory() as tmp:
        single, parallel = Path(tmp) / "one", Path(tmp) / "many"
        cli = [sys.executable, "-m", "ppo_grounding.cli"]
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        print(f"{args.env_id}, offline preset, global batch {batch}, {args.updates} timed updates")
        run(cli + train_command(args, single, n, batch), n, args.timeout_s)
        one = frames_per_second(single, args.warmup_updates)
        print(f"  1 process  x {n} threads: {one:8.1f} frames/s")
        run(
            launcher
            + ["--nproc_per_node", str(n), "-m", "ppo_grounding.cli"]
            + train_command(args, parallel, 1, batch),
            1,
            args.timeout_s,
        )
        many = frames_per_second(parallel, args.warmup_updates)
        print(f"  {n} processes x 1 thread:  {many:8.1f} frames/s")
        print(f"  ratio: {many / one:.2f}x (goal >= 1.5x on 2 idle cores)")


if __name__ == "__main__":
    main(tyro.cli(Args))
