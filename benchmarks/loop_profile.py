"""The PPO loop of the offline default: where its time goes, how close it runs to the machine's
matmul limit, and how much faster it is than a baseline commit.

    python benchmarks/loop_profile.py                    # 1 and 2 threads, against e4f12c9
    python benchmarks/loop_profile.py --threads 1 --rounds 3 --baseline HEAD~1

The setting: offline-gpt2 trained from scratch (the offline preset's PPO: 16 envs x 32 steps,
4 epochs of 128-frame minibatches, 1 observation per prompt) on BabyAI-Text-GoToRedBall-v0.
For each thread count it prints

- the breakdown: seconds per update in each part of the loop (env stepping, describing the view,
  prompt building, tokenising, padding, the rollout's forwards, the update's forwards and
  backwards, the optimiser, GAE, logging), each part's own time (time spent in another listed
  part inside it counts there), over `--updates` updates of `PPOTrainer.train`;
- the model FLOPs per frame (torch's FlopCounterMode over one rollout and one update: matmuls and
  attention, forward and backward, as executed) and the FLOP rate the loop achieves, as a
  fraction of the fp32 matmul throughput of this machine measured in the same run with the same
  threads (the best of a large square matmul and the model's own shapes): 1.0 is the limit;
- frames/s of this tree and of the baseline commit (`git archive` into a temporary directory,
  same virtual environment), each in a fresh process, alternating, `--rounds` times; the medians
  and their ratio.

Run it alone: on 2 cores anything else running skews the timings several-fold.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import tyro

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("babyai_text", "llm_policy", "ppo_grounding")
ENV_ID = "BabyAI-Text-GoToRedBall-v0"


@dataclass
class Args:
    baseline: str = "e4f12c9"
    """Commit (or any git revision) to compare against."""
    threads: tuple[int, ...] = (1, 2)
    """torch thread counts, each measured on its own."""
    updates: int = 3
    """Timed updates per measurement (after one untimed update)."""
    rounds: int = 2
    """Alternating baseline/this-tree measurements per thread count."""
    seed: int = 1
    """run.seed of every measurement."""
    worker: str | None = None
    """Internal: the source tree a worker process measures (set by the main process)."""
    profile: bool = False
    """Internal: the worker also profiles the loop (this tree only)."""


# --------------------------------------------------------------------------------- the worker


def import_from(source: Path) -> None:
    """Put `source`'s packages first on sys.path and check that they are the ones imported."""
    for package in reversed(PACKAGES):
        sys.path.insert(0, str(source / "packages" / package / "src"))
    import ppo_grounding

    imported = Path(ppo_grounding.__file__).resolve()
    if not imported.is_relative_to(source.resolve()):
        raise SystemExit(f"loop_profile: imported {imported}, not the tree under {source}")


def make_trainer(args: Args, threads: int, output_dir: str) -> Any:
    import torch
    from ppo_grounding import PPOTrainer, offline_preset

    torch.set_num_threads(threads)
    config = offline_preset()
    config.env.env_id = ENV_ID
    config.env.num_envs = 16
    config.env.num_observations = 1
    config.ppo.num_steps = 32
    config.ppo.total_frames = 10**9
    config.run.seed = args.seed
    config.run.output_dir = output_dir
    config.run.progress = False
    config.run.tensorboard = False
    config.run.checkpoint_every = 0
    assert config.policy.model == "offline-gpt2", config.policy.model
    return PPOTrainer(config)


def frames_per_second(trainer: Any, updates: int) -> float:
    trainer.update(trainer.collect_rollout()[0])  # untimed: first calls allocate and warm up
    start = time.perf_counter()
    for _ in range(updates):
        rollout, _ = trainer.collect_rollout()
        trainer.update(rollout)
    return updates * trainer.config.batch_size / (time.perf_counter() - start)


