"""Learning curves of one or more runs as a PNG: success rate against frames and minutes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .metrics import read_metrics


def plot_runs(
    run_dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    baselines: dict[str, float] | None = None,
) -> Path:
    """Write success rate vs frames and vs minutes (and return, KL, entropy) for each run to `out`.

    baselines: optional horizontal lines, e.g. {"random agent": 0.26}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    for run_dir in run_dirs:
        rows = read_metrics(run_dir)
        if not rows:
            raise ValueError(
                f"{run_dir}: metrics.jsonl has no rows yet; train for at least one update."
            )
        label = Path(run_dir).name
        frames = [r["charts/frames"] for r in rows]
        minutes = [r["time/elapsed_s"] / 60 for r in rows]
        success = [_value(r, "charts/success_rate") for r in rows]
        axes[0, 0].plot(frames, success, label=label)
        axes[0, 1].plot(minutes, success, label=label)
        axes[1, 0].plot(frames, [_value(r, "losses/entropy") for r in rows], label=label)
        axes[1, 1].plot(frames, [_value(r, "losses/approx_kl") for r in rows], label=label)
    for name, value in (baselines or {}).items():
        for ax in axes[0]:
            ax.axhline(value, linestyle="--", color="grey", linewidth=1)
            ax.annotate(
                name,
                (0.01, value),
                xycoords=("axes fraction", "data"),
                fontsize=8,
                color="grey",
                va="bottom",
            )
    axes[0, 0].set(xlabel="frames", ylabel="success rate (last 100 episodes)", ylim=(-0.02, 1.02))
    axes[0, 1].set(xlabel="minutes", ylabel="success rate (last 100 episodes)", ylim=(-0.02, 1.02))
    axes[1, 0].set(xlabel="frames", ylabel="policy entropy")
    axes[1, 1].set(xlabel="frames", ylabel="approx KL", yscale="log")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _value(row: dict, name: str) -> float:
    """A metric of one row; NaN where it was not defined (written as null)."""
    value = row.get(name)
    return float("nan") if value is None else value
