"""`BabyAITextEnv`: a minigrid BabyAI level seen through text (behind every BabyAI-Text-* ID)."""

from __future__ import annotations

import contextlib
import importlib
import io
import operator
import os
from collections.abc import Sequence
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from minigrid.envs.babyai.core.levelgen import LevelGen
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel
from minigrid.envs.babyai.goto import GoTo, GoToLocal
from minigrid.envs.babyai.putnext import PutNextLocal
from minigrid.envs.babyai.unlock import UnlockLocal

from babyai_text.describe import describe_view
from babyai_text.expert import Expert
from babyai_text.levels import LocalLevel, MixedLocal, max_num_dists
from babyai_text.lexicon import ACTION_NAMES, LANGUAGES, NUM_ACTIONS, charset
from babyai_text.missions import render_mission
from babyai_text.spaces import TextSpace

__all__ = [
    "BabyAITextEnv",
    "LEVEL_ATTRIBUTES",
    "LayoutError",
    "MAX_LAYOUT_ATTEMPTS",
    "MISSION_MAX_LENGTH",
    "SETTABLE_LEVEL_ATTRIBUTES",
]

MISSION_MAX_LENGTH = 1024
"""`max_length` of the mission Text space (the longest BossLevel mission in French is ~400)."""

MIN_ROOM_SIZE = 3
"""Smallest `room_size` minigrid takes (walls included: one free cell, the multi-room
KeyCorridorS3R* levels); a room that holds the agent and objects needs more (`_check_level`)."""

SENTENCE_MAX_LENGTH = 80  # longest description sentence, French, with margin
_CHARSET = charset()
MAX_LAYOUT_ATTEMPTS = 2_000
"""Layouts a reset may reject before it gives up with a LayoutError. minigrid's level generator
retries a rejected layout forever, so a level that cannot be laid out (rooms too small for what
it places) would hang; a valid level needs a few, rarely a few dozen."""


class LayoutError(ValueError):
    """A reset found no valid layout in MAX_LAYOUT_ATTEMPTS tries: the level's keywords ask for
    more than its rooms hold."""


class _RejectionCounter(io.TextIOBase):
    """Where minigrid's prints go during a reset: it prints one line per rejected layout
    ("Sampling rejected: ...", "Timeout during mission generation: ..."); past the limit the
    next one raises LayoutError out of minigrid's retry loop."""

    def __init__(self, describe: str) -> None:
        self.rejected = 0
        self.describe = describe
        self._line = ""

    def write(self, text: str) -> int:
        self._line += text
        while "\n" in self._line:
            line, self._line = self._line.split("\n", 1)
            if line.startswith(("Sampling rejected", "Timeout during mission generation")):
                self.rejected += 1
                if self.rejected >= MAX_LAYOUT_ATTEMPTS:
                    raise LayoutError(
                        f"{self.describe}: no valid layout in {MAX_LAYOUT_ATTEMPTS} tries (the "
                        f"last: {line!r}); its rooms are too small for what it places: use a "
                        "larger room_size, or fewer num_dists / num_objs."
                    )
        return len(text)


def _load(entry: str | type) -> type:
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        if not attr:
            raise ValueError(f"level must be 'module:Class' or a class, got {entry!r}")
        return getattr(importlib.import_module(module), attr)
    return entry


_BOOL_KEYWORDS = ("symbolic",)


class _FromLevel:
    """An attribute of `BabyAITextEnv` that is the level's attribute of the same name.

    Reading gives `env.level.<name>` (methods come back bound to the level); writing, where
    `settable`, sets it on the level, so a tool that sets `env.unwrapped.max_steps` changes the
    episode's time limit.
    """

    def __init__(self, settable: bool = False) -> None:
        self.settable = settable
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, env: BabyAITextEnv | None, owner: type | None = None) -> Any:
        if env is None:
            return self
        return getattr(env.level, self.name)

    def __set__(self, env: BabyAITextEnv, value: Any) -> None:
        if not self.settable:
            raise AttributeError(
                f"{self.name} is read-only here; set it on env.unwrapped.level if you must"
            )
        setattr(env.level, self.name, value)


