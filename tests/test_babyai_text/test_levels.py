"""The paper's levels: task draws, held-out pairs, time limits, keywords and their errors."""

from __future__ import annotations

import re
import warnings
from collections import Counter

import gymnasium as gym
import pytest
from babyai_text import HELD_OUT_PAIRS, MIXED_TASKS, ORIGINAL_TASK_NAMES
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


def agent_room(level):
    return level.room_from_pos(*level.agent_pos)


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
        assert level.max_steps == max_steps == env.unwrapped.max_steps
        assert level.grid.width == width
        doors = [level.grid.get(7, y) for y in range(1, 7)]
        doors = [d for d in doors if d is not None and d.type == "door"]
        if task == "open":
            (door,) = doors
            assert door.is_locked
            assert door.color not in ("red", "grey")  # held out for the test set
        else:
            assert not doors


# objects a task kind places besides its `num_dists` distractors (the original's rule)
EXTRA_OBJECTS = {"goto": 1, "pickup": 1, "putnext": 2, "open": 1, "pickup_then_goto": 2}


@pytest.mark.parametrize("num_dists", [0, 2, 8])
@pytest.mark.parametrize("split", ["Train", "Test"])
def test_object_counts_per_task_kind(make, num_dists, split):
    env = make(f"BabyAI-Text-Mixed{split}Local-v0", num_dists=num_dists)
    seen = Counter()
    for seed in range(150):
        _, info = env.reset(seed=seed)
        level, task = env.unwrapped.level, info["task"]
        seen[task] += 1
        room = agent_room(level)
        objs = [level.grid.get(x, y) for x in range(level.width) for y in range(level.height)]
        objs = [o for o in objs if o is not None and o.type in ("key", "ball", "box")]
        # every object stands in the agent's room, and there are num_dists + the task's own
        assert all(room.pos_inside(*o.cur_pos) for o in objs)
        assert len(objs) == len(room.objs) == num_dists + EXTRA_OBJECTS[task], (seed, task)
        if task == "open":
            (door,) = [d for d in room.doors if d is not None]
            assert door.is_locked and level.num_cols == 2
            assert any(o.type == "key" and o.color == door.color for o in objs)
            other = level.get_room(1 - room.top[0] // 7, 0)
            assert other is not room and not other.objs  # the locked room is empty
            assert door.color in (
                ("red", "grey") if split == "Test" else ("yellow", "green", "blue", "purple")
            )
        else:
            assert level.num_cols == 1
    assert set(seen) == set(MIXED_TASKS)


@pytest.mark.parametrize(
    "env_id, extra",
    [
        ("PickUpSeqGoToLocal", 2),
        ("PickUpThenGoToLocal", 2),
        ("GoToAfterPickUpLocal", 2),
        ("PickUpSeqPickUpLocal", 2),
        ("PickupLocal", 0),  # the original's level-generator level: num_dists is every object
    ],
)
@pytest.mark.parametrize("num_dists", [0, 2, 8])
def test_object_counts_of_the_single_task_levels(make, env_id, extra, num_dists):
    if env_id == "PickupLocal" and num_dists == 0:
        with pytest.raises(ValueError, match=r"num_dists must be an int in \[1, 14\]"):
            make(f"BabyAI-Text-{env_id}-v0", num_dists=0)
        return
    env = make(f"BabyAI-Text-{env_id}-v0", num_dists=num_dists)
    for seed in range(40):
        env.reset(seed=seed)
        level = env.unwrapped.level
        assert len(room_objects(level)) == num_dists + extra
        # the named objects are among them
        present = {(o.color, o.type) for o in room_objects(level)}
        assert set(named_pairs(level.instrs)) <= present


def test_open_mission_names_the_colour_half_the_time_at_train_time_always_at_test(make):
    named = Counter()
    for split in ("Train", "Test"):
        env = make(f"BabyAI-Text-Mixed{split}Local-v0", tasks=("open",))
        sides = set()
        for seed in range(200):
            obs, _ = env.reset(seed=seed)
            level = env.unwrapped.level
            (door,) = [d for d in agent_room(level).doors if d is not None]
            assert obs["mission"] in ("open the door", f"open the {door.color} door")
            named[split] += obs["mission"] != "open the door"
            sides.add(agent_room(level).top)
        assert sides == {(0, 0), (7, 0)}  # the locked room is either one
    assert 70 <= named["Train"] <= 130 and named["Test"] == 200


@pytest.mark.parametrize("num_dists", [0, 2, 8])
def test_excluded_pairs_per_split(make, num_dists):
    for env_id, split in [
        ("MixedTrainLocal", "train"),
        ("MixedTestLocal", "test"),
        ("PickUpSeqGoToLocal", "train"),
        ("PickUpSeqPickUpLocal", "train"),
    ]:
        env = make(f"BabyAI-Text-{env_id}-v0", num_dists=num_dists)
        for seed in range(60):
            env.reset(seed=seed)
            pairs = [p for p in named_pairs(env.unwrapped.level.instrs) if p[0] is not None]
            if split == "train":
                assert not set(pairs) & HELD_OUT_PAIRS, env.unwrapped.mission
            else:
                assert set(pairs) <= HELD_OUT_PAIRS, env.unwrapped.mission


def test_targets_are_drawn_among_the_objects_so_duplicates_get_a(make):
    env = make("BabyAI-Text-MixedTrainLocal-v0", tasks=("pickup_then_goto",), num_dists=12)
    forms = Counter()
    for seed in range(150):
        env.reset(seed=seed)
        (a, b) = named_pairs(env.unwrapped.level.instrs)
        count = Counter((o.color, o.type) for o in room_objects(env.unwrapped.level))
        # a second target repeats the first only when the room holds two of them
        assert a != b or count[a] >= 2
        forms[a == b] += 1
    assert forms[True] > 0 and forms[False] > 0


def test_action_kinds_are_the_kinds_the_episodes_may_have(make):
    # a Mixed env drawing at every reset: all its kinds, in the original's spelling, unchanged
    # by resets (the episode's kind is info["task"])
    env = make("BabyAI-Text-MixedTrainLocal-v0")
    kinds = ["goto", "pickup", "putnext", "open", "pick up seq go to"]
    assert env.unwrapped.action_kinds == kinds
    assert env.unwrapped.task is None  # no episode yet
    seen = set()
    for seed in range(80):
        _, info = env.reset(seed=seed)
        assert env.unwrapped.action_kinds == kinds
        seen.add(ORIGINAL_TASK_NAMES[info["task"]])
    assert seen == set(kinds)
    # one kind: action_kinds[0] is every episode's kind; tasks= takes the original's spellings
    for name in ("pick up seq go to", "pick_up_seq_go_to"):
        env = make("BabyAI-Text-MixedTestLocal-v0", tasks=[name])
        assert env.unwrapped.action_kinds == ["pick up seq go to"]
        assert {env.reset(seed=s)[1]["task"] for s in range(10)} == {"pickup_then_goto"}
    env = make("BabyAI-Text-PickUpSeqPickUpLocal-v0")
    assert env.unwrapped.action_kinds == ["pick up seq pick up"]
    env.reset(seed=0)
    assert env.unwrapped.action_kinds == ["pick up seq pick up"]
    assert make("BabyAI-Text-GoToLocal-v0").unwrapped.action_kinds is None


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


@pytest.mark.parametrize("num_dists", [0, 5, 12])
def test_num_dists_keyword(make, num_dists):
    env = make("BabyAI-Text-MixedTrainLocal-v0", num_dists=num_dists, tasks=("goto",))
    obs, info = env.reset(seed=0)
    assert info["num_dists"] == num_dists == env.unwrapped.num_dists
    assert env.spec.kwargs["num_dists"] == num_dists
    for seed in range(10):
        env.reset(seed=seed)
        assert len(room_objects(env.unwrapped.level)) == num_dists + 1


def test_num_dists_on_minigrid_levels(make):
    env = make("BabyAI-Text-GoToLocal-v0", num_dists=3)
    assert env.reset(seed=0)[1]["num_dists"] == 3
    assert len(room_objects(env.unwrapped.level)) == 3


@pytest.mark.parametrize(
    "env_id, kwargs, match",
    [
        ("BabyAI-Text-PickupLocal-v0", {"num_dists": 0}, r"num_dists must be an int in \[1, 14\]"),
        ("BabyAI-Text-PickUpSeqGoToLocal-v0", {"num_dists": -1}, r"non-negative int"),
        ("BabyAI-Text-PickUpSeqGoToLocal-v0", {"num_dists": 13}, r"in \[0, 12\]"),
        ("BabyAI-Text-MixedTrainLocal-v0", {"num_dists": max_num_dists(8) - 1}, r"in \[0, 12\]"),
        ("BabyAI-Text-PickupLocal-v0", {"num_dists": 2.5}, "num_dists must be"),
        ("BabyAI-Text-GoToLocal-v0", {"num_dists": -1}, "non-negative int"),
        ("BabyAI-Text-GoToLocal-v0", {"num_dists": 40}, r"in \[1, 14\] for GoToLocal"),
        ("BabyAI-Text-GoToLocal-v0", {"num_dists": 0}, r"smallest valid value is num_dists=1"),
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
            r"'pickup_then_goto'\) \(or their original spellings",
        ),
        ("BabyAI-Text-MixedTrainLocal-v0", {"tasks": ()}, "non-empty subset"),
        (
            "BabyAI-Text-MixedTrainLocal-v0",
            {"task_draw": "sometimes"},
            r"task_draw must be one of \('reset', 'construction'\)",
        ),
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