def flops_per_frame(trainer: Any) -> float:
    """Matmul and attention FLOPs (forward and backward) of one rollout and one update, per
    frame. torch's counter has no formula for the CPU flash-attention kernels: they get the
    generic attention formulas."""
    import torch
    from torch.utils.flop_counter import (
        FlopCounterMode,
        sdpa_backward_flop_count,
        sdpa_flop_count,
    )

    def attention(query, key, value, *args, out_shape=None, **kwargs):
        return sdpa_flop_count(query, key, value)

    def attention_backward(grad_out, query, key, value, *args, out_shape=None, **kwargs):
        return sdpa_backward_flop_count(grad_out, query, key, value)

    aten = torch.ops.aten
    mapping = {
        aten._scaled_dot_product_flash_attention_for_cpu: attention,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: attention_backward,
    }
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        trainer.update(trainer.collect_rollout()[0])
    return counter.get_total_flops() / trainer.config.batch_size


def run_worker(args: Args) -> None:
    assert args.worker is not None
    import_from(Path(args.worker))
    threads = args.threads[0]
    with tempfile.TemporaryDirectory(prefix="loop_profile_") as out:
        trainer = make_trainer(args, threads, out)
        result: dict[str, Any] = {"fps": frames_per_second(trainer, args.updates)}
        result["flops_per_frame"] = flops_per_frame(trainer)
        trainer.envs.close()
        if args.profile:
            with tempfile.TemporaryDirectory(prefix="loop_profile_") as out2:
                result["breakdown"] = profile_loop(args, threads, out2)
    print("RESULT " + json.dumps(result))


# -------------------------------------------------------------------------------- the profile


class Sections:
    """Exclusive wall time per named part: a part's time excludes the listed parts inside it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list] = []  # [name, start, time of children]

    def wrap(self, name, function):
        def timed(*args, **kwargs):
            label = name(*args) if callable(name) else name
            self._stack.append([label, time.perf_counter(), 0.0])
            try:
                return function(*args, **kwargs)
            finally:
                label, start, children = self._stack.pop()
                elapsed = time.perf_counter() - start
                self.seconds[label] += elapsed - children
                if self._stack:
                    self._stack[-1][2] += elapsed

        return timed

    def patch(self, owner: Any, attribute: str, name) -> None:
        setattr(owner, attribute, self.wrap(name, getattr(owner, attribute)))


def profile_loop(args: Args, threads: int, output_dir: str) -> dict[str, float]:
    """Seconds per update of each part of `PPOTrainer.train` over args.updates updates."""
    import babyai_text.env
    import llm_policy.batching
    import llm_policy.scorer
    import ppo_grounding.trainer
    import ppo_grounding.update
    import torch
    from llm_policy import LLMPolicy
    from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel
    from ppo_grounding.history import EpisodeHistory
    from ppo_grounding.metrics import MetricsLogger

    sections = Sections()

    def by_grad(phase: str):
        return lambda *a: f"{'update' if torch.is_grad_enabled() else 'rollout'} {phase}"

    sections.patch(RoomGridLevel, "step", "env: minigrid step")
    sections.patch(RoomGridLevel, "reset", "env: minigrid reset (new episode)")
    sections.patch(babyai_text.env, "describe_view", "env: describing the view")
    for method in ("prompts", "advance", "final_prompt", "start_all"):
        sections.patch(EpisodeHistory, method, "prompt building")
    sections.patch(llm_policy.batching.PairTokenizer, "tokenize", "tokenising")
    sections.patch(llm_policy.scorer, "pad_batch", "padding")
    sections.patch(LLMPolicy, "forward", by_grad("forward"))
    sections.patch(LLMPolicy, "value", by_grad("forward"))
    sections.patch(torch.Tensor, "backward", "update backward")
    sections.patch(torch.nn.utils, "clip_grad_norm_", "optimiser (clip + step)")
    sections.patch(ppo_grounding.trainer, "compute_gae", "GAE + batching")
    sections.patch(ppo_grounding.trainer.Batch, "from_rollout", "GAE + batching")
    sections.patch(MetricsLogger, "log", "logging")
    trainer = make_trainer(args, threads, output_dir)
    sections.patch(trainer.envs, "step", "env: vector env and wrappers")
    sections.patch(trainer.optimizer, "step", "optimiser (clip + step)")
    sections.patch(trainer, "collect_rollout", "rollout: the rest")
    sections.patch(trainer, "update", "update: the rest (PPO loss, minibatches)")
    sections.patch(trainer, "save", "checkpoint at the end")
    trainer.update(trainer.collect_rollout()[0])  # untimed warm-up
    sections.seconds.clear()
    trainer.config.ppo.total_frames = args.updates * trainer.config.batch_size
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    seconds = dict(sections.seconds)
    seconds.pop("checkpoint at the end", None)
    loop = total - sections.seconds["checkpoint at the end"]
    seconds["the rest (train loop)"] = loop - sum(seconds.values())
    return {name: s / args.updates for name, s in seconds.items()}


# ----------------------------------------------------------------------------- the main process


def matmul_peak(threads: int) -> float:
    """fp32 matmul FLOP/s with `threads` threads: the best of a large square matmul and the
    offline model's own shapes (tokens x 128 -> 384 / 512 / 128)."""
    import torch

    torch.set_num_threads(threads)
    best = 0.0
    for m, k, n in ((2048, 2048, 2048), (4096, 128, 384), (4096, 128, 512), (4096, 512, 128)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3):
            a @ b
        repeats = max(3, int(2e10 / (2 * m * k * n)))
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * m * k * n * repeats / (time.perf_counter() - start))
    return best