class BabyAITextEnv(gym.Env):
    """A BabyAI level (minigrid's or one of the paper's) whose agent reads and acts through text.

    ## Description

    The level is minigrid's own class, built with the same keywords as its `BabyAI-<Level>` ID,
    so `BabyAI-Text-<Level>` reset with seed s plays exactly `BabyAI-<Level>` reset with seed s:
    same layout, same mission, same dynamics, same rewards. The text is added, nothing else
    changes. The paper's levels (PickupLocal, the pick-up sequences, MixedTrainLocal,
    MixedTestLocal) live in `babyai_text.levels`. The minigrid level is `env.unwrapped.level`.

    ## Mission

    minigrid's mission string ("go to the red ball", "pick up the blue key, then go to a green
    box"), or its French translation with `language="fr"` ("va vers la balle rouge"), rendered
    from the same instruction tree for every task kind. `info["mission_en"]` always holds the
    English one.

    ## Action Space

    `Discrete(6)`; index i is minigrid action i (minigrid's `done`, 6, is not offered):

    | Num | en         | fr               | synonyms     |
    |-----|------------|------------------|--------------|
    | 0   | turn left  | tourner à gauche | rotate left  |
    | 1   | turn right | tourner à droite | rotate right |
    | 2   | go forward | aller tout droit | move ahead   |
    | 3   | pick up    | attraper         | take         |
    | 4   | drop       | lâcher           | release      |
    | 5   | toggle     | basculer         | switch       |

    `env.unwrapped.action_names` lists the phrases of the variant chosen with `action_names=`
    (default: the `language`), or the user's own list of 6 phrases; `babyai_text.ACTION_NAMES`
    holds the variants. Anything but an integer in range raises a ValueError.
    `extra_actions=("sleep", "think")` (the original's action-space experiment) appends useless
    phrases: the space grows to `Discrete(6 + k)` and every index from 6 on executes minigrid's
    `done`, which changes nothing but the step count.

    ## Observation

    `Dict(mission=Text, text=Text)`: the mission, and the description of the agent's 7x7 view
    (`babyai_text.describe`), one sentence per line (`obs["text"].splitlines()` gives
    `info["descriptions"]` back; "" when there is nothing to describe). With `symbolic=True` it
    also holds minigrid's `image` (7x7x3 uint8) and `direction` (Discrete(4)) for symbolic
    baselines and minigrid's image wrappers. `info` holds `descriptions` and `mission_en` at reset
    and at every step; the Mixed levels add `task` (the kind drawn at reset), and the reset info
    holds `num_dists` when the level has one.

    ## Task kinds (Mixed levels)

    The kind of the episode in progress is `info["task"]` and `env.unwrapped.task` (None before
    the first reset when the env may draw several). Under the BabyAI-Text IDs it is drawn from
    the seeded RNG at every reset (same seed, same episode). Under the original's IDs
    (`babyai_text.register_original_ids()`) it is drawn once, unseeded, when the env is built
    and kept for every episode, as the original did (keyword `task_draw="construction"`).

    `env.unwrapped.action_kinds` (the original's attribute and spelling, e.g.
    `["pick up seq go to"]`) lists the kinds this env's episodes may have, the same before and
    after every reset: one kind for the single-task levels, for `tasks=` of one kind and under
    the original's IDs, so `action_kinds[0]` is then the kind of every episode (a harness that
    makes envs until `action_kinds[0]` is the kind it wants works); every kind of `tasks` for a
    Mixed env that draws at each reset. It never names a kind the next episode cannot have.

    ## Rewards

    minigrid's: `1 - 0.9 * step_count / max_steps` on success, 0 otherwise.

    ## Termination

    `terminated` when the mission succeeds (or fails, for minigrid's strict "Debug" levels);
    `truncated` at `max_steps` (BabyAI's: 64 per room-sized navigation in an 8x8 room). The
    limit is computed by the level at every reset (it depends on the mission), so
    `env.spec.max_episode_steps` is None and the limit is `env.unwrapped.max_steps`
    (`envs.get_attr("max_steps")` for vector envs). Stepping an ended episode raises
    `gymnasium.error.ResetNeeded`.

    ## Using it from minigrid's tools

    `env.unwrapped` answers what tools read off a minigrid env's `unwrapped`: the state
    (`agent_pos`, `agent_dir`, `carrying`, `grid`, `instrs`, `step_count`, `max_steps`, `width`,
    `height`, `agent_view_size`, `actions`, `front_pos`, `dir_vec`, `right_vec`, `highlight`,
    `tile_size`, `agent_pov`, `reward_range`, ...) and the methods (`get_frame`,
    `get_pov_render`, `gen_obs_grid`, `gen_obs`, `in_view`, `agent_sees`, `pprint_grid`,
    `place_agent`, `place_obj`, `put_obj`, `room_from_pos`, ...: every public method of
    minigrid's `MiniGridEnv` but reset, step, render and close) are the level's, by explicit
    delegation: each is a class attribute listed in `LEVEL_ATTRIBUTES` that reads (and for
    `SETTABLE_LEVEL_ATTRIBUTES` writes) the level's attribute. The level stays one object owned
    by the env (no second env to keep in sync, as subclassing the level would need for our
    text observation and action space, and no `__getattr__` that would silently answer typos).
    `mission`, `render`, `action_space` and `observation_space` stay the text env's own.
    minigrid's `BabyAIBot(env)`, `ManualControl(env)` and the wrappers of `minigrid.wrappers`
    that fit a BabyAI level work on our envs (the image ones with `symbolic=True`).

    ## Registered IDs

    `BabyAI-Text-<Level>-v<N>` for every `BabyAI-<Level>-v<N>` minigrid registers (96 in minigrid
    3.2), and BabyAI-Text-PickupLocal-v0, -PickUpSeqGoToLocal-v0, -PickUpThenGoToLocal-v0,
    -GoToAfterPickUpLocal-v0, -PickUpSeqPickUpLocal-v0, -MixedTrainLocal-v0, -MixedTestLocal-v0.
    `babyai_text.registered_ids()` lists them; `babyai_text.register_original_ids()` adds the
    original's IDs without `Text` (`BabyAI-MixedTrainLocal-v0`, ...) on request.

    Args:
        level: the minigrid level class, or "module:Class".
        language: "en" or "fr" (descriptions and mission).
        action_names: "en", "fr" or "synonyms" (default: `language`), or a list of 6 distinct
            phrases of one's own, in minigrid's action order.
        extra_actions: phrases offered after the 6 real actions; they execute minigrid's `done`.
        symbolic: add minigrid's `image` and `direction` to the observation (a bool).
        num_dists: distractors, for the levels that take it (see `babyai_text.levels`).
        render_mode: "rgb_array" (minigrid's picture of the whole grid), "ansi" (mission and
            descriptions as one string); `gym.make(..., render_mode="human")` shows the
            rgb frames in a window (gymnasium's `HumanRendering`).
        **level_kwargs: passed to the level (e.g. `room_size`; `tasks` and `task_draw` for the
            Mixed levels); `room_size` must be an int >= 3 and leave room for the level's
            objects beside the agent (a smaller room raises a ValueError here rather than
            hanging in reset).
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 10}

    # the level's state and methods, as tools read them off a minigrid env's `unwrapped`
    agent_pos = _FromLevel(settable=True)
    agent_dir = _FromLevel(settable=True)
    carrying = _FromLevel(settable=True)
    max_steps = _FromLevel(settable=True)
    highlight = _FromLevel(settable=True)
    tile_size = _FromLevel(settable=True)
    agent_pov = _FromLevel(settable=True)
    grid = _FromLevel()
    instrs = _FromLevel()
    step_count = _FromLevel()
    width = _FromLevel()
    height = _FromLevel()
    agent_view_size = _FromLevel()
    see_through_walls = _FromLevel()
    actions = _FromLevel()
    front_pos = _FromLevel()
    dir_vec = _FromLevel()
    right_vec = _FromLevel()
    steps_remaining = _FromLevel()
    room_size = _FromLevel()
    num_rows = _FromLevel()
    num_cols = _FromLevel()
    get_frame = _FromLevel()
    get_pov_render = _FromLevel()
    get_full_render = _FromLevel()
    gen_obs_grid = _FromLevel()
    gen_obs = _FromLevel()
    in_view = _FromLevel()
    agent_sees = _FromLevel()
    relative_coords = _FromLevel()
    get_view_coords = _FromLevel()
    get_view_exts = _FromLevel()
    room_from_pos = _FromLevel()
    get_room = _FromLevel()
    hash = _FromLevel()
    pprint_grid = _FromLevel()
    place_agent = _FromLevel()
    place_obj = _FromLevel()
    put_obj = _FromLevel()
    reward_range = _FromLevel()

    def __init__(
        self,
        level: str | type[RoomGridLevel],
        *,
        language: str = "en",
        action_names: str | None = None,
        extra_actions: Sequence[str] = (),
        symbolic: bool = False,
        num_dists: int | None = None,
        render_mode: str | None = None,
        **level_kwargs: Any,
    ) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
        names, variant = _check_action_names(language if action_names is None else action_names)
        extra = _check_extra_actions(extra_actions, names)
        if not isinstance(symbolic, (bool, np.bool_)):
            raise ValueError(f"symbolic must be True or False, got {symbolic!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        if num_dists is not None and (
            isinstance(num_dists, (bool, np.bool_))
            or not isinstance(num_dists, (int, np.integer))
            or num_dists < 0
        ):
            raise ValueError(f"num_dists must be a non-negative int, got {num_dists!r}")
        view = level_kwargs.get("agent_view_size")
        if view is not None and (
            isinstance(view, (bool, np.bool_))
            or not isinstance(view, (int, np.integer))
            or view < 3
            or view % 2 == 0
        ):
            raise ValueError(f"agent_view_size must be an odd int >= 3, got {view!r}")
        room_size = level_kwargs.get("room_size")
        if room_size is not None and (
            isinstance(room_size, (bool, np.bool_))
            or not isinstance(room_size, (int, np.integer))
            or room_size < MIN_ROOM_SIZE
        ):
            raise ValueError(
                f"room_size must be an int >= {MIN_ROOM_SIZE} (the room's side, walls included), "
                f"got {room_size!r}; e.g. room_size=8, BabyAI's default"
            )

        # SDL, when a window opens (render_mode="human": gymnasium's HumanRendering, minigrid's
        # ManualControl), would otherwise take over SIGINT/SIGTERM and a job scheduler's
        # SIGTERM would no longer stop the process; a value the user set wins
        os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")

        level_cls = _load(level)
        if not (isinstance(level_cls, type) and issubclass(level_cls, RoomGridLevel)):
            raise ValueError(
                f"level must be a BabyAI level (a minigrid RoomGridLevel subclass), got {level!r}"
            )
        kwargs = dict(level_kwargs)
        if num_dists is not None:
            kwargs["num_dists"] = int(num_dists)
        if kwargs.get("room_size") is not None:
            kwargs["room_size"] = int(kwargs["room_size"])
        try:
            self.level: RoomGridLevel = level_cls(**kwargs)
        except TypeError as error:
            bad = [k for k in kwargs if f"'{k}'" in str(error)]
            if bad:
                raise ValueError(
                    f"{level_cls.__name__} does not take the keyword(s) {bad}: {error}"
                ) from error
            raise
        _check_level(self.level)

        self.language = language
        self.action_names_variant = variant
        self.symbolic = bool(symbolic)
        self.render_mode = render_mode
        self._action_names = names + extra
        self._is_mixed = isinstance(self.level, MixedLocal)

        view = self.level.agent_view_size
        obs_spaces: dict[str, spaces.Space] = {
            "mission": TextSpace(MISSION_MAX_LENGTH, min_length=1, charset=_CHARSET),
            "text": TextSpace(
                (view * view + 4) * SENTENCE_MAX_LENGTH, min_length=0, charset=_CHARSET
            ),
        }
        if self.symbolic:
            # minigrid's observation space is a Dict (image, direction, mission)
            obs_spaces["image"] = cast(spaces.Dict, self.level.observation_space)["image"]
            obs_spaces["direction"] = spaces.Discrete(4)
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = spaces.Discrete(len(self._action_names))

        self._mission = ""
        self._text = ""
        self.episode_id = 0  # number of resets so far; the expert uses it to spot a new episode
        self.last_action: int | None = None  # minigrid action last executed (6 for extras)
        self._ended = False
        self._expert: Expert | None = None

    # -- gym API ----------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        # minigrid's level generator prints a line on every rejected layout, and retries forever
        rejections = _RejectionCounter(f"{type(self.level).__name__}(seed={seed})")
        with contextlib.redirect_stdout(rejections):
            obs, _ = self.level.reset(seed=seed, options=options)
        self._np_random = self.level.np_random  # one RNG, the level's (check_env reads this)
        self._np_random_seed = self.level.np_random_seed
        if self.language == "en":
            self._mission = self.level.mission
        else:
            # instrs: set by every BabyAI level's gen_mission, undeclared on RoomGridLevel
            self._mission = render_mission(self.level.instrs, self.language)  # type: ignore[attr-defined]
        self.episode_id += 1
        self.last_action = None
        self._ended = False
        observation, info = self._observe(obs)
        if hasattr(self.level, "num_dists"):
            info["num_dists"] = self.level.num_dists
        return observation, info

    def step(self, action: int) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        n = len(self._action_names)
        try:
            a = -1 if isinstance(action, (bool, np.bool_)) else operator.index(action)
        except TypeError:
            a = -1
        if not 0 <= a < n:
            raise ValueError(
                f"invalid action {action!r}: expected an int in [0, {n}), i.e. "
                + ", ".join(f"{i}={name!r}" for i, name in enumerate(self._action_names))
            )
        if self.episode_id == 0:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self._ended:
            raise gym.error.ResetNeeded(
                "this episode has ended (terminated or truncated): call reset() before step() "
                "(vector envs do it for you with autoreset)"
            )
        # the extra phrases all execute minigrid's `done`, a no-op in BabyAI
        self.last_action = a = min(a, NUM_ACTIONS)
        obs, reward, terminated, truncated, _ = self.level.step(a)
        self._ended = bool(terminated or truncated)
        observation, info = self._observe(obs)
        return observation, float(reward), terminated, truncated, info

    def _observe(self, obs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        # obs["image"] is minigrid's encoding of the view it just computed: describe that
        descriptions = describe_view(obs["image"], self.language)
        self._text = text = "\n".join(descriptions)
        observation: dict[str, Any] = {"mission": self._mission, "text": text}
        if self.symbolic:
            observation["image"] = obs["image"]
            observation["direction"] = int(obs["direction"])
        info: dict[str, Any] = {"descriptions": descriptions, "mission_en": self.level.mission}
        if self._is_mixed:
            info["task"] = cast(MixedLocal, self.level).task  # _is_mixed: level is a MixedLocal
        return observation, info

    def render(self) -> np.ndarray | str | None:
        if self.render_mode == "rgb_array":
            lv = self.level
            return lv.get_frame(lv.highlight, lv.tile_size, lv.agent_pov)
        if self.render_mode == "ansi":
            return self._mission + "\n" + self._text
        return None

    def close(self) -> None:
        self.level.close()

    # -- one RNG: the level's -----------------------------------------------------------------
    @property
    def np_random(self) -> np.random.Generator:
        self._np_random = self.level.np_random
        return self._np_random

    @np_random.setter
    def np_random(self, value: np.random.Generator) -> None:
        self.level.np_random = value
        self._np_random = value

    @property
    def np_random_seed(self) -> int:
        return self.level.np_random_seed

    # -- text-agent helpers -----------------------------------------------------------------------
    @property
    def action_names(self) -> list[str]:
        """The action phrases; index i is minigrid action i (extra phrases: `done`)."""
        return list(self._action_names)

    @property
    def mission(self) -> str:
        """The current mission, in the env's language (English: `env.unwrapped.level.mission`)."""
        return self._mission

    @property
    def num_dists(self) -> int | None:
        """`num_dists` of the level (distractors for the paper's levels), None without one."""
        return getattr(self.level, "num_dists", None)

    @property
    def task(self) -> str | None:
        """Task kind of the current episode for the Mixed levels (None before the first reset
        of one that draws among several kinds), else None."""
        # _is_mixed: level is a MixedLocal
        return cast(MixedLocal, self.level).task if self._is_mixed else None

    @property
    def action_kinds(self) -> list[str] | None:
        """The task kinds this env's episodes may have, as the original spelled them.

        The same before and after every reset; one kind (["pick up seq go to"]) for the
        single-task levels, for `tasks=` of one kind and for the original's IDs (kind drawn at
        construction), every kind of `tasks` for a Mixed env drawing at each reset; None for
        minigrid's levels. See "Task kinds" in the class docstring.
        """
        return getattr(self.level, "action_kinds", None)

    def expert_action(self) -> int:
        """The action minigrid's BabyAIBot suggests now (see `babyai_text.Expert`).

        Call it once per step, whatever action is then taken; works through vector envs as
        `envs.call("expert_action")`.
        """
        if self._expert is None:
            self._expert = Expert(self)
        return self._expert.act()


