"""Metric names: CleanRL's `charts/episodic_length` is written, and files from before the rename
(`charts/episode_length`) still read, plot and resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import ppo_grounding.metrics
import pytest
from ppo_grounding import PPOTrainer
from ppo_grounding.metrics import MetricsLogger, read_metrics
from ppo_grounding.plot import plot_runs

from .helpers import tiny_config

README = Path(ppo_grounding.__file__).parents[2] / "README.md"


def write_rows(run: Path, rows: list[dict]) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def old_row(update: int, length: float) -> dict:
    """A row as runs wrote it before the rename, with the columns the plot reads."""
    return {
        "update": update,
        "charts/frames": 16 * update,
        "time/elapsed_s": 2.0 * update,
        "charts/success_rate": 0.5,
        "charts/episode_length": length,
        "losses/entropy": 1.7,
        "losses/approx_kl": 0.01,
    }


def test_a_run_logs_cleanrls_episodic_length(tmp_path):
    config = tiny_config(tmp_path / "run", num_steps=16, total_frames=32)  # one update
    config.env.env_id = "BabyAI-Text-GoToObjS4-v0"  # every episode ends within 16 steps
    PPOTrainer(config).train()
    row = read_metrics(tmp_path / "run")[0]
    assert 1 <= row["charts/episodic_length"] <= 16
    written = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert '"charts/episodic_length"' in written and "episode_length" not in written


def test_an_old_file_reads_under_the_new_name(tmp_path):
    write_rows(tmp_path / "run", [old_row(1, 7.0), old_row(2, 9.5)])
    rows = read_metrics(tmp_path / "run")
    assert [r["charts/episodic_length"] for r in rows] == [7.0, 9.5]
    assert all("charts/episode_length" not in r for r in rows)


def test_a_row_with_both_names_keeps_the_new_one(tmp_path):
    write_rows(tmp_path / "run", [{**old_row(1, 7.0), "charts/episodic_length": 8.0}])
    (row,) = read_metrics(tmp_path / "run")
    assert row["charts/episodic_length"] == 8.0 and "charts/episode_length" not in row


def test_an_old_file_plots(tmp_path):
    write_rows(tmp_path / "run", [old_row(1, 7.0), old_row(2, 9.5)])
    assert plot_runs([tmp_path / "run"], tmp_path / "curve.png").stat().st_size > 0


def test_resuming_an_old_run_rewrites_its_kept_rows_under_the_new_name(tmp_path):
    write_rows(tmp_path / "run", [old_row(1, 7.0), old_row(2, 9.5), old_row(3, 4.0)])
    MetricsLogger(tmp_path / "run", tensorboard=False, keep_until_update=2).close()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["charts/episodic_length"] for line in lines] == [7.0, 9.5]


def table_names(text: str) -> list[str]:
    """The metric names of a markdown table (first column), backticks dropped."""
    return [
        name.strip("`")
        for name in re.findall(r"^\| *(`?[a-z_]+/[^ |]+`?) *\|", text, re.M)
        if "/" in name
    ]


@pytest.mark.parametrize("text", ["docstring", "readme"])
def test_the_metric_tables_use_cleanrls_name(text):
    source = ppo_grounding.metrics.__doc__ if text == "docstring" else README.read_text()
    names = table_names(source)
    assert "charts/episodic_length" in names and "charts/episode_length" not in names


def test_the_readme_and_the_module_document_the_same_metrics():
    documented = set(table_names(ppo_grounding.metrics.__doc__))
    readme = set(table_names(README.read_text()))
    # the module's table leaves out the CUDA-only peak memory
    assert documented == readme
