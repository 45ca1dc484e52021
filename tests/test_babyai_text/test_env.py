"""The env's contract: observation, info, actions and their names, rendering, RNG."""

from __future__ import annotations

import babyai_text
import gymnasium as gym
import numpy as np
import pytest
from babyai_text import ACTION_NAMES, LANGUAGES, BabyAITextEnv
from babyai_text.lexicon import vocabulary
from babyai_text.spaces import TextSpace
from gymnasium import spaces

from .conftest import PAPER_IDS


def test_module_level_names():
    assert LANGUAGES == ("en", "fr")
    assert set(ACTION_NAMES) == {"en", "fr", "synonyms"}
    assert ACTION_NAMES["en"] == (
        "turn left",
        "turn right",
        "go forward",
        "pick up",
        "drop",
        "toggle",
    )
    assert ACTION_NAMES["fr"] == (
        "tourner à gauche",
        "tourner à droite",
        "aller tout droit",
        "attraper",
        "lâcher",
        "basculer",
    )
    assert ACTION_NAMES["synonyms"] == (
        "rotate left",
        "rotate right",
        "move ahead",
        "take",
        "release",
        "switch",
    )


def test_observation_and_info(make):
    env = make("BabyAI-Text-GoToLocal-v0")
    space = env.observation_space
    assert isinstance(space, spaces.Dict) and set(space) == {"mission", "text"}
    assert all(isinstance(space[k], spaces.Text) and isinstance(space[k], TextSpace) for k in space)
    assert env.action_space == spaces.Discrete(6)
    obs, info = env.reset(seed=1)
    assert set(obs) == {"mission", "text"}
    assert obs["mission"] == env.unwrapped.mission == env.unwrapped.level.mission
    assert obs["text"].splitlines() == info["descriptions"]
    assert obs["text"] == "\n".join(info["descriptions"])
    assert info["num_dists"] == 8
    assert info["mission_en"] == obs["mission"]
    for action in [0, 2, 2, 1, 3, 4, 5]:
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
        assert obs["text"].splitlines() == info["descriptions"]
        assert obs in space
        assert isinstance(reward, float)
        assert "task" not in info  # only the Mixed levels draw a task
        assert info["mission_en"] == obs["mission"]


def test_empty_description_is_an_empty_string(make):
    env = make("BabyAI-Text-OneRoomS20-v0").unwrapped
    env.reset(seed=0)
    level = env.level
    for x in range(1, level.width - 1):
        for y in range(1, level.height - 1):
            level.grid.set(x, y, None)
    level.agent_pos, level.agent_dir = (10, 10), 3  # no wall within 6 cells ahead or 3 aside
    obs, _, _, _, info = env.step(4)  # drop, with empty hands: changes nothing
    assert info["descriptions"] == [] and obs["text"] == ""
    assert obs in env.observation_space


def test_symbolic_observation(make):
    env = make("BabyAI-Text-GoToLocal-v0", symbolic=True)
    assert set(env.observation_space) == {"mission", "text", "image", "direction"}
    assert env.observation_space["image"] == spaces.Box(0, 255, (7, 7, 3), np.uint8)
    assert env.observation_space["direction"] == spaces.Discrete(4)
    obs, _ = env.reset(seed=0)
    level = env.unwrapped.level
    np.testing.assert_array_equal(obs["image"], level.gen_obs()["image"])
    assert obs["direction"] == level.agent_dir
    assert obs in env.observation_space


@pytest.mark.parametrize(
    "kwargs, names",
    [
        ({}, ACTION_NAMES["en"]),
        ({"language": "fr"}, ACTION_NAMES["fr"]),
        ({"action_names": "synonyms"}, ACTION_NAMES["synonyms"]),
        ({"language": "fr", "action_names": "en"}, ACTION_NAMES["en"]),
    ],
)
def test_action_names(make, kwargs, names):
    env = make("BabyAI-Text-PickupLocal-v0", **kwargs)
    assert env.unwrapped.action_names == list(names)
    assert isinstance(env.unwrapped.action_names, list)
    # index i is minigrid action i
    actions = env.unwrapped.level.actions
    assert [
        int(a)
        for a in (
            actions.left,
            actions.right,
            actions.forward,
            actions.pickup,
            actions.drop,
            actions.toggle,
        )
    ] == list(range(6))


@pytest.mark.parametrize(
    "action", [6, -1, 2.0, "go forward", None, np.float32(1), True, np.bool_(False)]
)
def test_invalid_actions_get_a_clear_error(action):
    env = BabyAITextEnv("minigrid.envs.babyai:GoToLocal")
    env.reset(seed=0)
    match = r"invalid action .*expected an int in \[0, 6\).*'turn left'"
    with pytest.raises(ValueError, match=match):
        env.step(action)


@pytest.mark.parametrize("action", [np.int64(2), np.array(2), np.uint8(1)])
def test_integer_like_actions(action):
    env = BabyAITextEnv("minigrid.envs.babyai:GoToLocal")
    env.reset(seed=0)
    env.step(action)


def test_step_before_reset():
    env = BabyAITextEnv("minigrid.envs.babyai:GoToLocal")
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)


