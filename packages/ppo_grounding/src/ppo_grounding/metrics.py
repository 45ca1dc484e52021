"""Metrics of a run: one JSON line per update in metrics.jsonl, mirrored to TensorBoard.

Metric names are fixed, CleanRL's where CleanRL's ppo.py logs the same quantity (so its plotting
scripts read our runs); the README documents them in one table, with every difference from
CleanRL's names and meanings:

| name | meaning |
|---|---|
| charts/frames | environment steps so far, summed over envs |
| charts/episodes | episodes finished so far |
| charts/success_rate | success (return > 0) over the last 100 finished episodes |
| charts/episodic_return | mean unscaled return of the episodes finished in this rollout |
| charts/episodic_length | mean length of the episodes finished in this rollout |
| charts/SPS | environment steps per second of this update (rollout + update) |
| charts/learning_rate | learning rate used for this update |
| charts/action_frac/<name> | fraction of the rollout's actions that were <name> |
| losses/policy_loss | clipped surrogate loss (mean over minibatches) |
| losses/value_loss | value loss (mean over minibatches) |
| losses/entropy | policy entropy (mean over minibatches) |
| losses/approx_kl | KL(old, new) estimate, (ratio - 1) - log ratio, of the last minibatch |
| losses/old_approx_kl | the naive -log ratio estimate, of the last minibatch |
| losses/clipfrac | fraction of clipped ratios (mean over minibatches) |
| losses/explained_variance | how much of the returns' variance the rollout's values explain |
| losses/grad_norm | global gradient norm before clipping (mean over minibatches) |
| losses/minibatch_steps | optimiser steps taken (fewer than epochs x minibatches after a target-KL stop) |
| time/elapsed_s | wall-clock seconds of training so far |
| memory/device_peak_gib | CUDA runs only: peak allocated memory on the fullest device, GiB |
| memory/weights_and_adam_gib | weights and optimiser state one process holds (its shards with dist.shard), the fullest process, GiB |
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from llm_policy.atomic import atomic_write_text

METRICS_FILE = "metrics.jsonl"
SUCCESS_WINDOW = 100
"""charts/success_rate is measured over this many most recent episodes..."""
SUCCESS_MIN_EPISODES = 20
"""...once at least this many have finished (before, the few short episodes that end early are
mostly successes, and the rate would read high)."""


RENAMED = {"charts/episode_length": "charts/episodic_length"}
"""Old name -> today's, for metrics.jsonl files written before a rename: `read_metrics` gives
their rows today's names, so plots and resumes read old runs like new ones."""


def running_success_rate(returns) -> float:
    """Share of `returns` (the last SUCCESS_WINDOW episodes' returns) above 0, the success of a
    BabyAI episode; nan while fewer than SUCCESS_MIN_EPISODES have finished."""
    returns = list(returns)
    if len(returns) < SUCCESS_MIN_EPISODES:
        return float("nan")
    return sum(r > 0 for r in returns) / len(returns)


class MetricsLogger:
    """Appends one row per update to <output_dir>/metrics.jsonl, and to TensorBoard if asked."""

    def __init__(
        self,
        output_dir: str | os.PathLike,
        *,
        tensorboard: bool = True,
        keep_until_update: int | None = None,
    ) -> None:
        self.path = Path(output_dir) / METRICS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        if keep_until_update is not None and self.path.exists():
            # A resumed run drops the rows logged after its checkpoint: they are about to be redone.
            rows = [r for r in read_metrics(self.path) if r["update"] <= keep_until_update]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))
        self.writer = None
        if tensorboard:
            # TensorBoard's writer brings tensorboard and protobuf: only for runs that ask for it
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(output_dir) / "tensorboard"))

    def log(self, update: int, metrics: dict[str, float]) -> None:
        row = {"update": update, **{k: _plain(v) for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
        if self.writer is not None:
            step = int(metrics.get("charts/frames", update))
            for name, value in row.items():
                if name != "update" and value is not None:
                    self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl file (a run directory is accepted too)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: pass a run directory written by `ppo-grounding train`."
        )
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("update"), int):
                raise ValueError("not a row of metrics")
        except ValueError as error:
            if number == len(lines) or all(not rest.strip() for rest in lines[number:]):
                # the last line, cut short: a run killed while it was being written
                warnings.warn(
                    f"{path}: ignoring its last line, which is incomplete (the run was stopped "
                    "while writing it).",
                    MetricsWarning,
                    stacklevel=2,
                )
                break
            raise ValueError(
                f"{path}, line {number}, is not a row of metrics ({error}); the file was edited "
                "or damaged: remove that line, or restore the file."
            ) from None
        rows.append(_current_names(row))
    return rows


def _current_names(row: dict[str, Any]) -> dict[str, Any]:
    """`row` with its metrics under old names (RENAMED) moved to today's names; where a row has
    both, today's value is kept."""
    for old, new in RENAMED.items():
        if old in row:
            value = row.pop(old)
            row.setdefault(new, value)
    return row


class MetricsWarning(UserWarning):
    """metrics.jsonl ends with an incomplete line (ignored)."""


def _plain(value: Any) -> float | None:
    value = float(value)
    return None if value != value else value  # JSON has no NaN
