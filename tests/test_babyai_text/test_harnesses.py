"""babyai-text as third-party harnesses use it: BALROG-style task factories, num_dists=0 on every
ID, minigrid's own env tests, action names given as a list."""

from __future__ import annotations

import pickle

import babyai_text
import gymnasium as gym
import numpy as np
import pytest
from babyai_text import ORIGINAL_TASK_NAMES, expert_action
from babyai_text.env import LEVEL_ATTRIBUTES, _load
from babyai_text.levels import canonical_task
from gymnasium.utils.env_checker import data_equivalence
from minigrid.core.world_object import Ball, Key
from minigrid.minigrid_env import MiniGridEnv

from .conftest import ALL_IDS, PAPER_IDS

MIXED_ORIGINAL_IDS = ["BabyAI-MixedTrainLocal-v0", "BabyAI-MixedTestLocal-v0"]
# the goals a BALROG-style harness asks for: the original's spelling, spaces as underscores
GOALS = ["goto", "pickup", "putnext", "open", "pick_up_seq_go_to"]
MAX_MAKES = 300
"""Envs a factory may make before the test gives up; each kind comes out 1 time in 5, so this
bound fails by chance with probability 0.8**300 (1e-29), while a factory that never finds its
kind (the bug) stops here instead of hanging."""


@pytest.fixture
def original_ids():
    """The original's IDs (`register_original_ids`), removed again after the test."""
    added = babyai_text.register_original_ids()
    yield
    for env_id in added:
        del gym.registry[env_id]


def task_factory(env_id: str, goal: str, **kwargs) -> tuple[gym.Env | None, int]:
    """What BALROG's task factory does: make envs until `action_kinds[0]` names the goal,
    read right after `gym.make`, before any reset. Returns (env or None, envs made)."""
    for made in range(1, MAX_MAKES + 1):
        env = gym.make(env_id, **kwargs)
        if env.unwrapped.action_kinds[0].replace(" ", "_") == goal:
            return env, made
        env.close()
    return None, MAX_MAKES


def play_expert(env, seed: int) -> tuple[dict, float, bool]:
    """One episode driven by the expert: (reset info, last reward, terminated)."""
    _, info = env.reset(seed=seed)
    while True:
        _, reward, terminated, truncated, _ = env.step(expert_action(env))
        if terminated or truncated:
            return info, reward, terminated


# -- BALROG's task factory ------------------------------------------------------------------------
@pytest.mark.parametrize("goal", GOALS)
@pytest.mark.parametrize("env_id", MIXED_ORIGINAL_IDS)
def test_task_factory_finds_every_kind_under_the_original_ids(original_ids, env_id, goal):
    env, made = task_factory(env_id, goal, num_dists=0)
    assert env is not None, f"no {env_id} env with action_kinds[0] == {goal!r} in {made} makes"
    kinds = env.unwrapped.action_kinds
    assert kinds == [ORIGINAL_TASK_NAMES[canonical_task(goal)]]
    # the kind drawn at construction is every episode's, seeded or not
    for seed in (0, 1, None):
        info, reward, terminated = play_expert(env, seed)
        assert info["task"] == canonical_task(goal)
        assert env.unwrapped.action_kinds == kinds  # read after a reset: the same
        assert terminated and reward > 0
    env.close()


def test_original_ids_draw_the_kind_at_construction_unseeded(original_ids):
    kinds = set()
    for _ in range(60):
        env = gym.make("BabyAI-MixedTrainLocal-v0")
        (kind,) = env.unwrapped.action_kinds
        assert env.unwrapped.task == canonical_task(kind)  # known before the first reset
        # same seed, different envs: each keeps its own kind
        assert env.reset(seed=0)[1]["task"] == canonical_task(kind)
        kinds.add(kind)
        env.close()
    assert kinds == set(ORIGINAL_TASK_NAMES[t] for t in babyai_text.MIXED_TASKS)


