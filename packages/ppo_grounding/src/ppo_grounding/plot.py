"""Learning curves of one or more runs as a PNG: success rate against frames and minutes."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from llm_policy.atomic import atomic_write_bytes
from llm_policy.small_files import MAX_CONFIG_BYTES, read_small_json

from .checkpoint import CONFIG_FILE
from .metrics import METRICS_FILE, read_metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REQUIRED_COLUMNS = ("charts/frames", "time/elapsed_s")
"""The x axes: every row needs them (the other curves show a gap where a value is missing)."""


def plot_runs(
    run_dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    baselines: dict[str, float] | None = None,
) -> Path:
    """Write the learning curves of `run_dirs` (`learning_curves`) to the image file `out`."""
    fig = learning_curves(run_dirs, baselines=baselines)
    import matplotlib.pyplot as plt  # after learning_curves chose the Agg backend

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Drawn in memory, then published whole: an interrupted plot leaves no truncated image.
    image = io.BytesIO()
    try:
        fig.savefig(image, dpi=110, format=out.suffix.lstrip(".").lower() or None)
    finally:
        plt.close(fig)
    atomic_write_bytes(out, image.getvalue())
    return out


def learning_curves(
    run_dirs: Sequence[str | os.PathLike], *, baselines: dict[str, float] | None = None
) -> Figure:
    """Success rate vs frames and vs minutes, entropy and KL vs frames, for each run.

    baselines: optional horizontal lines on the success panels, e.g. {"uniform random": 0.26,
    "blind walk": 0.49}. The title names the env and model of the runs (from each run's
    config.json, when they share them); the legend sits below the panels, clear of the curves.
    """
    # matplotlib is the optional `plot` extra: imported only when a figure is drawn
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = []
    for run_dir in run_dirs:
        rows = read_metrics(run_dir)
        if not rows:
            raise ValueError(
                f"{run_dir}: metrics.jsonl has no rows yet; train for at least one update."
            )
        _check_required_columns(run_dir, rows)
        runs.append((Path(run_dir).name, rows))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), layout="constrained")
    for label, rows in runs:
        frames = [r["charts/frames"] for r in rows]
        minutes = [r["time/elapsed_s"] / 60 for r in rows]
        success = [_value(r, "charts/success_rate") for r in rows]
        axes[0, 0].plot(frames, success, label=label)
        axes[0, 1].plot(minutes, success)
        axes[1, 0].plot(frames, [_value(r, "losses/entropy") for r in rows])
        axes[1, 1].plot(frames, [_value(r, "losses/approx_kl") for r in rows])
    styles = ["--", ":", "-.", (0, (5, 1))]
    for k, (name, value) in enumerate((baselines or {}).items()):
        style = styles[k % len(styles)]
        axes[0, 0].axhline(value, linestyle=style, color="grey", label=f"{name} ({value:.2f})")
        axes[0, 1].axhline(value, linestyle=style, color="grey")
    success_label = "success rate (last 100 episodes)"
    axes[0, 0].set(xlabel="frames", ylabel=success_label, ylim=(-0.02, 1.02))
    axes[0, 1].set(xlabel="minutes", ylabel=success_label, ylim=(-0.02, 1.02))
    axes[1, 0].set(xlabel="frames", ylabel="policy entropy")
    axes[1, 1].set(xlabel="frames", ylabel="approx KL", yscale="log")
    for ax in axes.flat:
        ax.set_xlim(left=0)  # from the start: success is not defined for the first episodes
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=8)
    setups = {_setup(run_dir) for run_dir in run_dirs}
    if len(setups) == 1 and (setup := setups.pop()) is not None:
        fig.suptitle("  ·  ".join(setup))
    return fig


def _setup(run_dir: str | os.PathLike) -> tuple[str, str] | None:
    """(env ID, model) from a run's config.json; None where it has none or it cannot be read
    (the curves do not need it)."""
    try:
        config = read_small_json(Path(run_dir) / CONFIG_FILE, MAX_CONFIG_BYTES)
        env_id, model = config["env"]["env_id"], config["policy"]["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (env_id, model) if isinstance(env_id, str) and isinstance(model, str) else None


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