LEVEL_ATTRIBUTES: tuple[str, ...] = tuple(
    name for name, value in vars(BabyAITextEnv).items() if isinstance(value, _FromLevel)
)
"""The level's attributes that `BabyAITextEnv` answers itself (explicit delegation)."""

SETTABLE_LEVEL_ATTRIBUTES: tuple[str, ...] = tuple(
    name for name in LEVEL_ATTRIBUTES if vars(BabyAITextEnv)[name].settable
)


def _check_action_names(action_names: Any) -> tuple[tuple[str, ...], str]:
    """The action phrases and their variant's name ("custom" for a user's own wording).

    `action_names` is a variant name ("en", "fr", "synonyms") or a list or tuple of
    NUM_ACTIONS distinct phrases in minigrid's action order: a list is what a user would pass,
    and testing it against the variants' dict directly would die on its hash.
    """
    if isinstance(action_names, str) and action_names in ACTION_NAMES:
        return tuple(ACTION_NAMES[action_names]), action_names
    if isinstance(action_names, (list, tuple)):
        phrases = tuple(action_names)
        if (
            len(phrases) == NUM_ACTIONS
            and all(isinstance(p, str) and p.strip() for p in phrases)
            and len(set(phrases)) == NUM_ACTIONS
        ):
            same = [v for v, names in ACTION_NAMES.items() if tuple(names) == phrases]
            return phrases, same[0] if same else "custom"
    raise ValueError(
        f"action_names must be one of {tuple(ACTION_NAMES)}, or a list of {NUM_ACTIONS} "
        "distinct non-empty phrases, one per minigrid action in order (e.g. "
        f"{list(ACTION_NAMES['en'])}), got {action_names!r}"
    )


