"""The paper's levels: task draws, held-out pairs, time limits, keywords and their errors."""

from __future__ import annotations

import re
import warnings
from collections import Counter

import gymnasium as gym
import pytest
from babyai_text import HELD_OUT_PAIRS, MIXED_TASKS
from babyai_text.levels import max_num_dists
from minigrid.envs.babyai.core.verifier import ActionInstr, SeqInstr

COLORS = "red|green|blue|purple|yellow|grey"
TYPES = "key|ball|box"


def named_pairs(instr) -> list[tuple[str, str]]:
    """(colour, type) of every object description in an instruction tree."""
    if isinstance(instr, SeqInstr):
        return named_pairs(instr.instr_a) + named_pairs(instr.instr_b)
    assert isinstance(instr, ActionInstr)
    descs = [getattr(instr, a) for a in ("desc", "desc_move", "desc_fixed") if hasattr(instr, a)]
    return [(d.color, d.type) for d in descs]


def room_objects(level, room=(0, 0)):
    r = level.get_room(*room)
    return [
        level.grid.get(x, y)
        for x in range(r.top[0] + 1, r.top[0] + r.size[0] - 1)
        for y in range(r.top[1] + 1, r.top[1] + r.size[1] - 1)
        if level.grid.get(x, y) is not None
    ]


def test_mixed_draws_the_task_at_every_reset_from_the_seeded_rng(make):
    env = make("BabyAI-Text-MixedTrainLocal-v0")
    tasks = [env.reset(seed=s)[1]["task"] for s in range(200)]
    assert set(tasks) == set(MIXED_TASKS)
    assert [env.reset(seed=s)[1]["task"] for s in range(200)] == tasks  # same seed, same task
    # one env does not keep one task for life: unseeded resets keep drawing
    env.reset(seed=0)
    assert len({env.reset()[1]["task"] for _ in range(50)}) == len(MIXED_TASKS)
    # the task is in every step's info too, and on the env
    obs, info = env.reset(seed=3)
    _, _, _, _, step_info = env.step(0)
    assert step_info["task"] == info["task"] == env.unwrapped.task


@pytest.mark.parametrize("tasks", [("goto", "open"), ("putnext",), "pickup_then_goto"])
def test_tasks_keyword_restricts_the_kinds(make, tasks):
    env = make("BabyAI-Text-MixedTestLocal-v0", tasks=tasks)
    wanted = {tasks} if isinstance(tasks, str) else set(tasks)
    assert {env.reset(seed=s)[1]["task"] for s in range(60)} == wanted


@pytest.mark.slow
def test_train_and_test_held_out_pairs_never_overlap(make):
    train = make("BabyAI-Text-MixedTrainLocal-v0").unwrapped
    test = make("BabyAI-Text-MixedTestLocal-v0").unwrapped
    train_missions, test_missions = set(), set()
    kinds = Counter()
    for seed in range(3000):
        train.reset(seed=seed)
        test.reset(seed=seed)
        kinds[test.task] += 1
        assert not set(named_pairs(train.level.instrs)) & HELD_OUT_PAIRS, train.mission
        assert set(named_pairs(test.level.instrs)) <= HELD_OUT_PAIRS, test.mission
        train_missions.add(train.mission)
        test_missions.add(test.mission)
    assert not train_missions & test_missions
    assert set(kinds) == set(MIXED_TASKS)
    # every held-out pair is used by the test set
    used = {p for m in test_missions for p in HELD_OUT_PAIRS if f"{p[0]} {p[1]}" in m}
    assert used == HELD_OUT_PAIRS


@pytest.mark.parametrize(
    "task, max_steps, width",
    [
        ("goto", 64, 8),
        ("pickup", 64, 8),
        ("putnext", 128, 8),
        ("open", 128, 15),
        ("pickup_then_goto", 128, 8),
    ],
)
def test_mixed_layout_and_time_limit_per_task(make, task, max_steps, width):
    env = make("BabyAI-Text-MixedTrainLocal-v0", tasks=(task,))
    for seed in range(20):
        env.reset(seed=seed)
        level = env.unwrapped.level
        assert level.max_steps == max_steps
        assert level.grid.width == width
        objs = room_objects(level)
        assert len(objs) == 8  # num_dists counts every object of the agent's room
        doors = [level.grid.get(7, y) for y in range(1, 7)]
        doors = [d for d in doors if d is not None and d.type == "door"]
        if task == "open":
            (door,) = doors
            assert door.is_locked
            assert any(o.type == "key" and o.color == door.color for o in objs)
            assert env.unwrapped.mission == f"open the {door.color} door"
            assert door.color not in ("red", "grey")  # held out for the test set
            assert level.get_room(0, 0).pos_inside(*level.agent_pos)
        else:
            assert not doors


@pytest.mark.parametrize(
    "env_id, pattern",
    [
        ("PickupLocal", rf"pick up (the|a) ({COLORS}) ({TYPES})$"),
        (
            "PickUpThenGoToLocal",
            rf"pick up (the|a) ({COLORS}) ({TYPES}), then go to (the|a) "
            rf"({COLORS}) ({TYPES})$",
        ),
        (
            "GoToAfterPickUpLocal",
            rf"go to (the|a) ({COLORS}) ({TYPES}) after you pick up (the|a) "
            rf"({COLORS}) ({TYPES})$",
        ),
        (
            "PickUpSeqPickUpLocal",
            rf"pick up (the|a) ({COLORS}) ({TYPES})(, then| after you) "
            rf"pick up (the|a) ({COLORS}) ({TYPES})$",
        ),
    ],
)
def test_paper_level_missions(make, env_id, pattern):
    env = make(f"BabyAI-Text-{env_id}-v0")
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        assert re.match(pattern, obs["mission"]), obs["mission"]
        assert len(room_objects(env.unwrapped.level)) == 8


