"""Word substitutions: exact prompts (golden strings), the same words in every observation of an
episode, and nothing changed outside the text the policy reads."""

import re

import babyai_text  # noqa: F401
import gymnasium as gym
import numpy as np
import pytest
from ppo_grounding.evaluate import evaluate
from ppo_grounding.substitutions import (
    COLOUR_SYNONYMS,
    INVENTED_ADJECTIVES,
    INVENTED_NOUNS,
    NEW_NOUNS,
    SubstituteWords,
    WordMap,
    rephrased_template,
)
from ppo_grounding.suite import DEFAULT_ENV_ID, TESTS

SEED = 1_000_001  # MixedTrainLocal: "put a green box next to a grey key", balls, keys and a box in view

ACTIONS = "Possible action of the agent: turn left, turn right, go forward, pick up, drop, toggle"
OBSERVATION = (
    "Observation 0: You see a wall 2 steps left, You see a {grey} {ball} 4 steps forward, "
    "You see a {red} {ball} 2 steps forward, You see a {grey} {key} 1 step right and 2 steps "
    "forward, You see a {red} {key} 3 steps right and 3 steps forward, You see a {blue} {box} "
    "3 steps right and 2 steps forward,"
)
GOAL = "Goal of the agent: put a {green} {box} next to a {grey} {key}"
SAME = dict(red="red", green="green", blue="blue", grey="grey", key="key", ball="ball", box="box")


def golden(goal=GOAL, actions=ACTIONS, **words):
    w = {**SAME, **words}
    return "\n".join([actions, goal.format(**w), OBSERVATION.format(**w), "Action 0:"])


GOLDEN = {
    "baseline": golden(),
    "new_nouns": golden(key="chair", ball="table", box="car"),
    "colour_synonyms": golden(red="vermilion", green="jade", blue="cyan", grey="silver"),
    "invented_nouns": golden(key="dax", ball="xolo", box="afze"),
    "invented_adjectives": golden(red="plok", green="vask", blue="zorb", grey="snib"),
    "invented_nouns_and_adjectives": golden(
        red="plok", green="vask", blue="zorb", grey="snib", key="dax", ball="xolo", box="afze"
    ),
    "goal_i_would_like": golden(
        goal="I would like the agent to put a {green} {box} next to a {grey} {key}"
    ),
    "goal_you_have_to": golden(goal="You have to put a {green} {box} next to a {grey} {key}"),
    "synonym_actions": golden(
        actions="Possible action of the agent: rotate left, rotate right, move ahead, take, "
        "release, switch"
    ),
    "french": (
        "Actions possibles de l'agent: tourner à gauche, tourner à droite, aller tout droit, "
        "attraper, lâcher, basculer\n"
        "But de l'agent: pose une boîte verte à côté d'une clef grise\n"
        "Observation 0: Tu vois un mur à 2 pas à gauche, Tu vois une balle grise 4 pas devant, "
        "Tu vois une balle rouge 2 pas devant, Tu vois une clef grise 1 pas à droite et 2 pas "
        "devant, Tu vois une clef rouge 3 pas à droite et 3 pas devant, Tu vois une boîte bleue "
        "3 pas à droite et 2 pas devant,\n"
        "Action 0:"
    ),
}


class Recorder:
    """An agent that turns left forever and keeps every prompt it is shown."""

    def __init__(self):
        self.prompts = []

    def __call__(self, prompts, action_names):
        self.prompts.extend(prompts)
        return np.zeros(len(prompts), dtype=int)


def prompts_of(test_name, num_observations=1):
    test = TESTS[test_name]
    agent = Recorder()
    evaluate(
        agent,
        test.env(DEFAULT_ENV_ID),
        episodes=1,
        seed_offset=SEED,
        num_envs=1,
        num_observations=num_observations,
        **test.evaluate_kwargs(),
    )
    return agent.prompts


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_first_prompt_of_each_test_is_exact(name):
    assert prompts_of(name)[0] == GOLDEN[name]


