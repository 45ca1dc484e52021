"""Throughput of the BabyAI-Text envs against minigrid, and of the describer against a baseline.

    .venv/bin/python benchmarks/env_throughput.py [--steps 4000] [--rounds 5]

Prints, measured in this run:
1. env steps/s of BabyAI-Text-GoToLocal-v0 and of minigrid's raw BabyAI-GoToLocal-v0, both from
   `gym.make`, on the same seeds and the same random actions (so minigrid does identical work), and
   the cost of the text (goal: <= 10%);
2. the describer (`babyai_text.describe_view`, on the view minigrid already encoded) against a
   straightforward per-cell Python describer (`babyai_text.reference`, which walks the same view
   with `grid.get` and the visibility mask), on the same views; both must give identical sentences
   (goal: >= 1.5x).

Times are this process's CPU time (`time.process_time`), rounds alternate the contenders, and the
best round counts: that damps the noise of a shared CPU. Takes well under a minute on one core.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import babyai_text
import gymnasium as gym
import numpy as np
from babyai_text import describe_view
from babyai_text.reference import reference_describe

# --- the baseline: the per-cell reference describer ------------------------------------------
baseline_describe = reference_describe


def _clock() -> float:
    # CPU time of this process: other processes on a shared machine do not inflate it
    return time.process_time()


# --- 1. env steps/s ----------------------------------------------------------------------------
def run_env(env_id: str, actions: np.ndarray, seed: int) -> float:
    env = gym.make(env_id)
    # minigrid prints every rejected layout; send both contenders' chatter to the same sink
    with contextlib.redirect_stdout(io.StringIO()):
        env.reset(seed=seed)
        episode = 0
        start = _clock()
        for a in actions:
            _, _, terminated, truncated, _ = env.step(int(a))
            if terminated or truncated:
                episode += 1
                env.reset(seed=seed + episode)
        elapsed = _clock() - start
    env.close()
    return len(actions) / elapsed


# --- 2. describer --------------------------------------------------------------------------------
def collect_views(n: int, seed: int):
    env = gym.make("BabyAI-GoToLocal-v0").unwrapped
    rng = np.random.default_rng(seed)
    views = []
    with contextlib.redirect_stdout(io.StringIO()):
        env.reset(seed=seed)
        for t in range(n):
            grid, vis = env.gen_obs_grid()
            views.append((grid, vis, grid.encode(vis)))
            # mostly move and turn, sometimes pick up / drop / toggle
            action = int(rng.choice(6, p=[0.25, 0.25, 0.35, 0.05, 0.05, 0.05]))
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset(seed=seed + t + 1)
    return views


def time_describers(views) -> tuple[float, float]:
    start = _clock()
    for _, _, image in views:
        describe_view(image)
    ours = _clock() - start
    start = _clock()
    for grid, vis, _ in views:
        baseline_describe(grid, vis)
    base = _clock() - start
    return ours / len(views), base / len(views)


def _rounds(values: list[float]) -> str:
    return ", ".join(f"{x:.0f}" for x in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4000, help="env steps per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (best counts)")
    parser.add_argument("--views", type=int, default=3000, help="views for the describer timing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"babyai-text {babyai_text.__version__}, gymnasium {gym.__version__}")
    actions = np.random.default_rng(args.seed).integers(0, 6, size=args.steps)
    raw_id, text_id = "BabyAI-GoToLocal-v0", "BabyAI-Text-GoToLocal-v0"
    run_env(text_id, actions[:200], args.seed)  # warm the describer's memo and imports
    raw, text = [], []
    for r in range(args.rounds):
        order = [(raw_id, raw), (text_id, text)]
        for env_id, out in order if r % 2 == 0 else order[::-1]:
            out.append(run_env(env_id, actions, args.seed))
    raw_sps, text_sps = max(raw), max(text)
    cost = raw_sps / text_sps - 1
    print(f"\n1. env steps/s, {args.steps} random-action steps x {args.rounds} rounds (best round)")
    print(f"   {raw_id:28s} {raw_sps:9.0f} steps/s   (rounds: {_rounds(raw)})")
    print(f"   {text_id:28s} {text_sps:9.0f} steps/s   (rounds: {_rounds(text)})")
    print(
        f"   text cost: {cost * 100:+.1f}% time per step (ratio raw/text {raw_sps / text_sps:.3f});"
        f" goal <= +10%: {'met' if cost <= 0.10 else 'NOT met'}"
    )

    views = collect_views(args.views, args.seed)
    identical = all(describe_view(im) == baseline_describe(g, v) for g, v, im in views)
    ours, base = [], []
    for _ in range(args.rounds):
        o, b = time_describers(views)
        ours.append(o)
        base.append(b)
    speedup = min(base) / min(ours)
    print(f"\n2. describer, {len(views)} GoToLocal views x {args.rounds} rounds (best round)")
    print(f"   babyai_text.describe_view (minigrid's encoded view) {min(ours) * 1e6:7.2f} us/view")
    print(f"   baseline per-cell Python describer (grid + mask)    {min(base) * 1e6:7.2f} us/view")
    print(f"   identical sentences on every view: {identical}")
    print(f"   speedup: {speedup:.1f}x; goal >= 1.5x: {'met' if speedup >= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
