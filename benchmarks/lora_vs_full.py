"""Time and peak memory of one PPO-sized forward+backward: LoRA vs full fine-tuning.

One step = LLMPolicy.forward on 16 prompts (~150 tokens) x 6 actions, then backward of a PPO-style
loss (policy gradient + value loss - entropy), gradients freshly allocated (zero_grad with
set_to_none, as torch optimisers do). Each (model, mode) runs in its own process:

- time: median over `--reps` steps after one warm-up step
- peak memory: the most tensor memory allocated at any point of the step beyond what was allocated
  before it (activations, gradients, temporaries): torch.cuda.max_memory_allocated on CUDA, the
  torch profiler's memory timeline on CPU (one extra, profiled step)

    python benchmarks/lora_vs_full.py                        # 3 models x {lora, full}, 1 thread
    python benchmarks/lora_vs_full.py --models offline-t5 --checkpointing
    python benchmarks/lora_vs_full.py --device cuda --dtype bfloat16
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tyro  # noqa: E402
from scoring_throughput import ModelName, make_prompts, model_source  # noqa: E402

MODELS: list[str] = ["offline-t5", "flan-t5-small-sized", "gpt2-small-sized"]
_CHILD_FLAG = "--child"  # main runs each (model, mode) as `lora_vs_full.py --child <spec json>`


@dataclass
class Args:
    models: list[ModelName] = field(default_factory=lambda: list(MODELS))
    """Models to measure, in this order."""
    prompts: int = 16
    """Prompts per step (each with the 6 actions)."""
    threads: int = 1
    """Torch threads: 1 on a busy shared machine (extra OpenMP threads wait for busy cores), 2+ idle."""
    reps: int = 2
    """Timed steps after the warm-up (the median is reported)."""
    device: str = "cpu"
    """Torch device, e.g. "cuda"."""
    dtype: str = "float32"
    """Model weights: "float32", "bfloat16" or "float16"."""
    checkpointing: bool = False
    """Also run both modes with gradient checkpointing."""


def _cpu_step_peak_bytes(step) -> float:
    """Peak tensor bytes allocated during step() on CPU, from the profiler's memory timeline."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    try:
        from torch.profiler._memory_profiler import MemoryProfileTimeline
    except ImportError:  # pragma: no cover - private API of the torch profiler
        return float("nan")
    with profile(
        activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
    ) as prof:
        step()
    _, sizes = MemoryProfileTimeline(prof._memory_profile())._coalesce_timeline(torch.device("cpu"))
    if not sizes:
        return float("nan")
    totals = [sum(row) for row in sizes]
    return max(totals) - totals[0]


def child(spec: dict) -> dict:
    import torch
    from llm_policy import ENGLISH_ACTION_NAMES, LLMPolicy, PolicyConfig

    torch.set_num_threads(spec["threads"])
    policy = LLMPolicy(
        PolicyConfig(
            model=spec["source"],
            finetune=spec["finetune"],
            gradient_checkpointing=spec["checkpointing"],
            device=spec["device"],
            dtype=spec["dtype"],
            verify_scoring=False,
        )
    )
    policy.train()
    prompts = make_prompts(spec["prompts"])
    candidates = [list(ENGLISH_ACTION_NAMES)] * len(prompts)
    g = torch.Generator().manual_seed(0)
    actions = torch.randint(0, 6, (len(prompts),), generator=g).to(spec["device"])
    advantages = torch.randn(len(prompts), generator=g).to(spec["device"])
    returns = torch.randn(len(prompts), generator=g).to(spec["device"])
    cuda = spec["device"].startswith("cuda")

    def step():
        policy.zero_grad(set_to_none=True)
        out = policy(prompts, candidates)
        dist = out.distribution()
        loss = (
            -(dist.log_prob(actions) * advantages).mean()
            + 0.5 * (out.values - returns).pow(2).mean()
            - 0.01 * dist.entropy().mean()
        )
        loss.backward()
        if cuda:
            torch.cuda.synchronize()

    step()  # warm-up
    times = []
    for _ in range(spec["reps"]):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    policy.zero_grad(set_to_none=True)
    gc.collect()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = _cpu_step_peak_bytes(step)
    return {
        "seconds": statistics.median(times),
        "peak_mb": peak / 2**20,
        "trainable": sum(p.numel() for p in policy.trainable_parameters()),
        "total": sum(p.numel() for p in policy.parameters()),
    }


def main(args: Args) -> None:
    modes = [("lora", False), ("full", False)]
    if args.checkpointing:
        modes += [("lora", True), ("full", True)]
    print(
        f"# one PPO-sized forward+backward ({args.prompts} prompts x 6 actions), "
        f"{args.device} {args.dtype}, {args.threads} thread(s)"
    )
    print("| model | mode | trainable params | step time (s) | peak memory over the step (MB) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="llm_policy_bench_") as tmp:
        env = dict(os.environ)
        env.setdefault("LLM_POLICY_CACHE", str(Path(tmp) / "cache"))
        os.environ["LLM_POLICY_CACHE"] = env["LLM_POLICY_CACHE"]
        results = {}
        for name in args.models:
            source = model_source(name, Path(tmp))
            for finetune, ckpt in modes:
                spec = dict(
                    source=source,
                    finetune=finetune,
                    checkpointing=ckpt,
                    threads=args.threads,
                    prompts=args.prompts,
                    reps=args.reps,
                    device=args.device,
                    dtype=args.dtype,
                )
                proc = subprocess.run(
                    [sys.executable, __file__, _CHILD_FLAG, json.dumps(spec)],
                    capture_output=True,
                    text=True,
                    env=env,
                )
                line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
                if proc.returncode != 0 or line is None:
                    print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
                    raise SystemExit(f"{name} {finetune}: child process failed")
                r = json.loads(line[len("RESULT ") :])
                results[(name, finetune, ckpt)] = r
                label = finetune + (" + checkpointing" if ckpt else "")
                print(
                    f"| {name} | {label} | {r['trainable'] / 1e6:.2f}M of {r['total'] / 1e6:.1f}M "
                    f"| {r['seconds']:.2f} | {r['peak_mb']:.0f} |",
                    flush=True,
                )
    print("\n## LoRA relative to full fine-tuning (same run)")
    for name in args.models:
        lora, full = results[(name, "lora", False)], results[(name, "full", False)]
        print(
            f"- {name}: time x{lora['seconds'] / full['seconds']:.2f}, "
            f"peak memory x{lora['peak_mb'] / full['peak_mb']:.2f}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == _CHILD_FLAG:
        print("RESULT " + json.dumps(child(json.loads(sys.argv[2]))), flush=True)
    else:
        main(tyro.cli(Args, description=__doc__))
