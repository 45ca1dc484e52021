"""The paper's own levels, which minigrid lacks, on minigrid's room grid and verifier.

They place objects by the rules of the original GLAM level code, so that results on them compare
with the paper's. `num_dists` counts *distractors*, the objects besides the ones a task needs:

| task kind (`info["task"]`) | original spelling (`action_kinds`) | objects in the agent's room |
|---|---|---|
| `goto`, `pickup` | "goto", "pickup" | `num_dists + 1`; the target is one of them |
| `putnext`, `pickup_then_goto`, `pickup_then_pickup` | "putnext", "pick up seq go to", ... | `num_dists + 2`; both targets among them |
| `open` | "open" | `num_dists` + the door's key; a second room, empty, behind the locked door |

Every object is a key, ball or box of a uniform colour, duplicates allowed; the targets are drawn
among the placed objects (so "a red ball" when the room holds two), and a second target that would
repeat the first's description is redrawn unless the room holds two such objects. The "open" task
builds two rooms side by side, locks the door between them (train: yellow, green, blue or purple;
test: red or grey), puts its key and the distractors in the other room with the agent, and names
the door's colour in half of the training missions ("open the door" otherwise) and in every test
mission. The train split never names a held-out pair (`HELD_OUT_PAIRS`), the test split names only
held-out pairs; a draw that breaks the rule is redrawn. `PickupLocal` is the original's plain
level-generator level instead: `num_dists` objects in all (at least 1), the target a colour and
type drawn until one of them matches.

The Mixed levels draw the task kind at every reset from the seeded RNG (`task_draw="reset"`),
or once, unseeded, when the level is built and then for its whole life (`task_draw=
"construction"`, the original's behaviour, used by the original's IDs). `action_kinds` lists the
kinds the level's episodes may have, in the original's spelling: one kind (`["goto"]`) for the
single-task levels and for a kind drawn at construction, every kind of `tasks` otherwise.

`num_dists=0` is valid (one object for goto, the key alone for open). Generation is minigrid's
rejection sampling (`RoomGridLevel.validate_instrs`, objects already next to each other,
unreachable objects), without minigrid's "Sampling rejected" prints: rejections are counted in
`self.rejections`. These levels never add a locked room to a single room (minigrid's `LevelGen`
with one room and its default `locked_room_prob` loops forever looking for a wall to lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from minigrid.core.roomgrid import RoomGrid
from minigrid.envs.babyai.core.roomgrid_level import RejectSampling, RoomGridLevel
from minigrid.envs.babyai.core.verifier import (
    ActionInstr,
    AfterInstr,
    BeforeInstr,
    GoToInstr,
    Instr,
    ObjDesc,
    OpenInstr,
    PickupInstr,
    PutNextInstr,
    SeqInstr,
)

from babyai_text.lexicon import COLORS

__all__ = [
    "HELD_OUT_PAIRS",
    "MIXED_TASKS",
    "ORIGINAL_TASK_NAMES",
    "TASK_DRAWS",
    "LocalLevel",
    "PickupLocal",
    "PickUpSeqGoToLocal",
    "PickUpThenGoToLocal",
    "GoToAfterPickUpLocal",
    "PickUpSeqPickUpLocal",
    "MixedLocal",
    "MixedTrainLocal",
    "MixedTestLocal",
    "max_num_dists",
]

OBJECT_TYPES: tuple[str, ...] = ("key", "ball", "box")

HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {("yellow", "box"), ("red", "key"), ("red", "door"), ("green", "ball"), ("grey", "door")}
)
"""(colour, type) pairs that the train split never names and the test split only names."""

MIXED_TASKS: tuple[str, ...] = ("goto", "pickup", "putnext", "open", "pickup_then_goto")
"""Task kinds of the Mixed levels (`tasks=` keyword, `info["task"]`)."""

ORIGINAL_TASK_NAMES: dict[str, str] = {
    "goto": "goto",
    "pickup": "pickup",
    "putnext": "putnext",
    "open": "open",
    "pickup_then_goto": "pick up seq go to",
    "pickup_then_pickup": "pick up seq pick up",
}
"""Our task kind -> the original levels' spelling (their `action_kinds[0]`)."""

TASK_DRAWS: tuple[str, ...] = ("reset", "construction")
"""When a Mixed level draws its task kind (`task_draw=`): at every reset, from the seeded RNG
(ours), or once when the level is built, unseeded, kept for every episode (the original's)."""

SEQ_FORMS: tuple[str, ...] = ("then", "after")
SPLITS: tuple[str | None, ...] = (None, "train", "test")

