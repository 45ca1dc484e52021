"""Behaviour cloning of the expert as a baseline: the warm start alone, saved as a run checkpoint.

`clone_expert` builds a `PPOTrainer` and runs only its warm start (imitation.warm_start), which
checkpoints update 0; no PPO update runs. What it leaves is an ordinary run directory:

    <output_dir>/config.json  metrics.jsonl (empty)  warm_start.json
    <output_dir>/checkpoints/update_000000/  (policy/, optimizer, rng, trainer_state.json, ...)

so `evaluate`/`load_policy` read it like any run, and PPO can continue it:

- the same run: `ppo-grounding train <the same options> --run.resume` (the same options include
  `--warm-start.demo-frames`; the warm start is not repeated because the checkpoint records its
  demo_frames);
- a new run from the cloned policy, with fresh counters and optimiser in another directory:
  `ppo-grounding train --run.init-from <output_dir> --run.output-dir NEW`, or
  `PPOTrainer(config)` with `config.run.init_from = <output_dir>`.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from ..checkpoint import latest_checkpoint
from ..config import TrainConfig
from ..trainer import PPOTrainer


def clone_expert(
    config: TrainConfig,
    demo_frames: int | None = None,
    epochs: int | None = None,
    output_dir: str | os.PathLike | None = None,
) -> Path:
    """Behaviour cloning of the expert on `demo_frames` expert steps for `epochs` passes (None:
    config.warm_start's), saved as update 0 of a run in `output_dir` (None: config.run.output_dir).

    Returns the checkpoint directory. `config` is not modified; the run's saved config is a copy
    with those values.
    """

    config = copy.deepcopy(config)
    if demo_frames is not None:
        config.warm_start.demo_frames = demo_frames
    if epochs is not None:
        config.warm_start.epochs = epochs
    if output_dir is not None:
        config.run.output_dir = str(output_dir)
    if config.warm_start.demo_frames < 1:
        raise ValueError(
            f"warm_start.demo_frames={config.warm_start.demo_frames}: behaviour cloning needs "
            "expert steps; pass demo_frames (e.g. 20000)."
        )
    if config.run.resume:
        raise ValueError("run.resume: clone_expert starts a new run; pass run.resume=False.")
    if config.run.init_from is not None:
        raise ValueError(
            "run.init_from: clone_expert starts from a fresh policy; pass run.init_from=None "
            "(and start a PPO run from the clone with run.init_from instead)."
        )
    with PPOTrainer(config) as trainer:
        trainer.warm_start()  # checkpoints update 0
    return latest_checkpoint(config.run.output_dir)