def test_pickup_seq_goto_uses_both_forms(make):
    env = make("BabyAI-Text-PickUpSeqGoToLocal-v0")
    missions = [env.reset(seed=s)[0]["mission"] for s in range(40)]
    assert any(", then go to" in m for m in missions)
    assert any(" after you pick up" in m for m in missions)


def test_articles_follow_duplicates(make):
    env = make("BabyAI-Text-PickupLocal-v0")
    seen = set()
    for seed in range(100):
        obs, _ = env.reset(seed=seed)
        level = env.unwrapped.level
        color, type_ = obs["mission"].split()[-2:]
        n = sum(o.color == color and o.type == type_ for o in room_objects(level))
        assert obs["mission"].startswith("pick up the " if n == 1 else "pick up a ")
        seen.add(n > 1)
    assert seen == {True, False}


@pytest.mark.parametrize("num_dists", [2, 5, 12])
def test_num_dists_keyword(make, num_dists):
    env = make("BabyAI-Text-MixedTrainLocal-v0", num_dists=num_dists)
    obs, info = env.reset(seed=0)
    assert info["num_dists"] == num_dists == env.unwrapped.num_dists
    assert env.spec.kwargs["num_dists"] == num_dists
    for seed in range(10):
        env.reset(seed=seed)
        assert len(room_objects(env.unwrapped.level)) == num_dists


def test_num_dists_on_minigrid_levels(make):
    env = make("BabyAI-Text-GoToLocal-v0", num_dists=3)
    assert env.reset(seed=0)[1]["num_dists"] == 3
    assert len(room_objects(env.unwrapped.level)) == 3


@pytest.mark.parametrize(
    "env_id, kwargs, match",
    [
        ("BabyAI-Text-PickupLocal-v0", {"num_dists": 0}, r"num_dists must be an int in \[1, 14\]"),
        ("BabyAI-Text-PickUpSeqGoToLocal-v0", {"num_dists": 1}, r"in \[2, 14\]"),
        ("BabyAI-Text-MixedTrainLocal-v0", {"num_dists": max_num_dists(8) + 1}, r"in \[2, 14\]"),
        ("BabyAI-Text-PickupLocal-v0", {"num_dists": 2.5}, "num_dists must be"),
        ("BabyAI-Text-GoToLocal-v0", {"num_dists": -1}, "non-negative int"),
        ("BabyAI-Text-GoToLocal-v0", {"num_dists": 40}, r"in \[0, 14\] for GoToLocal"),
        (
            "BabyAI-Text-OpenRedDoor-v0",
            {"num_dists": 3},
            r"does not take the keyword\(s\) \['num_dists'\]",
        ),
        ("BabyAI-Text-GoToLocal-v0", {"language": "de"}, r"language must be one of \('en', 'fr'\)"),
        (
            "BabyAI-Text-GoToLocal-v0",
            {"action_names": "es"},
            r"action_names must be one of \('en', 'fr', 'synonyms'\)",
        ),
        (
            "BabyAI-Text-MixedTrainLocal-v0",
            {"tasks": ("goto", "fly")},
            r"tasks must be a non-empty subset of \('goto', 'pickup', 'putnext', 'open', "
            r"'pickup_then_goto'\)",
        ),
        ("BabyAI-Text-MixedTrainLocal-v0", {"tasks": ()}, "non-empty subset"),
        (
            "BabyAI-Text-GoToLocal-v0",
            {"render_mode": "svg"},
            r"render_mode must be one of \['rgb_array', 'ansi'\]",
        ),
    ],
)
def test_bad_keywords_list_the_valid_values(env_id, kwargs, match):
    with warnings.catch_warnings(), pytest.raises(ValueError, match=match):
        warnings.simplefilter("ignore")  # gym.make's own warning about an unknown render_mode
        gym.make(env_id, **kwargs)


def test_generation_chatter_never_reaches_stdout(capsys):
    # GoToObjDoor and PutNextLocalS5N3 reject often; minigrid prints each rejection
    for env_id in [
        "BabyAI-Text-GoToObjDoor-v0",
        "BabyAI-Text-PutNextLocalS5N3-v0",
        "BabyAI-Text-GoToSeq-v0",
        "BabyAI-Text-MixedTestLocal-v0",
    ]:
        env = gym.make(env_id)
        for seed in range(30):
            env.reset(seed=seed)
        assert env.unwrapped.level.__class__.__name__
    assert capsys.readouterr().out == ""


def test_paper_levels_count_rejections_instead_of_printing(make):
    env = make("BabyAI-Text-MixedTrainLocal-v0", tasks=("putnext",), num_dists=12)
    total = 0
    for seed in range(20):
        env.reset(seed=seed)
        total += env.unwrapped.level.rejections
    assert total > 0  # 12 objects in 36 cells: some layouts are rejected, silently


def test_single_room_levelgen_with_a_locked_room_is_refused():
    from babyai_text import BabyAITextEnv

    levelgen = "minigrid.envs.babyai.core.levelgen:LevelGen"
    with pytest.raises(ValueError, match="needs locked_room_prob=0"):
        BabyAITextEnv(levelgen, num_rows=1, num_cols=1)  # minigrid's default 0.5 never returns
    env = BabyAITextEnv(levelgen, num_rows=1, num_cols=1, locked_room_prob=0, num_dists=4)
    obs, _ = env.reset(seed=0)
    assert obs["mission"]
