"""Data-parallel throughput: frames/s of one process x 2 threads vs 2 processes x 1 thread,
replicated (DDP) and sharded (--dist.shard), with the memory each process holds.

    python benchmarks/distributed_throughput.py
    python benchmarks/distributed_throughput.py --updates 2 --num-envs 4 --num-steps 4 \\
        --minibatch-size 8          # a quick check that it runs, not a measurement

Both runs are the same `ppo-grounding train` command on the offline preset (offline-gpt2 from
scratch, 16 envs x 32 steps, minibatches of 128: the global sizes), in
BabyAI-Text-GoToLocal-v0, with the same seed:
- one process without a launcher, torch with 2 threads;
- `torchrun --standalone --nproc_per_node 2`, 1 thread each (gloo): each process steps 8 envs and
  takes 64 transitions of each minibatch, and DDP averages the gradients;
- the same launch with `--dist.shard`: the policy sharded across the processes (torch FSDP2),
  each gathering the weights it computes with and reduce-scattering the gradients.
For each run it also prints memory/weights_and_adam_gib, the weights and Adam state held by the
fullest process (its shards when sharded).
Frames/s is counted over the updates after the warm-up ones, from the run's own metrics.jsonl
(time/elapsed_s: rollout + update, checkpoints excluded). The ratio is printed. Run it alone on
the machine: with 2 cores, anything else running changes both figures.

A third run gives the ceiling of any data-parallel scheme on this machine: 2 independent
single-thread processes started together, each with one process's share (8 envs, minibatches of
64), with no communication at all; their frames/s summed is what DDP would reach if gradient
averaging and waiting for the slower process cost nothing. `--no-ceiling` skips it.
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
    ceiling: bool = True
    """Also run N independent 1-thread processes at once, each with one process's share."""
    shard: bool = True
    """Also run the launch sharded (--dist.shard)."""


def train_command(
    args: Args, output_dir: Path, threads: int, batch: int, share: int = 1
) -> list[str]:
    """The train options; `share` > 1 divides the global sizes as one of `share` processes of a
    launched run would see them (for the independent runs of the ceiling)."""
    preset = offline_preset()
    num_envs = args.num_envs or preset.env.num_envs
    minibatch = args.minibatch_size or preset.ppo.minibatch_size
    options = [
        "train",
        "--env.env-id",
        args.env_id,
        "--ppo.total-frames",
        str(batch * (args.warmup_updates + args.updates) // share),
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
        ("--env.num-envs", num_envs // share),
        ("--ppo.num-steps", args.num_steps),
        ("--ppo.minibatch-size", minibatch // share),
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


def held_mib(output_dir: Path) -> float:
    """The weights and optimiser state of the run's fullest process, MiB."""
    return read_metrics(output_dir)[-1]["memory/weights_and_adam_gib"] * 1024


def run(commands: list[list[str]], threads: int, timeout_s: float) -> None:
    """Runs the commands at the same time and waits for all of them."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    running = [
        subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    for command, process in zip(commands, running, strict=True):
        stdout, stderr = process.communicate(timeout=timeout_s)
        if process.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{stdout}\n{stderr}")


def main(args: Args) -> None:
    preset = offline_preset()
    num_envs = args.num_envs or preset.env.num_envs
    batch = num_envs * (args.num_steps or preset.ppo.num_steps)
    n = args.processes
    with tempfile.TemporaryDirectory() as tmp:
        single, parallel, sharded = Path(tmp) / "one", Path(tmp) / "many", Path(tmp) / "shard"
        cli = [sys.executable, "-m", "ppo_grounding.cli"]
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        print(f"{args.env_id}, offline preset, global batch {batch}, {args.updates} timed updates")
        run([cli + train_command(args, single, n, batch)], n, args.timeout_s)
        one = frames_per_second(single, args.warmup_updates)
        print(
            f"  1 process  x {n} threads: {one:8.1f} frames/s; {held_mib(single):.1f} MiB of weights and Adam state"
        )
        launched = launcher + ["--nproc_per_node", str(n), "-m", "ppo_grounding.cli"]
        run([launched + train_command(args, parallel, 1, batch)], 1, args.timeout_s)
        many = frames_per_second(parallel, args.warmup_updates)
        print(
            f"  {n} processes x 1 thread:  {many:8.1f} frames/s (DDP); "
            f"{held_mib(parallel):.1f} MiB per process"
        )
        print(f"  ratio: {many / one:.2f}x (goal >= 1.5x on 2 idle cores)")
        if args.shard:
            run(
                [launched + train_command(args, sharded, 1, batch) + ["--dist.shard"]],
                1,
                args.timeout_s,
            )
            shards = frames_per_second(sharded, args.warmup_updates)
            print(
                f"  {n} processes x 1 thread:  {shards:8.1f} frames/s (sharded); "
                f"{held_mib(sharded):.1f} MiB per process = "
                f"{held_mib(sharded) / held_mib(parallel):.2f} of DDP's; "
                f"{shards / many:.2f}x DDP's frames/s"
            )
        if args.ceiling:
            alone = [Path(tmp) / f"alone-{i}" for i in range(n)]
            run([cli + train_command(args, d, 1, batch, share=n) for d in alone], 1, args.timeout_s)
            ceiling = sum(frames_per_second(d, args.warmup_updates) for d in alone)
            print(
                f"  ceiling: {n} independent 1-thread processes at once, one share each, no "
                f"communication: {ceiling:8.1f} frames/s = {ceiling / one:.2f}x; DDP reaches "
                f"{many / ceiling:.0%} of it"
            )


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
