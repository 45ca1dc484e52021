"""The generalisation suite writes its tables after each (test, agent), atomically: an
interrupted suite keeps what it finished, and the same command continues it, playing only what
is missing, into the same tables a run without interruption writes."""

import json

import numpy as np
import pytest
from ppo_grounding import suite
from ppo_grounding.cli import _model_identity
from ppo_grounding.evaluate import evaluate as real_evaluate

from .helpers import save_tagged_checkpoint

ENV = "BabyAI-Text-GoToRedBallNoDists-v0"
SETTINGS = {"model": {"source": "always-forward"}, "episodes": 2}


def always_forward(prompts, action_names):
    """A deterministic agent: its rows do not depend on which tests ran before."""
    return np.full(len(prompts), action_names.index("go forward"))


class Interrupted(Exception):
    """Stands for Ctrl-C in the middle of a test (pytest treats a real KeyboardInterrupt as the
    end of the session)."""


def play(out, monkeypatch, *, stop_at=None, settings=SETTINGS, episodes=2):
    """run_suite into `out`; the labels of the evaluations played. `stop_at`: the label whose
    evaluation is interrupted."""
    played = []

    def spy(agent, env_id, **kwargs):
        if kwargs["label"] == stop_at:
            raise Interrupted
        played.append(kwargs["label"])
        return real_evaluate(agent, env_id, **kwargs)

    monkeypatch.setattr(suite, "evaluate", spy)
    output = suite.SuiteOutput(out, settings, heading="# test")
    rows = suite.run_suite(
        always_forward,
        env_id=ENV,
        tests="baseline,new_nouns",
        baselines="random",
        episodes=episodes,
        num_envs=2,
        output=output,
    )
    return played, rows, output


def test_an_interrupted_suite_keeps_its_rows_and_the_rerun_plays_only_the_rest(
    tmp_path, monkeypatch
):
    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        play(out, monkeypatch, stop_at="new_nouns (random)")
    table = (out / "generalisation.csv").read_text().splitlines()
    assert [line.split(",")[:3] for line in table[1:]] == [
        ["baseline", "all", "policy"],
        ["baseline", "all", "random"],
        ["new_nouns", "all", "policy"],
    ]
    assert "| new_nouns | all |" in (out / "generalisation.md").read_text()
    assert json.loads((out / suite.RESULTS_FILE).read_text())["settings"] == SETTINGS

    played, rows, output = play(out, monkeypatch)
    assert played == ["new_nouns (random)"]
    assert output.note.startswith("continuing from") and "3 (test, agent) pair(s)" in output.note
    fresh = tmp_path / "fresh"
    assert play(fresh, monkeypatch)[0] == [
        "baseline (policy)", "baseline (random)", "new_nouns (policy)", "new_nouns (random)"
    ]  # fmt: skip
    for name in ("generalisation.csv", "generalisation.md", suite.RESULTS_FILE):
        assert (out / name).read_text() == (fresh / name).read_text()


def test_rows_of_other_settings_are_played_again(tmp_path, monkeypatch):
    out = tmp_path / "out"
    play(out, monkeypatch)
    other = {**SETTINGS, "episodes": 3}
    played, rows, output = play(out, monkeypatch, settings=other, episodes=3)
    assert len(played) == 4 and "other settings" in output.note
    assert {r.result.episodes for r in rows} == {3}
    assert json.loads((out / suite.RESULTS_FILE).read_text())["settings"] == other


def test_a_run_is_identified_by_its_latest_checkpoint_and_manifest(tmp_path):
    save_tagged_checkpoint(tmp_path, 1)
    first = _model_identity(str(tmp_path))
    assert first["source"].endswith("update_000001") and len(first["manifest_sha256"]) == 64
    save_tagged_checkpoint(tmp_path, 2)
    assert _model_identity(str(tmp_path)) != first  # the run went on: its rows are not reused
    assert _model_identity("offline-gpt2") == {"source": "offline-gpt2"}
