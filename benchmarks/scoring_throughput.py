"""Scoring throughput of llm-policy's ActionScorer against two naive baselines, in one run.

For each model: 16 prompts of about 150 tokens (BabyAI-Text style, 3 observations) x 6 actions,
inference (no grad), random weights (nothing is downloaded):

- naive per-pair: one full forward per (prompt, action) pair, full-vocabulary logits (96 forwards)
- naive padded batch: every pair as its own prompt+action sequence, padded, one forward
- ours, "cache": the prompt runs once; candidates reuse its key/value cache (decoder-only) or
  its encoder output and cross-attention cache (encoder-decoder)
- ours, "packed" (decoder-only): candidates packed after one copy of the prompt with a block mask
- ours, "recompute" (encoder-decoder): encoder once, decoder per candidate without a cache

Models: the offline default (offline-t5), a Flan-T5-small-sized T5 (d_model 512, 8+8 layers,
6 heads, d_ff 1024, vocab 32128) and a GPT-2-small-sized GPT-2 (768, 12 layers, vocab 50257),
plus offline-gpt2. Prints prompts/s and the speed-up over each baseline measured in the same run.

    python benchmarks/scoring_throughput.py                 # all models, 1 thread
    python benchmarks/scoring_throughput.py --models offline-t5 --threads 2   # idle machine

Do not run it while other heavy jobs (tests) run on the same cores.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import tyro  # noqa: E402
from llm_policy import ENGLISH_ACTION_NAMES, ActionScorer, build_prompt  # noqa: E402
from llm_policy.loading import load_model_and_tokenizer  # noqa: E402
from llm_policy.offline import build_word_tokenizer  # noqa: E402
from llm_policy.reference import naive_scores, padded_batch_scores  # noqa: E402

# Random-weight models of real sizes, built from configs (no download).
SIZED_CONFIGS = {
    "flan-t5-small-sized": (
        "t5",
        dict(
            vocab_size=32128,
            d_model=512,
            d_kv=64,
            num_heads=6,
            d_ff=1024,
            num_layers=8,
            num_decoder_layers=8,
            feed_forward_proj="gated-gelu",
            tie_word_embeddings=False,
            dropout_rate=0.0,
            decoder_start_token_id=0,
            pad_token_id=0,
            eos_token_id=3,
        ),
    ),
    "gpt2-small-sized": (
        "gpt2",
        dict(
            vocab_size=50257,
            n_embd=768,
            n_layer=12,
            n_head=12,
            n_positions=1024,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=2,
            eos_token_id=3,
            pad_token_id=0,
        ),
    ),
}
ModelName = Literal["offline-t5", "offline-gpt2", "flan-t5-small-sized", "gpt2-small-sized"]
DEFAULT_MODELS: list[str] = list(get_args(ModelName))

COLORS = ["red", "green", "blue", "purple", "yellow", "grey"]
OBJECTS = ["key", "ball", "box"]
GOALS = ["go to the {c} {o}", "pick up the {c} {o}", "put the {c} {o} next to the {c2} {o2}"]


def build_sized_model(name: str, directory: Path) -> Path:
    """Write a random-weight model of a real size (seeded) with the offline word tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    arch, cfg = SIZED_CONFIGS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if arch == "t5":
            model = T5ForConditionalGeneration(T5Config(**cfg))
            head = torch.nn.Linear(cfg["d_model"], cfg["vocab_size"], bias=False)
            torch.nn.init.normal_(head.weight, std=cfg["d_model"] ** -0.5)
            model.lm_head = head  # untied, like Flan-T5
        else:
            model = GPT2LMHeadModel(GPT2Config(**cfg))
    model.save_pretrained(directory, safe_serialization=True)
    build_word_tokenizer(model_max_length=1024).save_pretrained(directory)
    return directory


def model_source(name: str, workdir: Path) -> str:
    if name in SIZED_CONFIGS:
        path = workdir / name
        if not (path / "config.json").is_file():
            build_sized_model(name, path)
        return str(path)
    return name


def make_prompts(n: int, seed: int = 0) -> list[str]:
    """BabyAI-Text-like prompts: 3 observations of 3-5 sentences, 2 actions, ~150 tokens."""
    rng = random.Random(seed)
    prompts = []
    for _ in range(n):
        c, c2 = rng.sample(COLORS, 2)
        o, o2 = rng.choice(OBJECTS), rng.choice(OBJECTS)
        goal = rng.choice(GOALS).format(c=c, o=o, c2=c2, o2=o2)
        observations = []
        for _ in range(3):
            sentences = [f"You see a wall {rng.randint(1, 6)} steps forward"]
            for _ in range(rng.randint(1, 3)):
                dx, dy = rng.randint(1, 3), rng.randint(1, 6)
                side = rng.choice(["left", "right"])
                thing = f"{rng.choice(COLORS)} {rng.choice(OBJECTS)}"
                sentences.append(f"You see a {thing} {dx} steps {side} and {dy} steps forward")
            observations.append(sentences)
        actions = [rng.choice(ENGLISH_ACTION_NAMES) for _ in range(2)]
        prompts.append(build_prompt(goal, observations, actions, ENGLISH_ACTION_NAMES))
    return prompts


