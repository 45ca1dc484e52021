"""Success of minigrid's BabyAIBot (through `babyai_text.expert_action`) on every BabyAI-Text level.

    .venv/bin/python benchmarks/bot_success.py [--paper-seeds 250] [--seeds 30] [--max-steps 1000]

Seeds 0..N-1 per level (`--paper-seeds` for the paper's local levels, `--seeds` for minigrid's
levels), each episode capped at `--max-steps` steps on top of the level's own time limit. An
episode succeeds when its return is > 0 (the paper's success criterion). Prints a Markdown table (level, episodes,
success, mean steps of the successes, why the failures failed) and the levels below 100%; the
package README pastes its output. One process, about two minutes of CPU.
"""

from __future__ import annotations

import argparse
import collections
import time

import babyai_text
import gymnasium as gym
from babyai_text import expert_action


def run_level(env_id: str, seeds: range, max_steps: int) -> dict:
    env = gym.make(env_id)
    expert = None
    successes, steps_ok, reasons = 0, [], collections.Counter()
    for seed in seeds:
        env.reset(seed=seed)
        reward, steps, done = 0.0, 0, False
        while not done and steps < max_steps:
            _, reward, terminated, truncated, _ = env.step(expert_action(env))
            steps += 1
            done = terminated or truncated
        expert = env.unwrapped._expert
        if reward > 0:
            successes += 1
            steps_ok.append(steps)
        elif expert is not None and expert.gave_up:
            reasons[expert.error.split(":")[0][:60]] += 1
        elif not done:
            reasons["step cap"] += 1
        else:
            reasons["timeout" if truncated else "failed"] += 1
    env.close()
    return {
        "episodes": len(seeds),
        "success": successes / len(seeds),
        "mean_steps": sum(steps_ok) / len(steps_ok) if steps_ok else float("nan"),
        "reasons": reasons,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paper-seeds", type=int, default=250)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--only", nargs="*", default=None, help="level IDs (default: all)")
    args = parser.parse_args()

    paper = {babyai_text.registration.TEXT_PREFIX + s for s in babyai_text.PAPER_LEVELS}
    ids = args.only or babyai_text.registered_ids()
    start = time.process_time()
    rows = []
    print("| level | episodes | success | mean steps (successes) | failures |")
    print("|---|---|---|---|---|")
    for env_id in ids:
        n = args.paper_seeds if env_id in paper else args.seeds
        r = run_level(env_id, range(n), args.max_steps)
        rows.append((env_id, r))
        why = ", ".join(f"{k} x{v}" for k, v in r["reasons"].most_common()) or ""
        print(
            f"| {env_id} | {r['episodes']} | {r['success']:.1%} | {r['mean_steps']:.1f} | {why} |",
            flush=True,
        )
    failing = [(i, r) for i, r in rows if r["success"] < 1.0]
    print(f"\nlevels below 100%: {len(failing)} of {len(rows)}")
    for env_id, r in failing:
        print(f"  {env_id}: {r['success']:.1%}")
    low = [i for i, r in rows if i in paper and r["success"] < 0.99]
    print(f"paper levels below 99%: {low or 'none'}")
    print(f"CPU time: {time.process_time() - start:.0f} s")


if __name__ == "__main__":
    main()
