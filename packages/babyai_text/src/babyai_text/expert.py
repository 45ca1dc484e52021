"""The expert: minigrid's BabyAIBot driving any BabyAI-Text env, wrapped or not.

    env = gym.make("BabyAI-Text-GoToLocal-v0")
    obs, info = env.reset(seed=0)
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(expert_action(env))
        done = terminated or truncated

The bot keeps a plan and a map of what it has seen, so it must be asked once per step of the
episode (asking twice in the same step returns the same action). It follows the action actually
taken, whoever chose it, so it also labels the states of another policy (DAgger, behaviour cloning
on on-policy states). A new episode (any `reset`) starts a new plan.

When the bot cannot go on (it believes the mission is done while the env has not ended, a box it
relied on was opened, it hits one of its internal assertions, or it rewrites its plan
`MAX_PLAN_CHANGES` times without choosing an action, which in minigrid 3.2 would otherwise loop
forever on a few states), `Expert.gave_up` is set, the
reason is kept in `Expert.error`, and it returns `turn left` (0), which never changes the world,
until the episode ends. `benchmarks/bot_success.py` measures where that happens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, SupportsIndex, cast

import gymnasium as gym
from minigrid.utils.baby_ai_bot import BabyAIBot

if TYPE_CHECKING:
    from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel

__all__ = ["Expert", "expert_action", "BotStuck"]

FALLBACK_ACTION = 0  # "turn left": changes nothing but the agent's direction
MAX_PLAN_CHANGES = 200
"""Most subgoal pushes and pops the bot may make while choosing one action (a few are usual)."""


class BotStuck(RuntimeError):
    """The bot kept rewriting its plan without choosing an action."""


class _TextEnv(Protocol):
    """What the expert reads of a `BabyAITextEnv` (duck-typed: env.py imports this module)."""

    level: RoomGridLevel
    episode_id: int
    last_action: int | None


class _BoundedStack(list[Any]):
    """The bot's plan stack, counting pushes and pops per action.

    On some states (e.g. BabyAI-GoToImpUnlock-v0, seed 6) minigrid's bot pushes and pops
    exploration subgoals forever inside one `replan` call, each with a breadth-first search: it
    never returns. The cap turns that into a `BotStuck` error.
    """

    def __init__(self, items: Iterable[Any] = (), limit: int = MAX_PLAN_CHANGES) -> None:
        super().__init__(items)
        self.limit = limit
        self.changes = 0

    def _count(self) -> None:
        self.changes += 1
        if self.changes > self.limit:
            raise BotStuck(f"the bot changed its plan {self.limit} times without acting")

    def append(self, item: Any) -> None:
        self._count()
        super().append(item)

    def pop(self, index: SupportsIndex = -1) -> Any:
        self._count()
        return super().pop(index)


class Expert:
    """minigrid's `BabyAIBot` for one of our envs (any wrapper around a `BabyAITextEnv`).

    Attributes:
        gave_up: the bot could not continue this episode (it now returns `FALLBACK_ACTION`).
        error: why, as text ("" while all is well).
    """

    def __init__(self, env: gym.Env) -> None:
        base = env.unwrapped
        # duck-typed (a BabyAITextEnv: its level, a reset counter, the action last executed),
        # so that this module does not import env.py, which imports it
        if not all(hasattr(base, a) for a in ("level", "episode_id", "last_action")):
            raise TypeError(
                f"Expert needs a BabyAI-Text env (babyai_text.BabyAITextEnv), got {type(base)}"
            )
        self.env = cast(_TextEnv, base)  # it has the three attributes, checked above
        self.bot: BabyAIBot | None = None
        self.gave_up = False
        self.error = ""
        self._episode = -1
        self._step = -1
        self._action = FALLBACK_ACTION

    def act(self) -> int:
        """The bot's action (an int in [0, 6)) for the current state of the env."""
        env = self.env
        if env.episode_id == 0:
            raise gym.error.ResetNeeded("reset the env before asking the expert")
        level = env.level
        step = level.step_count
        if env.episode_id != self._episode:
            self._episode = env.episode_id
            self.gave_up = False
            self.error = ""
            try:
                self.bot = BabyAIBot(level)
                self.bot.stack = _BoundedStack(self.bot.stack)
            except Exception as error:  # noqa: BLE001 - any bot failure ends its help
                self._give_up(f"{type(error).__name__}: {error}")
            taken = None
        elif step == self._step:
            return self._action
        elif step != self._step + 1:
            raise RuntimeError(
                f"the expert was last asked at step {self._step} and now at step {step}: ask it "
                "once per step (its plan follows every action taken)"
            )
        else:
            taken = env.last_action
        self._step = step
        if not self.gave_up:
            try:
                # not gave_up: this episode's BabyAIBot was built, with its _BoundedStack
                bot = cast(BabyAIBot, self.bot)
                cast(_BoundedStack, bot.stack).changes = 0
                action = bot.replan(taken)
            except Exception as error:  # noqa: BLE001 - the bot's asserts and DisappearedBoxError
                self._give_up(f"{type(error).__name__}: {error}")
            else:
                if action is None or int(action) >= 6:
                    # minigrid's `done`: the bot thinks the mission is complete, the env does not
                    self._give_up("the bot declared the mission done before the env ended")
                else:
                    self._action = int(action)
        if self.gave_up:
            self._action = FALLBACK_ACTION
        return self._action

    def _give_up(self, reason: str) -> None:
        self.gave_up = True
        self.error = reason


def expert_action(env: Any) -> int:
    """The expert's action for `env` (a BabyAI-Text env, wrapped or not): an int in [0, 6).

    Uses one `Expert` per env, kept on the env; ask it once per step. For vector envs:
    `envs.call("expert_action")` returns one action per sub-env.
    """
    return env.unwrapped.expert_action()