@pytest.mark.parametrize("env_id", PAPER_IDS)
def test_action_kinds_never_name_a_kind_the_episodes_lack(make, env_id):
    env = make(env_id)
    kinds = env.unwrapped.action_kinds
    for seed in range(25):
        env.reset(seed=seed)
        assert env.unwrapped.action_kinds == kinds  # the same before and after resets
        assert ORIGINAL_TASK_NAMES[env.unwrapped.level.task] in kinds
        if len(kinds) == 1:
            assert ORIGINAL_TASK_NAMES[env.unwrapped.level.task] == kinds[0]


def test_task_factory_on_our_ids_needs_tasks_of_one_kind(make):
    env, made = task_factory("BabyAI-Text-MixedTestLocal-v0", "open", tasks=("open",))
    assert made == 1 and env.unwrapped.action_kinds == ["open"]
    assert {env.reset(seed=s)[1]["task"] for s in range(5)} == {"open"}
    env.close()


# -- num_dists=0 on every ID ----------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ALL_IDS)
def test_num_dists_0_resets_cleanly_or_is_refused_at_make(env_id):
    level = _load(gym.spec(env_id).kwargs["level"]).__name__
    try:
        env = gym.make(env_id, num_dists=0)
    except ValueError as error:
        # our error, naming the keyword and the level, raised at make
        assert "num_dists" in str(error) and level in str(error), str(error)
        return
    for seed in range(3):  # never a crash inside minigrid
        _, info = env.reset(seed=seed)
        assert info["num_dists"] == 0
        env.step(0)
    env.close()


@pytest.mark.parametrize(
    "env_id", ["BabyAI-Text-GoToLocal-v0", "BabyAI-Text-GoTo-v0", "BabyAI-Text-GoToObjMaze-v0"]
)
def test_num_dists_0_where_the_target_is_a_distractor_names_the_smallest_value(make, env_id):
    with pytest.raises(ValueError, match=r"num_dists must be an int in \[1, .*smallest valid"):
        gym.make(env_id, num_dists=0)
    env = make(env_id, num_dists=1)  # the smallest valid value plays
    info, reward, terminated = play_expert(env, seed=0)
    assert info["num_dists"] == 1 and terminated and reward > 0


def test_num_dists_0_is_valid_on_the_papers_distractor_levels(make):
    for env_id in PAPER_IDS:
        if env_id.endswith("PickupLocal-v0"):  # counts every object: at least 1
            with pytest.raises(ValueError, match=r"num_dists must be an int in \[1, 14\]"):
                gym.make(env_id, num_dists=0)
            continue
        env = make(env_id, num_dists=0)
        info, reward, terminated = play_expert(env, seed=0)
        assert info["num_dists"] == 0 and terminated and reward > 0


# -- minigrid's own env tests ---------------------------------------------------------------------
def test_every_public_minigrid_env_method_is_delegated():
    own = {"reset", "step", "render", "close", "metadata"}  # the text env's own
    public = {name for name in vars(MiniGridEnv) if not name.startswith("_")} - own
    assert public <= set(LEVEL_ATTRIBUTES), sorted(public - set(LEVEL_ATTRIBUTES))
    assert "reward_range" in LEVEL_ATTRIBUTES


def reset_with_empty_front(env) -> int:
    """Reset with the first seed whose cell in front of the agent is empty."""
    for seed in range(50):
        env.reset(seed=seed)
        if env.unwrapped.grid.get(*env.unwrapped.front_pos) is None:
            return seed
    raise AssertionError("no seed with an empty cell in front of the agent")


