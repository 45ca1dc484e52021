"""The paper's model sizes through the real command on CPU: seconds per frame and peak memory,
beside `ppo-grounding plan`'s prediction.

For each row (architecture, fine-tuning, dtype) a randomly initialised model of the real
architecture (llm_policy.architectures: Flan-T5-large 783M, Qwen2.5-0.5B, Llama-3.2-1B, with a
local tokenizer of the family's format) is built once into --models-dir, then

    ppo-grounding train --preset paper --policy.model DIR --policy.finetune F --policy.dtype D
        --env.num-envs 2 --ppo.num-steps 2 --ppo.minibatch-size 2 --ppo.update-epochs 1
        --ppo.total-frames 4 ...

runs in its own process: the paper's prompt (3 observations, MixedTrainLocal), one PPO update at a
reduced batch. Reported per row:

- s/frame: 1 / charts/SPS of that update (rollout + PPO update, not loading or saving);
- load GiB: the process's peak resident memory (VmHWM) when the run prints its batch line, i.e.
  once the model is loaded; the peak is then reset (/proc/PID/clear_refs);
- train GiB: the most resident memory (VmRSS, sampled every 50 ms) from then until the update's
  metrics row is written: the rollout and the update;
- save GiB: the peak since the reset, read when the process ends: training and the final
  checkpoint (at least the train GiB: the kernel's own peak can lag a sampled one);
- plan GiB: `plan_memory` for the same config (tokens per prompt measured here with the model's
  tokenizer), and plan / train.

    python benchmarks/paper_scale.py                      # the six rows, about 15 min, ~16 GB
    python benchmarks/paper_scale.py --rows qwen2.5-0.5b:full:bfloat16
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tyro  # noqa: E402

ROWS = [
    "flan-t5-large:full:float32",
    "flan-t5-large:full:bfloat16",
    "qwen2.5-0.5b:full:float32",
    "qwen2.5-0.5b:full:bfloat16",
    "llama-3.2-1b:lora:float32",
    "llama-3.2-1b:lora:bfloat16",
]
REDUCED = [
    "--env.num-envs", "2", "--ppo.num-steps", "2", "--ppo.minibatch-size", "2",
    "--ppo.update-epochs", "1", "--ppo.total-frames", "4", "--run.checkpoint-every", "0",
    "--run.no-tensorboard",
]  # fmt: skip
PLAN_TOLERANCE = 0.20


@dataclass
class Args:
    rows: list[str] = field(default_factory=lambda: list(ROWS))
    """architecture:finetune:dtype, e.g. llama-3.2-1b:lora:bfloat16."""
    models_dir: str = str(Path(tempfile.gettempdir()) / "paper_scale_models")
    """Where the random models are built (once; a few GB each)."""
    threads: int = 2
    """Torch threads of each run (OMP_NUM_THREADS)."""
    out: str | None = None
    """Also write the rows as JSON here."""
    tiny: bool = False
    """Build each architecture at test size (2 layers, width 32) instead: checks the pipeline in
    seconds; its memory figures mean nothing."""


# The families' code paths at test size (the same overrides as the tests' tiny builds)
TINY = {
    "flan-t5-large": dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2),
    "qwen2.5-0.5b": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2),
    "llama-3.2-1b": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, head_dim=8),
}


def _status_kib(pid: int, field_name: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else None


def _model_dir(arch: str, args: Args) -> Path:
    from llm_policy.architectures import BUILD_INFO, build_random_model

    directory = Path(args.models_dir) / (f"{arch}-tiny" if args.tiny else arch)
    if not (directory / BUILD_INFO).is_file():
        print(f"building a random {arch} in {directory} ...", flush=True)
        build_random_model(arch, directory, config_overrides=TINY[arch] if args.tiny else None)
    return directory


def _prompt_tokens(directory: Path) -> int:
    """Mean tokens of the paper's prompt (3 observations, MixedTrainLocal) with this tokenizer,
    over the first 3 steps of 20 episodes that always go forward."""
    import babyai_text  # noqa: F401
    import gymnasium as gym
    from ppo_grounding.history import EpisodeHistory, sentences_of
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    env = gym.make("BabyAI-Text-MixedTrainLocal-v0")
    names = list(env.unwrapped.action_names)
    lengths = []
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        history = EpisodeHistory(1, 3)
        history.start(0, obs["mission"], sentences_of(obs["text"]))
        for _ in range(3):
            lengths.append(len(tokenizer(history.prompt(0, names))["input_ids"]))
            obs, *_ = env.step(2)
            history.record(0, names[2], sentences_of(obs["text"]))
    env.close()
    return round(sum(lengths) / len(lengths))


def run_row(row: str, args: Args) -> dict:
    arch, finetune, dtype = row.split(":")
    directory = _model_dir(arch, args)
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable, "-m", "ppo_grounding.cli", "train", "--preset", "paper",
            "--policy.model", str(directory), "--policy.finetune", finetune,
            "--policy.dtype", dtype, "--run.output-dir", out, *REDUCED,
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        start = time.perf_counter()
        child = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        load_peak = None  # VmHWM when the run prints its batch line: the model is loaded
        train_peak = [0]  # the most VmRSS seen from then until the update's metrics row
        metrics_file = Path(out) / "metrics.jsonl"
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                if load_peak is None:
                    continue
                if metrics_file.is_file() and metrics_file.stat().st_size:
                    return  # the update is over; what follows is the checkpoint save
                value = _status_kib(child.pid, "VmRSS")
                train_peak[0] = max(train_peak[0], value or 0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        log = []
        for line in child.stdout:
            log.append(line)
            if load_peak is None and "global batch" in line:
                loaded = _status_kib(child.pid, "VmHWM")
                Path(f"/proc/{child.pid}/clear_refs").write_text("5")  # reset VmHWM
                # only now may the sampler start: a sample taken before the reset could exceed
                # the reset peak (memory freed in between) and so the save's peak below
                load_peak = loaded
        # VmHWM since the reset, read as the process ends: training and the final save
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
        wall = time.perf_counter() - start
        if child.returncode != 0:
            raise SystemExit(f"{row}: train exited {child.returncode}:\n{''.join(log[-30:])}")
        metrics = [json.loads(x) for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    sps = metrics[-1]["charts/SPS"]
    return {
        "row": row,
        "s_per_frame": 1 / sps,
        "peak_train_gib": train_peak[0] / 2**20,
        "peak_load_gib": (load_peak or 0) / 2**20,
        # The kernel updates its high-water mark lazily: memory handed back with madvise can
        # leave it below a resident size the sampler saw during training, in the same window.
        "peak_save_gib": max(usage.ru_maxrss, train_peak[0]) / 2**20,
        "wall_s": wall,
    }


def planned(row: str, tokens: int, args: Args) -> float:
    from ppo_grounding.cli import _train_config
    from ppo_grounding.plan import GIB, plan_memory

    arch, finetune, dtype = row.split(":")
    directory = str(_model_dir(arch, args))
    argv = ["--preset", "paper", "--policy.model", directory, "--policy.finetune", finetune]
    argv += ["--policy.dtype", dtype, "--run.output-dir", tempfile.mkdtemp(), *REDUCED]
    return plan_memory(_train_config(argv, "plan", ""), tokens_per_prompt=tokens).total / GIB


def main(args: Args) -> None:
    import torch

    print(f"torch {torch.__version__}, CPU {torch.backends.cpu.get_cpu_capability()}, "
          f"{args.threads} thread(s) per run; one PPO update of 4 frames per row", flush=True)  # fmt: skip
    results = []
    header = (
        f"{'row':30} {'s/frame':>8} {'load GiB':>9} {'train GiB':>9} {'save GiB':>9} "
        f"{'plan GiB':>9} {'plan/train':>10}"
    )
    print(header)
    for row in args.rows:
        measured = run_row(row, args)
        tokens = _prompt_tokens(_model_dir(row.split(":")[0], args))
        measured["prompt_tokens"] = tokens
        measured["plan_gib"] = planned(row, tokens, args)
        measured["plan_over_peak"] = measured["plan_gib"] / measured["peak_train_gib"]
        results.append(measured)
        print(
            f"{row:30} {measured['s_per_frame']:8.2f} {measured['peak_load_gib']:9.2f} "
            f"{measured['peak_train_gib']:9.2f} {measured['peak_save_gib']:9.2f} "
            f"{measured['plan_gib']:9.2f} {measured['plan_over_peak']:10.2f}",
            flush=True,
        )
    worst = max(abs(r["plan_over_peak"] - 1) for r in results)
    verdict = "within" if worst <= PLAN_TOLERANCE else "NOT within"
    print(f"plan vs measured training peak: worst {worst:.0%}, {verdict} {PLAN_TOLERANCE:.0%}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
