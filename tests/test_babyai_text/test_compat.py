"""The tools researchers use on minigrid envs, on ours: each plays whole episodes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pygame
import pytest
from babyai_text import expert_action
from babyai_text.env import LEVEL_ATTRIBUTES, SETTABLE_LEVEL_ATTRIBUTES
from minigrid import wrappers as mw
from minigrid.manual_control import ManualControl
from minigrid.utils.baby_ai_bot import BabyAIBot

STATE = (
    "agent_pos agent_dir carrying grid instrs step_count max_steps width height "
    "agent_view_size actions front_pos dir_vec right_vec highlight tile_size agent_pov"
).split()
METHODS = "get_frame get_pov_render gen_obs_grid gen_obs in_view room_from_pos".split()


@pytest.fixture(autouse=True)
def _headless(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


def play_expert(env, seed: int, max_steps: int = 500):
    """One whole episode with the expert; returns (observations, last reward, terminated)."""
    # ReseedWrapper picks the seeds itself (and warns about any other)
    obs, _ = env.reset(seed=None if isinstance(env, mw.ReseedWrapper) else seed)
    observations = [obs]
    for _ in range(max_steps):
        obs, reward, terminated, truncated, _ = env.step(expert_action(env))
        observations.append(obs)
        if terminated or truncated:
            return observations, reward, terminated
    raise AssertionError("the episode did not end")


def test_unwrapped_answers_minigrid_state_and_methods(make):
    env = make("BabyAI-Text-MixedTrainLocal-v0", render_mode="rgb_array")
    base, level = env.unwrapped, env.unwrapped.level
    assert set(STATE + METHODS) <= set(LEVEL_ATTRIBUTES)
    for seed in range(3):
        _, info = env.reset(seed=seed)
        for name in STATE:
            value = getattr(base, name)
            expected = getattr(level, name)
            assert value is expected or np.array_equal(value, expected), name
        assert base.mission == level.mission == info["mission_en"]  # English: the same
        x, y = base.agent_pos
        assert base.room_from_pos(x, y) is level.room_from_pos(x, y)
        assert base.in_view(*base.front_pos) == level.in_view(*level.front_pos)
        grid, vis = base.gen_obs_grid()
        assert np.array_equal(grid.encode(vis), level.gen_obs()["image"])
        assert np.array_equal(base.gen_obs()["image"], level.gen_obs()["image"])
        pov = base.get_pov_render(tile_size=8)
        assert pov.shape == (7 * 8, 7 * 8, 3)
        frame = base.get_frame(highlight=True, tile_size=8)
        assert frame.shape == (level.height * 8, level.width * 8, 3)
        assert np.array_equal(env.render(), level.get_frame(level.highlight, level.tile_size))


def test_settable_attributes_reach_the_level(make):
    env = make("BabyAI-Text-GoToLocal-v0")
    env.reset(seed=0)
    assert "max_steps" in SETTABLE_LEVEL_ATTRIBUTES
    env.unwrapped.max_steps = 5
    assert env.unwrapped.level.max_steps == 5
    for _ in range(5):
        *_, terminated, truncated, _ = env.step(0)  # turning never succeeds
    assert truncated and not terminated and env.unwrapped.step_count == 5
    with pytest.raises(AttributeError, match="read-only"):
        env.unwrapped.grid = None


# minigrid's wrappers that fit a BabyAI level; left out: DictObservationSpaceWrapper ("not
# applicable to BabyAI environments", its docstring says) and DirectionObsWrapper (needs a Goal)
WRAPPERS = {
    "ReseedWrapper": (lambda e: mw.ReseedWrapper(e, seeds=(5, 6)), False),
    "ActionBonus": (mw.ActionBonus, False),
    "PositionBonus": (mw.PositionBonus, False),
    "ImgObsWrapper": (mw.ImgObsWrapper, True),
    "OneHotPartialObsWrapper": (mw.OneHotPartialObsWrapper, True),
    "RGBImgObsWrapper": (mw.RGBImgObsWrapper, False),
    "RGBImgPartialObsWrapper": (mw.RGBImgPartialObsWrapper, True),
    "FullyObsWrapper": (mw.FullyObsWrapper, False),
    "FlatObsWrapper": (mw.FlatObsWrapper, True),
    "ViewSizeWrapper": (lambda e: mw.ViewSizeWrapper(e, agent_view_size=5), True),
    "SymbolicObsWrapper": (mw.SymbolicObsWrapper, False),
    "StochasticActionWrapper": (lambda e: mw.StochasticActionWrapper(e, prob=0.9), False),
    "NoDeath": (lambda e: mw.NoDeath(e, no_death_types=("lava",)), False),
}


@pytest.mark.parametrize("name", sorted(WRAPPERS))
@pytest.mark.parametrize("env_id", ["BabyAI-Text-GoToLocal-v0", "BabyAI-Text-PickupLocal-v0"])
def test_minigrid_wrappers(make, name, env_id):
    wrap, symbolic = WRAPPERS[name]
    env = wrap(make(env_id, symbolic=symbolic, render_mode="rgb_array"))
    env.action_space.seed(0)
    successes = 0
    for seed in range(3):
        observations, reward, terminated = play_expert(env, seed)
        assert all(o in env.observation_space for o in observations), name
        successes += reward > 0
    if name != "StochasticActionWrapper":  # the expert follows the actions actually taken
        assert successes == 3
    if name == "FullyObsWrapper":
        level = env.unwrapped.level
        x, y = level.agent_pos
        assert observations[-1]["image"][x, y, 0] == 10  # the agent, on the full grid


def test_babyai_bot_plays_our_env_directly(make):
    for env_id in ["BabyAI-Text-MixedTrainLocal-v0", "BabyAI-Text-GoToLocal-v0"]:
        env = make(env_id)
        for seed in range(4):
            env.reset(seed=seed)
            bot = BabyAIBot(env)  # reads everything off env.unwrapped
            terminated = truncated = False
            while not (terminated or truncated):
                _, reward, terminated, truncated, _ = env.step(bot.replan())
            assert terminated and reward > 0, (env_id, seed)


KEY_OF_ACTION = {0: "left", 1: "right", 2: "up", 3: "pageup", 4: "pagedown", 5: "space"}
PYGAME_KEY = {
    "left": pygame.K_LEFT,
    "right": pygame.K_RIGHT,
    "up": pygame.K_UP,
    "pageup": pygame.K_PAGEUP,
    "pagedown": pygame.K_PAGEDOWN,
    "space": pygame.K_SPACE,
}


def test_manual_control_steps_it_with_simulated_keys(make, capsys):
    env = make("BabyAI-Text-MixedTrainLocal-v0", render_mode="rgb_array")
    control = ManualControl(env, seed=11)
    control.reset(11)
    episodes = 0
    for _ in range(400):
        action = expert_action(env)
        # a key press, as ManualControl.start turns pygame's KEYDOWN into a key name
        event = pygame.event.Event(pygame.KEYDOWN, key=PYGAME_KEY[KEY_OF_ACTION[action]])
        event.key = pygame.key.name(int(event.key))
        before = env.unwrapped.episode_id
        control.key_handler(event)
        if env.unwrapped.episode_id != before:  # it reset after the episode ended
            episodes += 1
            assert env.unwrapped.step_count == 0
            if episodes == 2:
                break
    out = capsys.readouterr().out
    assert episodes == 2 and out.count("terminated!") == 2 and "pressed up" in out


def evaluate_with_pov(env, seeds, policy):
    """An evaluation harness as written for minigrid: the agent's view rendered each step."""
    results = []
    for seed in seeds:
        env.reset(seed=seed)
        limit = env.unwrapped.max_steps
        frames, t, done, reward = [], 0, False, 0.0
        while not done:
            frames.append(env.unwrapped.get_pov_render(tile_size=16))
            _, reward, terminated, truncated, _ = env.step(policy(env))
            t += 1
            done = terminated or truncated
        assert t <= limit
        results.append((reward > 0, t, limit, frames))
    return results