@pytest.mark.parametrize("end", ["terminated", "truncated"])
def test_stepping_an_ended_episode_needs_a_reset(make, end):
    env = make("BabyAI-Text-GoToLocal-v0")
    env.reset(seed=0)
    if end == "truncated":
        env.unwrapped.max_steps = 3
    done = False
    while not done:
        action = env.unwrapped.expert_action() if end == "terminated" else 0
        _, reward, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    assert (terminated, truncated) == ((True, False) if end == "terminated" else (False, True))
    with pytest.raises(gym.error.ResetNeeded, match="episode has ended"):
        env.step(0)
    env.reset(seed=1)
    env.step(0)  # a reset starts the next one


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"symbolic": "no"}, "symbolic must be True or False"),
        ({"symbolic": 1}, "symbolic must be True or False"),
        ({"agent_view_size": 6}, "agent_view_size must be an odd int >= 3"),
        ({"agent_view_size": True}, "agent_view_size must be an odd int >= 3"),
        ({"agent_view_size": 7.0}, "agent_view_size must be an odd int >= 3"),
        ({"extra_actions": "sleep"}, "extra_actions must be a sequence of non-empty phrases"),
        ({"extra_actions": ("sleep", "sleep")}, "repeats action phrases"),
        ({"extra_actions": ("toggle",)}, "repeats action phrases"),
    ],
)
def test_keywords_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BabyAITextEnv("minigrid.envs.babyai:GoToLocal", **kwargs)


def test_a_room_too_small_for_its_objects_is_refused_at_construction():
    # 8 objects in a 5x5 room (9 free cells) would make every reset spin forever
    with pytest.raises(ValueError, match=r"num_dists must be an int in \[1, 3\] for GoToLocal"):
        BabyAITextEnv("minigrid.envs.babyai:GoToLocal", room_size=5)
    with pytest.raises(ValueError, match=r"in \[0, 4\] for MixedTrainLocal"):
        gym.make("BabyAI-Text-MixedTrainLocal-v0", room_size=6)
    env = BabyAITextEnv("minigrid.envs.babyai:GoToLocal", room_size=5, num_dists=3)
    env.reset(seed=0)  # within the bound: generates


def test_agent_view_size_keyword(make):
    env = make("BabyAI-Text-GoToLocal-v0", agent_view_size=5, symbolic=True)
    obs, info = env.reset(seed=0)
    assert obs["image"].shape == (5, 5, 3) and obs in env.observation_space
    assert info["descriptions"] == babyai_text.describe_view(obs["image"])


def test_extra_actions_are_done_and_change_nothing(make):
    env = make("BabyAI-Text-GoToLocal-v0", extra_actions=("sleep", "think"))
    assert env.action_space == spaces.Discrete(8)
    assert env.unwrapped.action_names == [*ACTION_NAMES["en"], "sleep", "think"]
    assert make("BabyAI-Text-GoToLocal-v0").action_space == spaces.Discrete(6)  # the default
    obs, _ = env.reset(seed=3)
    level = env.unwrapped.level
    for action in (6, 7, 6):
        before = (level.agent_pos, level.agent_dir, level.carrying, level.grid.encode().tobytes())
        obs2, reward, terminated, truncated, _ = env.step(action)
        assert env.unwrapped.last_action == 6  # minigrid's `done`
        after = (level.agent_pos, level.agent_dir, level.carrying, level.grid.encode().tobytes())
        assert after == before and obs2 == obs and reward == 0.0
        assert not terminated and not truncated
    # the expert follows: a whole episode with useless actions mixed in still succeeds
    done, t = False, 0
    while not done:
        suggested = env.unwrapped.expert_action()  # asked every step, followed 2 times in 3
        action = suggested if t % 3 else 7
        _, reward, terminated, truncated, _ = env.step(action)
        done, t = terminated or truncated, t + 1
    assert terminated and reward > 0
    with pytest.raises(ValueError, match=r"expected an int in \[0, 8\).*7='think'"):
        env.unwrapped.step(8)


def test_french_observation(make):
    env = make("BabyAI-Text-GoToLocal-v0", language="fr")
    obs, info = env.reset(seed=0)
    assert obs["mission"].startswith("va vers ")
    assert all(s.startswith(("Tu vois ", "Tu portes ")) for s in info["descriptions"])
    assert obs in env.observation_space


def test_render_modes(make):
    env = make("BabyAI-Text-GoToLocal-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    env = make("BabyAI-Text-GoToLocal-v0", render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert env.render() == obs["mission"] + "\n" + obs["text"]
    obs, *_ = env.step(1)
    assert env.render() == obs["mission"] + "\n" + obs["text"]


def test_one_rng_shared_with_the_level(make):
    env = make("BabyAI-Text-GoToLocal-v0").unwrapped
    env.reset(seed=4)
    assert env.np_random is env.level.np_random is env._np_random
    assert env.np_random_seed == 4
    rng = np.random.default_rng(1)
    env.np_random = rng
    assert env.level.np_random is rng


def test_constructor_from_class_or_string():
    from minigrid.envs.babyai import GoToLocal

    a = BabyAITextEnv(GoToLocal, num_dists=2)
    b = BabyAITextEnv("minigrid.envs.babyai:GoToLocal", num_dists=2)
    assert a.reset(seed=1)[0] == b.reset(seed=1)[0]
    with pytest.raises(ValueError, match="module:Class"):
        BabyAITextEnv("minigrid.envs.babyai.GoToLocal")
    with pytest.raises(ValueError, match="RoomGridLevel subclass"):
        BabyAITextEnv("minigrid.envs:DoorKeyEnv")


@pytest.mark.parametrize(
    "env_id", PAPER_IDS + ["BabyAI-Text-BossLevel-v0", "BabyAI-Text-GoToSeq-v0"]
)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_emitted_word_is_in_the_vocabulary(env_id, language):
    words = set(vocabulary(language))
    env = gym.make(env_id, language=language)
    rng = np.random.default_rng(0)
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        for _ in range(30):
            text = obs["mission"] + " " + obs["text"]
            tokens = text.replace(",", " ").split()
            assert {t for t in tokens if not t.isdigit()} <= words, text
            obs, *_ = env.step(int(rng.integers(0, 6)))
    assert babyai_text.vocabulary(language) == sorted(words)
