"""GPU smoke test: one PPO update of each paper-size model in bf16 on CUDA, then data-parallel
training on every visible GPU; frames/s and peak memory per device.

    python benchmarks/gpu_smoke.py            # on a machine with CUDA (a few minutes)
    make gpu-smoke                             # the same

Each model is a random one of the real architecture (llm_policy.architectures: Flan-T5-large,
Qwen2.5-0.5B, Llama-3.2-1B), built once into --models-dir, then trained through the real command:

    ppo-grounding train --preset paper --policy.model DIR --policy.device cuda
        --policy.dtype bfloat16 --env.num-envs 8 --ppo.num-steps 4 --ppo.minibatch-size 8 ...

(the paper's prompt with 3 observations, full fine-tuning, one update of 32 frames), and with
more than one GPU the same command under `torchrun --nproc_per_node <GPUs>` for the smallest
model, replicated (DDP) and sharded (`--dist.shard`, torch FSDP2; its final checkpoint is gathered
and written as every run's is). frames/s is charts/SPS of the update; peak memory is memory/device_peak_gib (torch's
max_memory_allocated on the fullest device). Without CUDA it says so and exits 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tyro  # noqa: E402

MODELS = ["qwen2.5-0.5b", "flan-t5-large", "llama-3.2-1b"]
ENVS_PER_GPU = 8
STEPS = 4


def _options(directory: Path, args: Args, gpus: int) -> list[str]:
    """The train options of one update: ENVS_PER_GPU envs and minibatch prompts per GPU."""
    envs = ENVS_PER_GPU * gpus
    return [
        "--preset", "paper", "--policy.model", str(directory), "--policy.device", "cuda",
        "--policy.dtype", args.dtype, "--policy.finetune", args.finetune,
        "--env.num-envs", str(envs), "--ppo.num-steps", str(STEPS),
        "--ppo.minibatch-size", str(envs), "--ppo.update-epochs", "1",
        "--ppo.total-frames", str(envs * STEPS), "--run.checkpoint-every", "0",
        "--run.no-tensorboard", "--run.no-progress",
    ]  # fmt: skip


@dataclass
class Args:
    models: list[str] = field(default_factory=lambda: list(MODELS))
    """Stored architectures to run (llm_policy.architectures)."""
    models_dir: str = str(Path(tempfile.gettempdir()) / "paper_scale_models")
    """Where the random models are built (once; shared with paper_scale.py)."""
    dtype: str = "bfloat16"
    """--policy.dtype of every run."""
    finetune: str = "full"
    """--policy.finetune of every run."""
    ddp: bool = True
    """Also run the smallest model data-parallel over every visible GPU (with 2 or more),
    replicated and sharded."""


def _train(command: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [*command, "--run.output-dir", out], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-3000:]
            return {"error": f"exit {done.returncode}: {tail}"}
        rows = (Path(out) / "metrics.jsonl").read_text().splitlines()
        return json.loads(rows[-1])


def _row(label: str, metrics: dict, devices: int) -> str:
    if "error" in metrics:
        return f"{label:34} FAILED {metrics['error']}"
    return (
        f"{label:34} {devices:>3} {metrics['charts/SPS']:10.1f} "
        f"{metrics.get('memory/device_peak_gib', float('nan')):10.2f}"
    )


def main(args: Args) -> int:
    import torch

    if not torch.cuda.is_available():
        print("gpu_smoke: no CUDA device here (torch.cuda.is_available() is False); nothing run.")
        return 0
    from llm_policy.architectures import BUILD_INFO, build_random_model

    gpus = torch.cuda.device_count()
    names = ", ".join(torch.cuda.get_device_name(i) for i in range(gpus))
    print(f"torch {torch.__version__}, {gpus} GPU(s): {names}; dtype {args.dtype}, {args.finetune}")
    print(f"{'run':34} {'GPUs':>3} {'frames/s':>10} {'peak GiB':>10}")
    failed = False
    for name in args.models:
        directory = Path(args.models_dir) / name
        if not (directory / BUILD_INFO).is_file():
            build_random_model(name, directory)
        one = _options(directory, args, 1)
        metrics = _train([sys.executable, "-m", "ppo_grounding.cli", "train", *one])
        failed |= "error" in metrics
        print(_row(f"{name} (1 process)", metrics, 1), flush=True)
        if args.ddp and gpus > 1 and name == args.models[0]:
            launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            launcher += [f"--nproc_per_node={gpus}", "-m", "ppo_grounding.cli", "train"]
            for form, extra in (("DDP", []), ("sharded", ["--dist.shard"])):
                metrics = _train([*launcher, *_options(directory, args, gpus), *extra])
                failed |= "error" in metrics
                print(_row(f"{name} ({form}, {gpus} processes)", metrics, gpus), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(tyro.cli(Args, description=__doc__)))