def test_word_maps_are_the_papers():
    assert NEW_NOUNS == {"key": "chair", "ball": "table", "box": "car"}
    assert COLOUR_SYNONYMS == {
        "red": "vermilion",
        "green": "jade",
        "blue": "cyan",
        "purple": "violet",
        "yellow": "golden",
        "grey": "silver",
    }
    assert set(INVENTED_NOUNS) == {"key", "ball", "box"}
    assert set(INVENTED_ADJECTIVES) == set(COLOUR_SYNONYMS)
    invented = [*INVENTED_NOUNS.values(), *INVENTED_ADJECTIVES.values()]
    assert len(set(invented)) == len(invented)
    assert not set(invented) & set(babyai_text.vocabulary("en"))


def test_whole_words_case_and_articles():
    words = WordMap({**INVENTED_NOUNS, "red": "plok"})
    assert words("pick up a box, then go to the Key") == "pick up an afze, then go to the Dax"
    assert (
        words("A box. KEY keys monkey boxer red-ball") == "An afze. DAX keys monkey boxer plok-xolo"
    )
    assert words("an red box") == "a plok afze"  # the article agrees with the new word
    assert WordMap({})("You see a red key") == "You see a red key"
    with pytest.raises(ValueError, match="one word to one word"):
        WordMap({"key": "door key"})


def test_rephrased_goal_line_only_changes_that_line():
    template = rephrased_template("you_have_to")
    assert template.goal_line == "You have to {goal}"
    assert template.actions_line == rephrased_template("i_would_like").actions_line
    assert rephrased_template("Please {goal}").goal_line == "Please {goal}"
    with pytest.raises(ValueError, match="needs a \\{goal\\} field"):
        rephrased_template("Go somewhere")


def test_every_prompt_of_an_episode_uses_the_new_words_and_only_them():
    baseline = prompts_of("baseline", num_observations=3)
    nouns = prompts_of("new_nouns", num_observations=3)
    # the agent ignores the text, so both played the same episode step by step
    assert len(baseline) == len(nouns) > 10
    to_new = WordMap(NEW_NOUNS)
    for old, new in zip(baseline, nouns, strict=True):
        assert new == to_new(old)
        assert not re.search(r"\b(key|ball|box)\b", new)
    assert any("chair" in p for p in nouns) and any("table" in p for p in nouns)


def test_the_env_underneath_is_untouched():
    """The expert solves the substituted env exactly as the plain one: the level's real mission
    drives the reward; only obs["mission"], obs["text"] and info["descriptions"] change."""
    words = WordMap({**NEW_NOUNS, **COLOUR_SYNONYMS})

    def play(env):
        obs, info = env.reset(seed=SEED)
        texts, rewards = [(obs, info)], []
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(env.unwrapped.expert_action())
            texts.append((obs, info))
            rewards.append(reward)
            done = terminated or truncated
        return texts, rewards, env

    plain_texts, plain_rewards, _ = play(gym.make(DEFAULT_ENV_ID))
    env = SubstituteWords(gym.make(DEFAULT_ENV_ID, render_mode="ansi"), words)
    new_texts, new_rewards, env = play(env)
    assert new_rewards == plain_rewards and new_rewards[-1] > 0
    assert env.unwrapped.mission == "put a green box next to a grey key"
    assert env.unwrapped.action_names == list(babyai_text.ACTION_NAMES["en"])
    assert env.render() == plain_texts[-1][0]["mission"] + "\n" + plain_texts[-1][0]["text"]
    for (old, old_info), (new, new_info) in zip(plain_texts, new_texts, strict=True):
        assert new["mission"] == words(old["mission"]) == "put a jade car next to a silver chair"
        assert new["text"] == words(old["text"])
        assert new_info["descriptions"] == [words(s) for s in old_info["descriptions"]]
        assert new_info["task"] == old_info["task"] == "putnext"