def _check_extra_actions(extra: Sequence[str], names: Sequence[str]) -> tuple[str, ...]:
    phrases: tuple[Any, ...] | None = None
    if not isinstance(extra, (str, bytes)):
        try:
            phrases = tuple(extra)
        except TypeError:  # an int, None, ...: not a sequence at all
            phrases = None
    if phrases is None or not all(isinstance(p, str) and p.strip() for p in phrases):
        raise ValueError(
            f"extra_actions must be a sequence of non-empty phrases (strings), got {extra!r}: "
            "pass e.g. extra_actions=('sleep', 'dance'), or () for none"
        )
    clash = [p for p in phrases if p in names or phrases.count(p) > 1]
    if clash:
        raise ValueError(
            f"extra_actions repeats action phrases {sorted(set(clash))}: each extra phrase must "
            f"be new, neither one of the actions {tuple(names)} nor given twice "
            "(e.g. extra_actions=('sleep', 'dance'))"
        )
    return phrases


_UNIQUE_PAIRS = 18  # (colour, type) pairs of keys, balls and boxes: 6 colours x 3 types

_TARGET_AMONG_DISTRACTORS = (GoToLocal, GoTo)
"""minigrid levels whose gen_mission draws the target among the `num_dists` objects it places
(GoToLocal*, GoTo, GoToOpen, GoToObjMaze*): with none, reset dies inside numpy ("high <= 0")."""