def export_tree(revision: str, into: Path) -> Path:
    """The packages of `revision`, written under `into`."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "packages"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(args: Args, source: Path, threads: int, profile: bool = False) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        str(source),
        "--threads",
        str(threads),
        "--updates",
        str(args.updates),
        "--seed",
        str(args.seed),
    ]
    if profile:
        command.append("--profile")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TQDM_DISABLE="1")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"loop_profile: a measurement of {source} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main(args: Args) -> None:
    if args.worker is not None:
        run_worker(args)
        return
    print(
        f"offline-gpt2 on {ENV_ID}: 16 envs x 32 steps, 4 epochs x 128-frame minibatches, "
        f"1 observation; {args.updates} timed updates per measurement, {args.rounds} rounds; "
        f"this tree vs {args.baseline}"
    )
    with tempfile.TemporaryDirectory(prefix="loop_profile_baseline_") as temporary:
        baseline = export_tree(args.baseline, Path(temporary))
        for threads in args.threads:
            peak = matmul_peak(threads)
            fps: dict[str, list[float]] = {"baseline": [], "this tree": []}
            flops: dict[str, float] = {}
            breakdown: dict[str, float] = {}
            for round_ in range(args.rounds):
                order = ["baseline", "this tree"] if round_ % 2 == 0 else ["this tree", "baseline"]
                for name in order:
                    source = baseline if name == "baseline" else ROOT
                    profile = name == "this tree" and not breakdown
                    result = measure(args, source, threads, profile=profile)
                    fps[name].append(result["fps"])
                    flops[name] = result["flops_per_frame"]
                    breakdown = result.get("breakdown", breakdown)
            report(threads, peak, fps, flops, breakdown, args.baseline)


def report(
    threads: int,
    peak: float,
    fps: dict[str, list[float]],
    flops: dict[str, float],
    breakdown: dict[str, float],
    baseline: str,
) -> None:
    print(f"\n== {threads} thread(s); fp32 matmul limit of this machine: {peak / 1e9:.1f} GFLOP/s")
    total = sum(breakdown.values())
    print(f"where an update's {total:.2f} s go (this tree, {512 / total:.1f} frames/s):")
    for name, seconds in sorted(breakdown.items(), key=lambda item: -item[1]):
        print(f"  {name:<42} {seconds:6.3f} s  {seconds / total:5.1%}")
    for name in ("baseline", "this tree"):
        median = statistics.median(fps[name])
        rate = median * flops[name]
        label = baseline if name == "baseline" else "this tree"
        runs = ", ".join(f"{f:.1f}" for f in fps[name])
        print(
            f"  {label:<10} {median:6.1f} frames/s (runs: {runs}); "
            f"{flops[name] / 1e9:.3f} GFLOP/frame; {rate / 1e9:5.1f} GFLOP/s = "
            f"{rate / peak:.2f} of the limit"
        )
    ratio = statistics.median(fps["this tree"]) / statistics.median(fps["baseline"])
    print(f"  speed-up this tree / {baseline}: {ratio:.2f}x (goal >= 2x)")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
