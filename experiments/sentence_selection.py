"""Is finding the goal's sentence what the offline model fails to learn? Cloning with and without it.

    python experiments/sentence_selection.py                       # GoToLocal, 60,000 expert steps
    python experiments/sentence_selection.py --epochs 2 --learning-rate 1e-3

The expert plays the level; the offline preset's policy (a fresh copy per row) is fitted to its
actions by behaviour cloning (ppo-grounding's `clone_epoch`) on two versions of the same prompts:

- full prompt: what the policy sees in training, every sentence of the observation;
- goal sentence only: the observation cut down to the sentence that names the goal object (the
  nearest, as `ppo_grounding.rule_agents.goal_sentence` finds it; empty when the goal is out of view).

Then, on expert steps from other seeds, it prints how often the policy's most likely action equals
the expert's, by where the goal object is (as in `imitation_probe.py`). If the second row learns
the turns at once and the first does not, what the model is slow to learn is to pick the goal's
sentence among the others, not to turn toward a side it has read. Takes about 8 minutes on 2
cores (one epoch).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import tyro
from babyai_text import ACTION_NAMES
from imitation_probe import PROBE_SEED_OFFSET, expert_steps, goal_position, top_actions
from llm_policy import LLMPolicy
from ppo_grounding import offline_preset
from ppo_grounding.imitation import DEMO_SEED_OFFSET, Demonstrations, clone_epoch
from ppo_grounding.rule_agents import only_goal_sentence

POSITIONS = ("forward", "forward+left", "forward+right", "left", "right", "not in view")


@dataclass
class Args:
    env_id: str = "BabyAI-Text-GoToLocal-v0"
    """A GoTo level."""
    demo_frames: int = 60_000
    """Expert steps to clone."""
    epochs: int = 1
    """Passes over them."""
    probe_frames: int = 4_000
    """Expert steps, on other seeds, to measure the cloned policies on."""
    learning_rate: float | None = None
    """Adam learning rate (default: the offline preset's warm-start rate)."""
    seed: int = 1


def accuracy_by_position(policy, prompts, expert, names, positions):
    """Share of steps where the policy's top action is the expert's: overall and by position."""
    correct = top_actions(policy, prompts, names) == expert
    hits: dict[str, list[bool]] = defaultdict(list)
    for position, ok in zip(positions, correct, strict=True):
        hits[position].append(bool(ok))
    return float(correct.mean()), {p: float(np.mean(v)) for p, v in hits.items()}


def main(args: Args) -> None:
    config = offline_preset()
    config.env.env_id = args.env_id
    config.env.num_observations = 1
    names = list(ACTION_NAMES["en"])
    lr = args.learning_rate or config.warm_start.learning_rate
    demos = expert_steps(config, args.demo_frames, args.seed + DEMO_SEED_OFFSET, names)
    probe = expert_steps(config, args.probe_frames, args.seed + PROBE_SEED_OFFSET, names)
    positions = [goal_position(p) for p in probe.prompts]
    share = {p: positions.count(p) / len(positions) for p in POSITIONS}
    print(
        f"{args.env_id}, {config.policy.model}: {len(demos)} expert steps x {args.epochs} epochs, lr {lr:g}, "
        f"minibatch {config.ppo.minibatch_size}; {len(probe)} held-out expert steps"
    )
    header = "".join(f"{p:>15}" for p in POSITIONS)
    print(f"  {'prompt':<20}{'minutes':>8}{'all':>7}{header}")
    print(
        f"  {'(share of steps)':<20}{'':>8}{'':>7}"
        + "".join(f"{share[p]:>15.1%}" for p in POSITIONS)
    )
    variants: dict[str, Callable[[str], str]] = {
        "full prompt": lambda p: p,
        "goal sentence only": only_goal_sentence,
    }
    for label, view in variants.items():
        torch.manual_seed(args.seed)
        policy = LLMPolicy(config.policy)
        optimizer = torch.optim.Adam(policy.trainable_parameters(), lr=lr, eps=config.ppo.adam_eps)
        shown = Demonstrations(
            [view(p) for p in demos.prompts], demos.actions, demos.returns, demos.frames
        )
        start = time.perf_counter()
        shuffle = torch.Generator().manual_seed(args.seed)
        for _ in range(args.epochs):
            clone_epoch(
                policy,
                optimizer,
                shown,
                names,
                minibatch_size=config.ppo.minibatch_size,
                value_coef=config.warm_start.value_coef,
                max_grad_norm=config.ppo.max_grad_norm,
                generator=shuffle,
            )
        minutes = (time.perf_counter() - start) / 60
        overall, by_position = accuracy_by_position(
            policy, [view(p) for p in probe.prompts], probe.actions.numpy(), names, positions
        )
        cells = "".join(f"{by_position.get(p, float('nan')):>15.2f}" for p in POSITIONS)
        print(f"  {label:<20}{minutes:>8.1f}{overall:>7.3f}{cells}", flush=True)
    print("  (share of held-out steps where the policy's most likely action is the expert's)")


if __name__ == "__main__":
    main(tyro.cli(Args))
