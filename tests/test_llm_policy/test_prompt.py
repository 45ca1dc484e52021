import pytest
from llm_policy import (
    ENGLISH_ACTION_NAMES,
    FRENCH_ACTION_NAMES,
    PAPER_TEMPLATE,
    PromptTemplate,
    build_prompt,
)

OBS = [
    ["You see a wall 5 steps forward", "You see a blue key 1 step left and 2 steps forward"],
    ["You see a wall 4 steps forward", "You see a blue key 1 step left and 1 step forward"],
    ["You see a wall 3 steps forward", "You see a blue key 1 step left"],
]


def test_paper_format_exactly():
    prompt = build_prompt(
        "pick up the blue key", OBS, ["go forward", "go forward"], ENGLISH_ACTION_NAMES
    )
    assert prompt == (
        "Possible action of the agent: turn left, turn right, go forward, pick up, drop, toggle\n"
        "Goal of the agent: pick up the blue key\n"
        "Observation 0: You see a wall 5 steps forward, "
        "You see a blue key 1 step left and 2 steps forward,\n"
        "Action 0: go forward\n"
        "Observation 1: You see a wall 4 steps forward, "
        "You see a blue key 1 step left and 1 step forward,\n"
        "Action 1: go forward\n"
        "Observation 2: You see a wall 3 steps forward, You see a blue key 1 step left,\n"
        "Action 2:"
    )


def test_keeps_last_observations_and_actions_between_them():
    obs = [[f"s{i}"] for i in range(5)]
    acts = ["a0", "a1", "a2", "a3"]
    prompt = build_prompt("g", obs, acts, ["x"], num_observations=2)
    lines = prompt.split("\n")
    assert lines[2:] == ["Observation 0: s3,", "Action 0: a3", "Observation 1: s4,", "Action 1:"]
    # fewer observations than the window: all kept
    assert build_prompt("g", obs[:1], [], ["x"], num_observations=3).endswith(
        "Observation 0: s0,\nAction 0:"
    )
    one = build_prompt("g", obs, acts, ["x"], num_observations=1).split("\n")
    assert one[2:] == ["Observation 0: s4,", "Action 0:"]


def test_templates_languages_and_custom_callables():
    fr = build_prompt(
        "va à la boîte rouge",
        [["Tu vois un mur à 2 pas devant"]],
        [],
        FRENCH_ACTION_NAMES,
        template="fr",
    )
    assert fr.startswith("Actions possibles de l'agent: tourner à gauche, tourner à droite")
    assert fr.endswith("Action 0:")
    custom = PromptTemplate(
        goal_line="You have to {goal}", line_separator=" \n ", sentence_suffix=", "
    )
    text = build_prompt("open the door", [["a", "b"]], [], ["x"], template=custom)
    assert text.split(" \n ")[1] == "You have to open the door"
    assert text.split(" \n ")[2] == "Observation 0: a,  b,"

    seen = {}

    def fn(goal, observations, actions, names):
        seen.update(goal=goal, observations=observations, actions=actions, names=names)
        return "custom"

    assert (
        build_prompt(
            "g", [["o1"], ["o2"], ["o3"]], ["a1", "a2"], ["x"], num_observations=2, template=fn
        )
        == "custom"
    )
    assert seen["observations"] == [["o2"], ["o3"]] and seen["actions"] == ["a2"]
    # the "en" key and PAPER_TEMPLATE are the default wording
    default = build_prompt("g", [["o1"], ["o2"]], ["a1"], ["x", "y"])
    assert build_prompt("g", [["o1"], ["o2"]], ["a1"], ["x", "y"], template="en") == default
    assert build_prompt("g", [["o1"], ["o2"]], ["a1"], ["x", "y"], template=PAPER_TEMPLATE) == (
        "Possible action of the agent: x, y\nGoal of the agent: g\n"
        "Observation 0: o1,\nAction 0: a1\nObservation 1: o2,\nAction 1:"
    )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(observations=[]), ValueError, "at least the current observation"),
        (dict(observations=["You see a wall"]), TypeError, "list of\\s+sentences"),
        (dict(actions=["go forward"]), ValueError, "exactly one action"),
        (dict(action_names=[]), ValueError, "action_names"),
        (dict(num_observations=0), ValueError, "num_observations"),
        (dict(template="de"), ValueError, "unknown template"),
    ],
)
def test_bad_input_is_explained(kwargs, error, match):
    args = dict(goal="g", observations=[["o"]], actions=[], action_names=["x"])
    args.update(kwargs)
    goal, obs, acts, names = (
        args.pop("goal"),
        args.pop("observations"),
        args.pop("actions"),
        args.pop("action_names"),
    )
    with pytest.raises(error, match=match):
        build_prompt(goal, obs, acts, names, **args)