# objects a task kind places besides the `num_dists` distractors
_NEEDED_OBJECTS = {
    "goto": 1,
    "pickup": 1,
    "putnext": 2,
    "open": 1,  # the key
    "pickup_then_goto": 2,
    "pickup_then_pickup": 2,
}
_DOOR_COLORS = {
    "train": ("yellow", "green", "blue", "purple"),
    "test": ("red", "grey"),
    None: COLORS,
}
# how many object draws a pair filter may reject before the whole layout is redrawn
_MAX_DRAWS = 1000


def max_num_dists(room_size: int, rooms: int = 1) -> int:
    """Most objects per level that rejection sampling handles: 2/5 of the free cells.

    In an 8x8 room (36 free cells) that is 14: a reset then takes ~10 ms, 16 objects ~160 ms,
    18 several seconds (unreachable objects get rejected over and over).
    """
    return (room_size - 2) ** 2 * rooms * 2 // 5


def canonical_task(name: str) -> str:
    """Our task kind for `name`, given as ours or as the original spelled it.

    "pick up seq go to", "pick_up_seq_go_to" and "pickup_then_goto" all give "pickup_then_goto".
    """
    if not isinstance(name, str):
        raise ValueError(f"a task kind must be a string, got {name!r}")
    key = " ".join(name.replace("_", " ").split())
    for ours, original in ORIGINAL_TASK_NAMES.items():
        if key in (ours.replace("_", " "), original):
            return ours
    raise ValueError(
        f"unknown task kind {name!r}: expected one of {tuple(ORIGINAL_TASK_NAMES)} "
        f"or the original spellings {tuple(ORIGINAL_TASK_NAMES.values())}"
    )


def allowed(pair: tuple[str, str | None], split: str | None) -> bool:
    """May a mission of `split` name `pair` (colour, type)? An uncoloured door names no pair."""
    if split is None or pair[0] is None:
        return True
    return (pair in HELD_OUT_PAIRS) == (split == "test")


