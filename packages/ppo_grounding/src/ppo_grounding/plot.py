"""Learning curves of one or more runs as a PNG: success rate against frames and minutes."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

from llm_policy.atomic import atomic_write_bytes

from .metrics import METRICS_FILE, read_metrics

REQUIRED_COLUMNS = ("charts/frames", "time/elapsed_s")
"""The x axes: every row needs them (the other curves show a gap where a value is missing)."""


def plot_runs(
    run_dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    baselines: dict[str, float] | None = None,
) -> Path:
    """Write success rate vs frames and vs minutes (and return, KL, entropy) for each run to `out`.

    baselines: optional horizontal lines, e.g. {"random agent": 0.26}.
    """
    # matplotlib is the optional `plot` extra: imported only when a figure is drawn
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
        _check_required_columns(run_dir, rows)
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
    # Drawn in memory, then published whole: an interrupted plot leaves no truncated image.
    image = io.BytesIO()
    fig.savefig(image, dpi=110, format=out.suffix.lstrip(".").lower() or None)
    plt.close(fig)
    atomic_write_bytes(out, image.getvalue())
    return out


def _check_required_columns(run_dir: str | os.PathLike, rows: Sequence[dict]) -> None:
    """Refuse, by file, row and column, a row without an x-axis value: a file edited by hand or
    written by another tool would otherwise end in a bare KeyError from deep in the plotting."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / METRICS_FILE
    for number, row in enumerate(rows, start=1):
        for column in REQUIRED_COLUMNS:
            if row.get(column) is None:
                raise ValueError(
                    f"{path}: row {number} (update {row.get('update')}) has no {column!r} "
                    f"column, which the plot needs in every row ({', '.join(REQUIRED_COLUMNS)}); "
                    "the file was edited or written by another tool: restore the row, or remove "
                    "it to plot the others."
                )


def _value(row: dict, name: str) -> float:
    """A metric of one row; NaN where it was not defined (written as null)."""
    value = row.get(name)
    return float("nan") if value is None else value