def test_pov_evaluation_harness(make):
    env = make("BabyAI-Text-MixedTestLocal-v0")
    for success, t, limit, frames in evaluate_with_pov(env, range(4), expert_action):
        assert success and len(frames) == t <= limit
        assert all(f.shape == (7 * 16, 7 * 16, 3) and f.dtype == np.uint8 for f in frames)
    # a policy that never succeeds runs exactly to the limit the harness read
    for success, t, limit, _ in evaluate_with_pov(env, range(2), lambda e: 0):
        assert not success and t == limit in (64, 128)


def test_gymnasium_play_renders_rgb_frames_and_plays_an_episode(make):
    from gymnasium.utils.play import play

    keys = {"a": 0, "d": 1, "w": 2, "p": 3, "o": 4, "t": 5}
    key_of = {v: ord(k) for k, v in keys.items()}

    class Player(gym.Wrapper):
        """Presses the expert's key after every reset and step; Escape when the episode ends."""

        pressed = None
        frames = 0
        outcome = None

        def _press_next(self):
            if self.pressed is not None:
                pygame.event.post(pygame.event.Event(pygame.KEYUP, key=self.pressed))
            self.pressed = key_of[expert_action(self.env)]
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=self.pressed))

        def reset(self, **kwargs):
            out = self.env.reset(**kwargs)
            self._press_next()
            return out

        def step(self, action):
            out = self.env.step(action)
            if out[2] or out[3]:
                self.outcome = out
                pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE))
            else:
                self._press_next()
            return out

        def render(self):
            frame = self.env.render()
            self.frames += 1
            return frame

    env = Player(make("BabyAI-Text-GoToLocal-v0", render_mode="rgb_array"))
    env.env.reset(seed=2)  # gymnasium's play renders once before its own reset
    pygame.init()  # for the simulated key events; play() quits pygame when it returns
    play(env, keys_to_action=keys, seed=2, fps=1000, wait_on_player=True)
    _, reward, terminated, _, _ = env.outcome
    assert terminated and reward > 0 and env.frames > 2


def test_human_rendering_leaves_signal_handling_alone(tmp_path):
    script = (
        "import os, signal, time, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "import gymnasium as gym, babyai_text\n"
        "env = gym.make('BabyAI-Text-GoToLocal-v0', render_mode='human')\n"
        "env.reset(seed=0); env.step(0)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(5)\n"
        "print('SIGTERM was swallowed')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SDL_NO_SIGNAL_HANDLERS"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGTERM, done.stdout + done.stderr