class LocalLevel(RoomGridLevel):
    """Base of the paper's levels: one `room_size` room (two for "open") with its objects.

    Subclasses name their task kinds in `tasks`, pick one per episode (`_draw_task`); `split`
    filters the pairs a mission may name (None: any).
    """

    tasks: tuple[str, ...] = ()
    split: str | None = None
    counts_all_objects = False  # PickupLocal: num_dists is every object, not the distractors
    instrs: Instr  # set by gen_mission (minigrid's levels set it without declaring it)

    def __init__(
        self,
        room_size: int = 8,
        num_dists: int = 8,
        forms: Sequence[str] = SEQ_FORMS,
        **kwargs: Any,
    ) -> None:
        if isinstance(room_size, bool) or not isinstance(room_size, int) or room_size < 5:
            raise ValueError(f"room_size must be an int >= 5, got {room_size!r}")
        if self.counts_all_objects:
            low, high = 1, max_num_dists(room_size)
            what = "objects in the room (the target among them)"
        else:
            low = 0
            high = max_num_dists(room_size) - max(_NEEDED_OBJECTS[t] for t in self.tasks)
            what = "distractors besides the objects the task needs"
        if (
            isinstance(num_dists, bool)
            or not isinstance(num_dists, int)
            or not (low <= num_dists <= high)
        ):
            raise ValueError(
                f"num_dists must be an int in [{low}, {high}] for {type(self).__name__} with "
                f"room_size={room_size} (it counts the {what}; the paper used 8; more would "
                f"fill over 2/5 of the room, where generation stalls), got {num_dists!r}"
            )
        forms = tuple(forms)
        if not forms or any(f not in SEQ_FORMS for f in forms):
            raise ValueError(f"forms must be a non-empty subset of {SEQ_FORMS}, got {forms!r}")
        self.num_dists = num_dists
        self.forms = forms
        # the kind of the episode in progress; before the first reset only a level of one kind
        # knows it (a Mixed level of several kinds has drawn nothing yet)
        self.task: str | None = None
        self.rejections = 0
        super().__init__(room_size=room_size, num_rows=1, num_cols=1, **kwargs)
        if len(self.tasks) == 1:
            self._set_known_task(self.tasks[0])

    @property
    def action_kinds(self) -> list[str]:
        """The task kinds this level's episodes may have, as the original spelled them.

        The same list before and after any reset, so a harness may read it at any time: one kind
        (["pick up seq go to"]) for the single-task levels and for a Mixed level whose kind was
        drawn at construction, so `action_kinds[0]` is then every episode's kind, as in the
        original; every kind of `tasks` for a Mixed level that draws at each reset (the kind of
        the episode in progress is `self.task`).
        """
        return [ORIGINAL_TASK_NAMES[t] for t in self.tasks]

    def _set_known_task(self, task: str) -> None:
        """Every episode will be of kind `task`: say so before the first reset, and size the grid
        for it now (tools such as minigrid's FullyObsWrapper size their spaces from `width` when
        they wrap the env, before any reset)."""
        self.task = task
        self._set_num_cols(2 if task == "open" else 1)

    # -- layout -------------------------------------------------------------------------------
    def _set_num_cols(self, num_cols: int) -> None:
        # RoomGrid derives the grid size from the room layout; the Mixed levels switch between
        # one room and two at reset, before the grid is built.
        self.num_cols = num_cols
        self.width = (self.room_size - 1) * num_cols + 1
        self.height = self.room_size

    def _draw_task(self) -> str:
        return self.tasks[0]

    def _gen_grid(self, width: int, height: int) -> None:
        # minigrid's RoomGridLevel._gen_grid, minus the prints, plus one task draw per reset
        self.task = self._draw_task()
        self._set_num_cols(2 if self.task == "open" else 1)
        self.rejections = 0
        while True:
            try:
                RoomGrid._gen_grid(self, self.width, self.height)
                self.gen_mission()
                self.validate_instrs(self.instrs)
            except (RecursionError, RejectSampling):
                self.rejections += 1
                continue
            break
        self.surface = self.instrs.surface(self)
        self.mission = self.surface

    # -- objects ------------------------------------------------------------------------------
    def _random_pair(self) -> tuple[str, str]:
        # minigrid's add_distractors draws the colour, then the type
        color = self._rand_elem(COLORS)
        return color, self._rand_elem(OBJECT_TYPES)

    def _draw_room(self, named: int) -> tuple[list[tuple[str, str]], list[int]]:
        """`num_dists + named` random objects and the indices of the `named` targets among them.

        The targets' pairs must pass the split's filter; a draw that fails is drawn again (the
        objects' places are drawn afterwards, independently, so this is the original's
        whole-layout rejection without rebuilding the grid).
        """
        n = self.num_dists + named
        for _ in range(_MAX_DRAWS):
            pairs = [self._random_pair() for _ in range(n)]
            first = self._rand_int(0, n)
            chosen = [first]
            if named == 2:
                second = self._rand_int(0, n)
                if pairs[second] == pairs[first] and pairs.count(pairs[first]) < 2:
                    # the first target is the only one of its kind: the second must differ
                    while pairs[second] == pairs[first]:
                        second = self._rand_int(0, n)
                chosen.append(second)
            if all(allowed(pairs[i], self.split) for i in chosen):
                return pairs, chosen
        raise RejectSampling("no object draw passed the split's filter")

    def _place(self, pairs: Sequence[tuple[str, str]], room: tuple[int, int] = (0, 0)) -> list:
        return [self.add_object(*room, type_, color)[0] for color, type_ in pairs]

    # -- tasks --------------------------------------------------------------------------------
    def gen_mission(self) -> None:
        if self.task == "open":
            self.instrs = self._gen_open()
            return
        self.place_agent(0, 0)
        assert self.task is not None  # _gen_grid draws the task before calling gen_mission
        self.instrs = self._gen_task(self.task)
        self.check_objs_reachable()

    def _seq(self, first: ActionInstr, second: ActionInstr) -> SeqInstr:
        """first, then second: "A, then B" or "B after you A" (drawn among `self.forms`)."""
        form = self._rand_elem(self.forms)
        if form == "then":
            return BeforeInstr(first, second)
        return AfterInstr(second, first)

    def _gen_task(self, task: str) -> Instr:
        pairs, chosen = self._draw_room(_NEEDED_OBJECTS[task])
        self._place(pairs)
        descs = [ObjDesc(pairs[i][1], pairs[i][0]) for i in chosen]
        if task == "goto":
            return GoToInstr(descs[0])
        if task == "pickup":
            return PickupInstr(descs[0])
        if task == "putnext":
            return PutNextInstr(descs[0], descs[1])
        if task in ("pickup_then_goto", "pickup_then_pickup"):
            second = GoToInstr if task == "pickup_then_goto" else PickupInstr
            return self._seq(PickupInstr(descs[0]), second(descs[1]))
        raise ValueError(f"unknown task {task!r}")

    def _gen_open(self) -> OpenInstr:
        # the locked room is either of the two, its door in the wall between them
        locked = self._rand_int(0, 2)
        free = 1 - locked
        color = self._rand_elem(_DOOR_COLORS[self.split])
        self.add_door(locked, 0, door_idx=2 if locked == 1 else 0, color=color, locked=True)
        self.add_object(free, 0, "key", color)
        self._place([self._random_pair() for _ in range(self.num_dists)], room=(free, 0))
        self.place_agent(free, 0)
        self.check_objs_reachable()
        named = color if self.split == "test" else self._rand_elem((None, color))
        return OpenInstr(ObjDesc("door", named))