def _room_capacity(room_size: int) -> int:
    """Objects a room holds besides the agent: `max_num_dists`, and at least 1 from size 4
    (2x2 free cells) on; none at size 3 (its one free cell is the agent's)."""
    return max(1, max_num_dists(room_size)) if room_size >= 4 else 0


def _smallest_room(objects: int) -> int:
    """The smallest room_size whose room holds `objects` objects besides the agent."""
    size = MIN_ROOM_SIZE
    while _room_capacity(size) < objects:
        size += 1
    return size


def _check_level(level: RoomGridLevel) -> None:
    """Refuse the levels whose generation would never return."""
    name = type(level).__name__
    if (
        isinstance(level, LevelGen)
        and level.num_rows * level.num_cols == 1
        and level.locked_room_prob > 0
    ):
        # LevelGen would look forever for an inner wall to lock
        raise ValueError(
            f"{name} with a single room needs locked_room_prob=0 "
            f"(got {level.locked_room_prob}): minigrid's LevelGen would loop forever"
        )
    if level.num_rows * level.num_cols == 1 and _room_capacity(level.room_size) < 1:
        # the agent and its mission's object share the one room: reset would never return
        raise ValueError(
            f"{name} needs room_size >= {_smallest_room(1)} (a single room of size "
            f"{level.room_size} has no free cell for an object beside the agent), got "
            f"room_size={level.room_size}"
        )
    if isinstance(level, PutNextLocal):
        # all_unique objects: at most one per (colour, type) pair; two to name in the mission
        num_objs = level.num_objs
        high = min(max_num_dists(level.room_size), _UNIQUE_PAIRS)
        if high < 2:
            raise ValueError(
                f"{name} needs room_size >= {_smallest_room(2)} (two objects to put next to "
                f"each other, and the agent), got room_size={level.room_size}"
            )
        if (
            isinstance(num_objs, (bool, np.bool_))
            or not isinstance(num_objs, (int, np.integer))
            or not 2 <= num_objs <= high
        ):
            raise ValueError(
                f"num_objs must be an int in [2, {high}] for {name} with "
                f"room_size={level.room_size} (more would fill over 2/5 of the room, or repeat "
                f"an object, where generation never ends), got {num_objs!r}: lower num_objs "
                "or raise room_size"
            )
    if isinstance(level, UnlockLocal):
        # the key (and 3 distractors with distractors=True) beside the agent in the middle room
        needed = 1 + (3 if level.distractors else 0)
        if needed > _room_capacity(level.room_size):
            raise ValueError(
                f"{name} with distractors={level.distractors} places {needed} object(s) in the "
                f"agent's room: it needs room_size >= {_smallest_room(needed)}, got "
                f"room_size={level.room_size}"
            )
    num_dists = getattr(level, "num_dists", None)
    if isinstance(num_dists, int) and not isinstance(level, LocalLevel):
        # minigrid levels (ours check their own range): beyond this bound, rejection
        # sampling spins for seconds or forever
        rooms = level.num_rows * level.num_cols
        bound = max_num_dists(level.room_size, rooms)
        low = 1 if isinstance(level, _TARGET_AMONG_DISTRACTORS) else 0
        if not low <= num_dists <= bound:
            why = (
                f"the level picks its target among the num_dists objects it places, so the "
                f"smallest valid value is num_dists={low}"
                if num_dists < low
                else "lower num_dists or raise room_size"
            )
            raise ValueError(
                f"num_dists must be an int in [{low}, {bound}] for {name} "
                f"({rooms} room(s) of size {level.room_size}), got {num_dists}: {why}"
            )