@dataclass
class Args:
    models: list[ModelName] = field(default_factory=lambda: list(DEFAULT_MODELS))
    """Models to time, in this order."""
    prompts: int = 16
    """Prompts per call (each with the 6 actions)."""
    threads: int = 1
    """Torch threads: 1 on a busy shared machine (extra OpenMP threads wait for busy cores), 2+ idle."""
    rounds: int = 3
    """Timed calls per method (the median is reported)."""


def bench_model(name: str, source: str, prompts, candidates, args: Args) -> list[tuple]:
    model, tokenizer = load_model_and_tokenizer(source)
    model.eval()
    scorer = ActionScorer(model, tokenizer)
    params = sum(p.numel() for p in model.parameters())
    tokens = [len(ids) for ids in scorer.tokenize(prompts, candidates).prompt_ids]
    fast = "recompute" if scorer.is_encoder_decoder else "packed"
    default = scorer.resolve_method("auto")  # what LLMPolicy uses for rollouts
    methods = {
        "naive per-pair": lambda p, c: naive_scores(scorer, p, c),
        "naive padded batch": lambda p, c: padded_batch_scores(scorer, p, c),
        "ours: cache": lambda p, c: scorer.score(p, c, method="cache").scores,
        f"ours: {fast}": lambda p, c: scorer.score(p, c, method=fast).scores,
    }
    print(
        f"\n## {name}: {params / 1e6:.1f}M parameters, {len(prompts)} prompts x "
        f"{len(candidates[0])} actions, prompt tokens mean {statistics.mean(tokens):.0f} "
        f"(min {min(tokens)}, max {max(tokens)})",
        flush=True,
    )
    rows, results, times = [], {}, {label: [] for label in methods}
    print(f"   default (method='auto'): {default}", flush=True)
    with torch.inference_mode():
        for fn in methods.values():
            fn(prompts[:2], candidates[:2])  # warm-up (allocations, kernel selection)
        # Rounds interleave the methods, so that load from other processes hits all of them alike.
        for _ in range(args.rounds):
            for label, fn in methods.items():
                t0 = time.perf_counter()
                results[label] = fn(prompts, candidates)
                times[label].append(time.perf_counter() - t0)
    for label in methods:
        seconds = statistics.median(times[label])
        rows.append((name, label, seconds, len(prompts) / seconds, default))
        rate = len(prompts) / seconds
        print(f"   {label:<22} {seconds * 1000:9.1f} ms/call {rate:9.1f} prompts/s", flush=True)
    # How much of one per-pair forward is the prompt's compute and how much the fixed cost of a
    # call: the same per-pair loop over a one-word prompt ("go") costs only the latter.
    pairs = sum(len(c) for c in candidates)
    with torch.inference_mode():
        short = statistics.median(
            _timed(lambda: naive_scores(scorer, ["go"] * len(prompts), candidates))
            for _ in range(args.rounds)
        )
    per_pair = statistics.median(times["naive per-pair"]) / pairs
    print(
        f"   one per-pair forward: {per_pair * 1000:.2f} ms with the prompt, "
        f"{short / pairs * 1000:.2f} ms with a one-word prompt (the fixed cost of a call)",
        flush=True,
    )
    ref = results["naive per-pair"]
    fin = torch.isfinite(ref)
    for label, got in results.items():
        err = (got[fin] - ref[fin]).abs().max().item()
        assert err < 1e-3, f"{name} {label}: differs from the per-pair scores by {err}"
    return rows


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(args: Args) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    prompts = make_prompts(args.prompts)
    candidates = [list(ENGLISH_ACTION_NAMES)] * len(prompts)
    print(
        f"# scoring throughput: torch {torch.__version__}, {args.threads} thread(s), "
        f"{os.cpu_count()} logical CPUs, python {sys.version.split()[0]}"
    )
    all_rows = []
    with tempfile.TemporaryDirectory(prefix="llm_policy_bench_") as tmp:
        cache = os.environ.get("LLM_POLICY_CACHE")
        if cache is None:  # keep the user's cache untouched: offline models go to the temp dir too
            os.environ["LLM_POLICY_CACHE"] = str(Path(tmp) / "cache")
        for name in args.models:
            all_rows += bench_model(name, model_source(name, Path(tmp)), prompts, candidates, args)

    print("\n## summary: prompts/s, and the speed-up of ours (default method) in the same run")
    print(
        "| model | naive per-pair | naive padded batch | ours: cache | ours: packed or recompute "
        "| default | default vs per-pair | default vs padded batch |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        rate = {label: r for m, label, _, r, _ in all_rows if m == name}
        default = next(d for m, *_, d in all_rows if m == name)
        per_pair, padded = rate["naive per-pair"], rate["naive padded batch"]
        cache = rate["ours: cache"]
        other_label = next(x for x in rate if x.startswith("ours: ") and x != "ours: cache")
        ours = rate[f"ours: {default}"]
        print(
            f"| {name} | {per_pair:.1f} | {padded:.1f} | {cache:.1f} | {rate[other_label]:.1f} "
            f"({other_label[6:]}) | {default} | {ours / per_pair:.1f}x | {ours / padded:.1f}x |"
        )


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