@pytest.mark.parametrize("env_id", ["BabyAI-Text-GoToLocal-v0", "BabyAI-Text-MixedTrainLocal-v0"])
def test_minigrid_env_methods_answer_for_the_level(make, env_id):
    env = make(env_id, render_mode="rgb_array")
    base = env.unwrapped
    reset_with_empty_front(env)
    level = base.level
    # pprint_grid: the level's picture, agent included
    picture = base.pprint_grid()
    assert picture == level.pprint_grid()
    assert len(picture.splitlines()) == level.height
    assert 2 * ">V<^"[level.agent_dir] in picture  # minigrid's arrow for the agent's heading
    assert env_id in str(base) and env_id in str(env)
    assert base.reward_range == level.reward_range == (0, 1)
    assert base.hash() == level.hash()
    assert np.array_equal(base.gen_obs()["image"], level.gen_obs()["image"])
    assert np.array_equal(env.render(), base.get_frame(level.highlight, level.tile_size))
    seen = [
        (x, y)
        for x in range(level.width)
        for y in range(level.height)
        if level.grid.get(x, y) is not None and base.in_view(x, y)
    ]
    assert [base.agent_sees(*p) for p in seen] == [level.agent_sees(*p) for p in seen]
    # put_obj: a ball in front of the agent, which the next description reports
    front = tuple(int(v) for v in base.front_pos)
    ball = Ball("purple")
    base.put_obj(ball, *front)
    assert level.grid.get(*front) is ball
    env.step(0)
    _, _, _, _, info = env.step(1)  # turn away and back: a fresh observation
    assert "You see a purple ball 1 step forward" in info["descriptions"]
    # place_obj and place_agent (RoomGrid's, as a BabyAI level has them) act on the level
    key = Key("blue")
    pos = base.place_obj(key)
    assert level.grid.get(*pos) is key
    pos = base.place_agent(0, 0)
    assert tuple(base.agent_pos) == tuple(level.agent_pos) == tuple(pos)


@pytest.mark.parametrize(
    "env_id", ["BabyAI-Text-GoToLocal-v0", "BabyAI-Text-MixedTrainLocal-v0", "BabyAI-Text-Synth-v0"]
)
def test_minigrid_env_tests_pass_on_our_ids(env_id):
    spec = gym.spec(env_id)
    # test_max_steps_argument: a fixed max_steps truncates there
    env = spec.make(max_steps=50)
    env.reset(seed=0)
    for step in range(1, 51):
        _, _, terminated, truncated, _ = env.step(4)
        assert not terminated and truncated == (step == 50)
    # test_pickle_env: a pickled env plays the same episode
    env = spec.make()
    copy = pickle.loads(pickle.dumps(env))
    assert data_equivalence(env.reset(seed=3), copy.reset(seed=3))
    assert data_equivalence(env.step(2), copy.step(2))
    # test_render_modes: every mode renders after a reset and a step
    for mode in env.metadata["render_modes"]:
        rendered = spec.make(render_mode=mode)
        rendered.reset(seed=0)
        rendered.step(rendered.action_space.sample())
        assert rendered.render() is not None
        rendered.close()
    env.close()


# -- action names given as a list -----------------------------------------------------------------
def test_action_names_as_a_list_of_phrases(make):
    phrases = ["left", "right", "forward", "grab", "put down", "use"]
    env = make("BabyAI-Text-GoToLocal-v0", action_names=phrases)
    assert env.unwrapped.action_names == phrases
    assert env.unwrapped.action_names_variant == "custom"
    assert env.action_space == gym.spaces.Discrete(6)
    env.reset(seed=0)
    env.step(2)
    # a variant's own phrases, as a list or a tuple, are that variant
    french = babyai_text.ACTION_NAMES["fr"]
    for given in (list(french), tuple(french)):
        env = make("BabyAI-Text-GoToLocal-v0", action_names=given)
        assert env.unwrapped.action_names_variant == "fr"
    # with extra actions after them
    env = make("BabyAI-Text-GoToLocal-v0", action_names=phrases, extra_actions=("sleep",))
    assert env.unwrapped.action_names == [*phrases, "sleep"]


@pytest.mark.parametrize(
    "bad",
    [
        ["turn left"],  # too few
        ["a", "b", "c", "d", "e", "e"],  # repeated
        ["a", "b", "c", "d", "e", ""],  # empty
        ["a", "b", "c", "d", "e", 6],  # not a phrase
        {"en": 1},  # unhashable, not a sequence of phrases
        "english",
    ],
)
def test_bad_action_names_get_our_error_never_a_type_error(bad):
    with pytest.raises(ValueError, match=r"action_names must be one of .* or a list of 6"):
        gym.make("BabyAI-Text-GoToLocal-v0", action_names=bad)
