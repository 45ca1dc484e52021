"""ppo_grounding.rule_agents: the prompt readers and the hand-written GoTo agent built on them
(which sentence names the goal, which action its direction words call for, the prompt cut down to
that sentence)."""

from __future__ import annotations

import pytest
from ppo_grounding import evaluate
from ppo_grounding.rule_agents import (
    GO_FORWARD,
    TURN_LEFT,
    TURN_RIGHT,
    DirectionRuleAgent,
    direction_action,
    goal_sentence,
    offsets,
    only_goal_sentence,
    read_prompt,
)

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


def test_offsets_and_read_prompt():
    assert offsets("You see a red key 3 steps left and 2 steps forward") == {
        "left": 3,
        "forward": 2,
    }
    assert offsets("You see a wall 1 step right") == {"right": 1}
    goal, sentences = read_prompt(PROMPT)
    assert goal == "red key"
    assert sentences[0] == "You see a wall 1 step left"
    with pytest.raises(ValueError, match="not a GoTo prompt"):
        read_prompt("Goal of the agent: pick up the red key\nObservation 0: You see a wall,")


def test_obstacle_in_front_makes_the_agent_turn_toward_the_goal():
    prompt = PROMPT.replace(
        "Observation 0: You see a wall 1 step left, You see a red box 1 step right, "
        "You see a red key 3 steps left and 2 steps forward, You see a red key 2 steps right,",
        "Observation 0: You see a red box 1 step forward, "
        "You see a red key 1 step right and 2 steps forward,",
    )
    assert DirectionRuleAgent().act(prompt) == GO_FORWARD
    assert DirectionRuleAgent(avoid_obstacles=True).act(prompt) == TURN_RIGHT
    assert DirectionRuleAgent().act(PROMPT.replace("red key", "blue ball", 1)) == TURN_LEFT


def test_noise_draws_only_navigation_moves_and_is_validated():
    agent = DirectionRuleAgent(noise=1.0, seed=0)
    actions = agent([PROMPT] * 300, ["a"] * 6)
    assert set(actions.tolist()) == {TURN_LEFT, TURN_RIGHT, GO_FORWARD}
    with pytest.raises(ValueError, match="noise=1.5"):
        DirectionRuleAgent(noise=1.5)


def test_direction_rule_solves_the_fixed_goal_level():
    """Played by evaluate on held-out seeds: on GoToRedBallNoDists the rule always succeeds."""
    result = evaluate(
        DirectionRuleAgent(), "BabyAI-Text-GoToRedBallNoDists-v0", episodes=20, num_observations=1
    )
    assert result.episodes == 20 and result.successes == 20