class PickupLocal(LocalLevel):
    """Pick up an object in one 8x8 room of `num_dists` objects: "pick up the/a {color} {type}".

    The original built it on BabyAI's level generator: `num_dists` objects in all, then a colour
    and a type drawn until they describe at least one of them. Any pair may be named.
    """

    tasks = ("pickup",)
    counts_all_objects = True

    def gen_mission(self) -> None:
        self._place([self._random_pair() for _ in range(self.num_dists)])
        self.place_agent(0, 0)
        self.check_objs_reachable()
        present = {(o.color, o.type) for o in self.get_room(0, 0).objs}
        for _ in range(_MAX_DRAWS):
            pair = self._random_pair()
            if pair in present:
                break
        else:
            raise RejectSampling("no drawn description matched an object")
        self.instrs = PickupInstr(ObjDesc(pair[1], pair[0]))


class PickUpSeqGoToLocal(LocalLevel):
    """Pick up A then go to B: "pick up A, then go to B" or "go to B after you pick up A".

    A and B never name a held-out pair (the original's filter).
    """

    tasks = ("pickup_then_goto",)
    split = "train"


class PickUpThenGoToLocal(PickUpSeqGoToLocal):
    """Only the "then" form: "pick up A, then go to B"."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(forms=("then",), **kwargs)


class GoToAfterPickUpLocal(PickUpSeqGoToLocal):
    """Only the "after" form: "go to B after you pick up A"."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(forms=("after",), **kwargs)


class PickUpSeqPickUpLocal(LocalLevel):
    """The paper's new-task test: "pick up A, then pick up B" / "pick up B after you pick up A".

    A and B never name a held-out pair (the original's filter).
    """

    tasks = ("pickup_then_pickup",)
    split = "train"


class MixedLocal(LocalLevel):
    """One of the task kinds in `tasks` per episode (`self.task`).

    `task_draw="reset"` (default) draws the kind at every reset from the seeded RNG (same seed,
    same episode); `task_draw="construction"` draws it once, unseeded, when the level is built
    and keeps it for every episode, as the original did (its IDs use that): `tasks` then holds
    the one kind drawn. `split="train"` never names a held-out pair (`HELD_OUT_PAIRS`);
    `split="test"` names only held-out pairs (its doors are red or grey). `tasks` takes our
    names or the original's spellings ("pick up seq go to").
    """

    def __init__(
        self,
        split: str | None = "train",
        tasks: Sequence[str] | str = MIXED_TASKS,
        task_draw: str = "reset",
        **kwargs: Any,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not isinstance(task_draw, str) or task_draw not in TASK_DRAWS:
            raise ValueError(
                f"task_draw must be one of {TASK_DRAWS} (draw the task kind at every reset, or "
                f"once when the env is built, as the original did), got {task_draw!r}"
            )
        if isinstance(tasks, str):
            tasks = (tasks,)
        tasks = tuple(tasks)
        canonical: set[str | None]
        try:
            canonical = {canonical_task(t) for t in tasks}
        except ValueError:
            canonical = {None}
        if not tasks or not canonical <= set(MIXED_TASKS):
            raise ValueError(
                f"tasks must be a non-empty subset of {MIXED_TASKS} (or their original "
                f"spellings, e.g. 'pick up seq go to'), got {tasks!r}"
            )
        # keep the canonical order so that the same subset draws the same kinds
        self.tasks = tuple(t for t in MIXED_TASKS if t in canonical)
        self.split = split
        self.task_draw = task_draw
        super().__init__(**kwargs)
        if task_draw == "construction":
            # the one kind for the level's life, drawn after LocalLevel checked num_dists against
            # every kind of `tasks`: the valid range does not depend on the unseeded draw
            self.tasks = (_draw_unseeded(self.tasks),)
            self._set_known_task(self.tasks[0])

    def _draw_task(self) -> str:
        # one kind left after a construction draw: numpy draws nothing from a range of one, so
        # seed s then plays what `tasks=(kind,)` plays with seed s
        return self._rand_elem(self.tasks)


def _draw_unseeded(options: Sequence[str]) -> str:
    """One of `options`, unseeded: the original drew a Mixed env's kind with an unseeded RNG when
    it was built. A fresh generator (OS entropy) leaves every seeded RNG untouched."""
    return options[int(np.random.default_rng().integers(len(options)))]


class MixedTrainLocal(MixedLocal):
    """The paper's training mix: five task kinds; held-out (colour, type) pairs never named."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(split="train", **kwargs)


class MixedTestLocal(MixedLocal):
    """The paper's held-out test: the same kinds, naming only the held-out pairs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(split="test", **kwargs)
