"""`--help` of the commands that build a TrainConfig lists `--preset`, which tyro never sees."""

from __future__ import annotations

import pytest
from ppo_grounding.cli import main
from ppo_grounding.config import PRESETS


def help_text(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # tyro wraps lines to the terminal


@pytest.mark.parametrize("command", ["train", "clone", "plan"])
def test_help_lists_every_preset_with_what_it_is_for(command, capsys):
    text = help_text([command, "--help"], capsys)
    assert "--preset NAME sets the defaults" in text and "those shown are offline's" in text
    assert "offline (default): The laptop default" in text
    assert "paper: The paper's setting: Flan-T5 780M" in text
    for name, make in PRESETS.items():  # a preset added later is listed too
        assert f"{name}" in text and " ".join(make.__doc__.split()[:5]) in text


def test_help_after_a_preset_shows_that_presets_defaults(capsys):
    text = help_text(["train", "--preset", "paper", "--help"], capsys)
    assert "those shown are paper's" in text
    assert "google/flan-t5-large" in text  # the paper preset's model as the default
