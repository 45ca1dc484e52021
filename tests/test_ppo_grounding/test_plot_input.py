"""`ppo-grounding plot` on metrics files it cannot plot: a message naming file, row and column."""

from __future__ import annotations

import json

import pytest
from ppo_grounding.cli import main
from ppo_grounding.plot import plot_runs


def row(update: int, **drop: bool) -> dict:
    """A metrics row as the trainer writes it (the columns the plot reads), minus `drop`."""
    full = {
        "update": update,
        "charts/frames": 16 * update,
        "time/elapsed_s": 3.0 * update,
        "charts/success_rate": 0.5,
        "losses/entropy": 1.7,
        "losses/approx_kl": 0.01,
    }
    return {k: v for k, v in full.items() if not drop.get(k.replace("/", "_"))}


def write_run(run, rows) -> None:
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_complete_rows_plot(tmp_path):
    write_run(tmp_path / "run", [row(1), row(2)])
    out = plot_runs([tmp_path / "run"], tmp_path / "curve.png")
    assert out.stat().st_size > 0


@pytest.mark.parametrize("column", ["charts/frames", "time/elapsed_s"])
def test_a_row_without_an_axis_column_is_named(tmp_path, column):
    write_run(tmp_path / "run", [row(1), row(2, **{column.replace("/", "_"): True}), row(3)])
    metrics = tmp_path / "run" / "metrics.jsonl"
    with pytest.raises(ValueError) as error:
        plot_runs([tmp_path / "run"], tmp_path / "curve.png")
    message = str(error.value)
    assert str(metrics) in message and "row 2 (update 2)" in message and repr(column) in message
    assert not (tmp_path / "curve.png").exists()
    # the command says it in one line, without a traceback
    with pytest.raises(SystemExit) as exit_:
        main(["plot", str(tmp_path / "run"), "--out", str(tmp_path / "curve.png")])
    assert str(exit_.value) == f"ppo-grounding plot: {message}"


def test_a_row_without_an_optional_curve_still_plots(tmp_path):
    # success rate, entropy and KL may be missing (a gap in their curve), as null already was
    write_run(tmp_path / "run", [row(1), row(2, losses_entropy=True, charts_success_rate=True)])
    assert plot_runs([tmp_path / "run"], tmp_path / "curve.png").stat().st_size > 0


def test_the_figure_names_env_and_model_and_keeps_the_legend_off_the_curves(tmp_path):
    from ppo_grounding.plot import learning_curves

    for name in ("a", "b"):
        write_run(tmp_path / name, [row(1), row(2)])
        config = {"env": {"env_id": "BabyAI-Text-GoToRedBall-v0"}, "policy": {"model": "m"}}
        (tmp_path / name / "config.json").write_text(json.dumps(config))
    fig = learning_curves(
        [tmp_path / "a", tmp_path / "b"], baselines={"uniform random": 0.25, "blind walk": 0.5}
    )
    assert fig._suptitle.get_text() == "BabyAI-Text-GoToRedBall-v0  ·  m"
    (legend,) = fig.legends  # one legend, the figure's, below the panels
    assert [t.get_text() for t in legend.get_texts()] == [
        "a",
        "b",
        "uniform random (0.25)",
        "blind walk (0.50)",
    ]
    assert all(not ax.get_legend() for ax in fig.axes)
    assert all(ax.get_xlim()[0] == 0 for ax in fig.axes)  # every panel from the start

    # runs of different envs: no common title
    config = {"env": {"env_id": "BabyAI-Text-GoToLocal-v0"}, "policy": {"model": "m"}}
    (tmp_path / "b" / "config.json").write_text(json.dumps(config))
    assert learning_curves([tmp_path / "a", tmp_path / "b"])._suptitle is None
