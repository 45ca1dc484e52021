"""The prompt readers that benchmarks/reactive_rules.py and sentence_selection.py build their
figures on: which sentence names the goal, which action its direction words call for, and the
prompt cut down to that sentence."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from reactive_rules import GO_FORWARD, TURN_LEFT, TURN_RIGHT, direction_action, goal_sentence  # noqa: E402
from sentence_selection import only_goal_sentence  # noqa: E402

PROMPT = (
    "Possible action of the agent: turn left, turn right, go forward, pick up, drop, toggle\n"
    "Goal of the agent: go to the red key\n"
    "Observation 0: You see a wall 1 step left, You see a red box 1 step right, "
    "You see a red key 3 steps left and 2 steps forward, You see a red key 2 steps right,\n"
    "Action 0:"
)


def test_goal_sentence_is_the_nearest_that_names_the_goal_object():
    target, sentences = goal_sentence(PROMPT)
    assert target == "You see a red key 2 steps right"
    assert len(sentences) == 4


def test_goal_sentence_none_when_out_of_view():
    prompt = PROMPT.replace("go to the red key", "go to the blue ball")
    assert goal_sentence(prompt)[0] is None


@pytest.mark.parametrize(
    ("sentence", "action"),
    [
        ("You see a red key 2 steps right", TURN_RIGHT),
        ("You see a red key 1 step left", TURN_LEFT),
        ("You see a red key 3 steps left and 2 steps forward", GO_FORWARD),
        ("You see a red key 1 step forward", GO_FORWARD),
    ],
)
def test_direction_action(sentence, action):
    assert direction_action(sentence) == action


def test_only_goal_sentence_keeps_everything_but_the_other_sentences():
    cut = only_goal_sentence(PROMPT)
    assert cut.splitlines()[:2] == PROMPT.splitlines()[:2]
    assert cut.splitlines()[2] == "Observation 0: You see a red key 2 steps right,"
    assert cut.endswith("\nAction 0:")
    out_of_view = only_goal_sentence(PROMPT.replace("red key", "blue ball", 1))
    assert out_of_view.splitlines()[2] == "Observation 0: "
