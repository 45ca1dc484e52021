"""Keywords that used to reach minigrid unchecked: `extra_actions`, `room_size`, `num_objs`.

Every room too small for a level is refused at construction (ValueError), and the smallest room
a level accepts generates: its resets return (checked under a SIGALRM deadline, so that a
regression fails instead of hanging the run).
"""

from __future__ import annotations

import contextlib
import signal

import gymnasium as gym
import pytest

from .conftest import MINIGRID_IDS, PAPER_IDS

LOCAL_IDS = [i for i in MINIGRID_IDS if "Local" in i]
RESET_DEADLINE_S = 60  # for a few resets: a hang, not a slow reset, trips it


class ResetHang(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: int):
    def expired(signum, frame):
        raise ResetHang(f"no return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"extra_actions": 7}, r"extra_actions must be a sequence .*extra_actions=\('sleep'"),
        ({"extra_actions": None}, "extra_actions must be a sequence of non-empty phrases"),
        ({"extra_actions": "sleep"}, "extra_actions must be a sequence of non-empty phrases"),
        ({"extra_actions": ("sleep", 3)}, "extra_actions must be a sequence of non-empty phrases"),
        ({"extra_actions": ("sleep", "sleep")}, r"repeats action phrases \['sleep'\]"),
        ({"extra_actions": ("turn left",)}, r"repeats action phrases \['turn left'\]"),
        ({"room_size": "big"}, r"room_size must be an int >= 3 .*e\.g\. room_size=8"),
        ({"room_size": 2}, "room_size must be an int >= 3"),
        ({"room_size": 2.5}, "room_size must be an int >= 3"),
        ({"room_size": -1}, "room_size must be an int >= 3"),
        ({"room_size": True}, "room_size must be an int >= 3"),
        ({"room_size": 8.0}, "room_size must be an int >= 3"),
        ({"room_size": 3}, "GoToLocal needs room_size >= 4"),
    ],
)
def test_bad_keywords_are_value_errors_naming_the_keyword(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make("BabyAI-Text-GoToLocal-v0", **kwargs)


def test_the_extra_actions_may_be_any_sequence_of_new_phrases():
    env = gym.make("BabyAI-Text-GoToLocal-v0", extra_actions=["sleep", "dance"])
    assert env.unwrapped.action_names[-2:] == ["sleep", "dance"]
    assert env.action_space.n == 8


@pytest.mark.parametrize(
    ("env_id", "kwargs", "match"),
    [
        ("BabyAI-Text-PutNextLocal-v0", {"room_size": 3}, "PutNextLocal needs room_size >= 4"),
        ("BabyAI-Text-PutNextLocal-v0", {"room_size": 4}, "PutNextLocal needs room_size >= 5"),
        ("BabyAI-Text-UnlockLocal-v0", {"room_size": 3}, "needs room_size >= 4"),
        ("BabyAI-Text-GoToObj-v0", {"room_size": 3}, "GoToObj needs room_size >= 4"),
        ("BabyAI-Text-PutNextLocal-v0", {"room_size": 5}, r"num_objs must be an int in \[2, 3\]"),
        ("BabyAI-Text-PutNextLocal-v0", {"num_objs": 1}, r"num_objs must be an int in \[2, 14\]"),
        ("BabyAI-Text-PutNextLocal-v0", {"num_objs": 2.0}, "num_objs must be an int"),
        # 19 objects fit a 9x9 room by area, but only 18 distinct (colour, type) pairs exist
        ("BabyAI-Text-PutNextLocal-v0", {"room_size": 9, "num_objs": 19}, r"in \[2, 18\]"),
        ("BabyAI-Text-UnlockLocalDist-v0", {"room_size": 5}, "needs room_size >= 6"),
        ("BabyAI-Text-PickupLocal-v0", {"room_size": 4}, "room_size must be an int >= 5"),
    ],
)
def test_a_room_too_small_for_the_level_is_refused(env_id, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(env_id, **kwargs)


def smallest_room_size(env_id: str) -> int:
    """The smallest room_size that `env_id` accepts (with its registered keywords)."""
    for size in range(1, 16):
        try:
            gym.make(env_id, room_size=size).close()
        except ValueError:
            continue
        return size
    raise AssertionError(f"{env_id} accepts no room_size up to 15")


@pytest.mark.parametrize("env_id", PAPER_IDS + LOCAL_IDS)
def test_the_smallest_accepted_room_generates(env_id):
    size = smallest_room_size(env_id)
    with gym.make(env_id, room_size=size) as env, deadline(RESET_DEADLINE_S):
        for seed in range(4):
            obs, _ = env.reset(seed=seed)
            assert env.observation_space.contains(obs)
            assert env.unwrapped.room_size == size


@pytest.mark.slow  # about 5 s each: MAX_LAYOUT_ATTEMPTS rejected layouts
@pytest.mark.parametrize(
    ("env_id", "room_size"),
    [("BabyAI-Text-Pickup-v0", 4), ("BabyAI-Text-GoToImpUnlock-v0", 4)],
)
def test_a_level_that_cannot_be_laid_out_raises_instead_of_retrying_forever(env_id, room_size):
    """minigrid retries a rejected layout forever; past MAX_LAYOUT_ATTEMPTS the reset gives up
    with a LayoutError (a ValueError) naming the fix."""
    from babyai_text.env import LayoutError

    env = gym.make(env_id, room_size=room_size)  # these used to hang in reset
    with deadline(RESET_DEADLINE_S), pytest.raises(LayoutError, match="use a larger room_size"):
        env.reset(seed=0)
    env.close()
