"""The paper's own levels (SPEC 1.1), which minigrid lacks, on minigrid's room grid and verifier.

All are single 8x8 rooms with `num_dists` objects, except the "open" task of the Mixed levels,
which adds a second room behind a locked door. Missions always name colour and type
("pick up the red ball"; "a red ball" when the room holds several), as in the paper.

`num_dists` follows minigrid's `GoToLocal`/`LevelGen` convention: it counts every object placed
in the agent's room, the ones the mission names (and the key of the "open" task) included. The
paper used 8; a smaller number makes results incomparable, so the env reports it
(`info["num_dists"]` at reset, `env.spec.kwargs`).

Known trap avoided here: minigrid's `LevelGen` with one room and its default `locked_room_prob`
(0.5) loops forever looking for an inner wall to lock. These levels never add a locked room.

Generation is minigrid's rejection sampling (`RoomGridLevel.validate_instrs`, objects already next
to each other, unreachable objects), without minigrid's "Sampling rejected" prints: rejections are
counted in `self.rejections`.
"""

from __future__ import annotations

from collections.abc import Sequence

from minigrid.core.roomgrid import RoomGrid
from minigrid.envs.babyai.core.roomgrid_level import RejectSampling, RoomGridLevel
from minigrid.envs.babyai.core.verifier import (
    AfterInstr,
    BeforeInstr,
    GoToInstr,
    ObjDesc,
    OpenInstr,
    PickupInstr,
    PutNextInstr,
)

from babyai_text.lexicon import COLORS

__all__ = [
    "HELD_OUT_PAIRS",
    "MIXED_TASKS",
    "LocalLevel",
    "PickupLocal",
    "PickUpSeqGoToLocal",
    "PickUpThenGoToLocal",
    "GoToAfterPickUpLocal",
    "PickUpSeqPickUpLocal",
    "MixedLocal",
    "MixedTrainLocal",
    "MixedTestLocal",
]

OBJECT_TYPES: tuple[str, ...] = ("key", "ball", "box")

HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {("yellow", "box"), ("red", "key"), ("red", "door"), ("green", "ball"), ("grey", "door")}
)
"""(colour, type) pairs that MixedTrainLocal never names and MixedTestLocal only names."""

MIXED_TASKS: tuple[str, ...] = ("goto", "pickup", "putnext", "open", "pickup_then_goto")
"""Task kinds of the Mixed levels (`tasks=` keyword, `info["task"]`)."""

SEQ_FORMS: tuple[str, ...] = ("then", "after")

# how many objects of the agent's room a task kind names (the minimum `num_dists`)
_NAMED_OBJECTS = {
    "goto": 1,
    "pickup": 1,
    "putnext": 2,
    "open": 1,
    "pickup_then_goto": 2,
    "pickup_then_pickup": 2,
}


def max_num_dists(room_size: int, rooms: int = 1) -> int:
    """Most objects per level that rejection sampling handles: 2/5 of the free cells.

    In an 8x8 room (36 free cells) that is 14: a reset then takes ~10 ms, 16 objects ~160 ms,
    18 several seconds (unreachable objects get rejected over and over).
    """
    return (room_size - 2) ** 2 * rooms * 2 // 5


SPLITS = (None, "train", "test")


def _pairs(types: Sequence[str], split: str | None) -> list[tuple[str, str]]:
    pairs = [(c, t) for t in types for c in COLORS]
    if split == "train":
        return [p for p in pairs if p not in HELD_OUT_PAIRS]
    if split == "test":
        return [p for p in pairs if p in HELD_OUT_PAIRS]
    return pairs


class LocalLevel(RoomGridLevel):
    """Base of the paper's levels: one `room_size` room (two for "open") with `num_dists` objects.

    Subclasses pick a task kind per episode (`_draw_task`) and build it in `_gen_task`.
    """

    tasks: tuple[str, ...] = ()
    split: str | None = None

    def __init__(self, room_size: int = 8, num_dists: int = 8, forms=SEQ_FORMS, **kwargs):
        if not isinstance(room_size, int) or room_size < 5:
            raise ValueError(f"room_size must be an int >= 5, got {room_size!r}")
        need = max(_NAMED_OBJECTS[t] for t in self.tasks)
        most = max_num_dists(room_size)
        if (
            isinstance(num_dists, bool)
            or not isinstance(num_dists, int)
            or not (need <= num_dists <= most)
        ):
            raise ValueError(
                f"num_dists must be an int in [{need}, {most}] for {type(self).__name__} "
                f"(it counts every object in the room, the {need} named one(s) included; "
                f"the paper used 8), got {num_dists!r}"
            )
        forms = tuple(forms)
        if not forms or any(f not in SEQ_FORMS for f in forms):
            raise ValueError(f"forms must be a non-empty subset of {SEQ_FORMS}, got {forms!r}")
        self.num_dists = num_dists
        self.forms = forms
        self.task = self.tasks[0]
        self.rejections = 0
        super().__init__(room_size=room_size, num_rows=1, num_cols=1, **kwargs)

    # -- layout -------------------------------------------------------------------------------
    def _set_num_cols(self, num_cols: int) -> None:
        # RoomGrid derives the grid size from the room layout; the Mixed levels switch between
        # one room and two at reset, before the grid is built.
        self.num_cols = num_cols
        self.width = (self.room_size - 1) * num_cols + 1
        self.height = self.room_size

    def _draw_task(self) -> str:
        return self.tasks[0]

    def _gen_grid(self, width, height):
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
    def _draw_pairs(self, n: int, types: Sequence[str] = OBJECT_TYPES) -> list[tuple[str, str]]:
        """`n` distinct (colour, type) pairs allowed by the split, drawn from the level's RNG."""
        pool = _pairs(types, self.split)
        return self._rand_subset(pool, n)

    def _fill_room(self, named: Sequence[tuple[str, str]]) -> list:
        """Place the named objects, then random distractors up to `num_dists` objects."""
        objs = [self.add_object(0, 0, t, c)[0] for c, t in named]
        self.add_distractors(0, 0, num_distractors=self.num_dists - len(objs), all_unique=False)
        self.check_objs_reachable()
        return objs

    # -- tasks --------------------------------------------------------------------------------
    def gen_mission(self):
        self.place_agent(0, 0)
        self.instrs = self._gen_task(self.task)

    def _seq(self, first, second):
        """first, then second: "A, then B" or "B after you A" (drawn among `self.forms`)."""
        form = self._rand_elem(self.forms)
        if form == "then":
            return BeforeInstr(first, second)
        return AfterInstr(second, first)

    def _gen_task(self, task: str):
        if task in ("goto", "pickup"):
            ((color, type_),) = self._draw_pairs(1)
            self._fill_room([(color, type_)])
            desc = ObjDesc(type_, color)
            return GoToInstr(desc) if task == "goto" else PickupInstr(desc)
        if task == "putnext":
            move, fixed = self._draw_pairs(2)
            self._fill_room([move, fixed])
            return PutNextInstr(ObjDesc(move[1], move[0]), ObjDesc(fixed[1], fixed[0]))
        if task in ("pickup_then_goto", "pickup_then_pickup"):
            a, b = self._draw_pairs(2)
            self._fill_room([a, b])
            second = GoToInstr if task == "pickup_then_goto" else PickupInstr
            return self._seq(PickupInstr(ObjDesc(a[1], a[0])), second(ObjDesc(b[1], b[0])))
        if task == "open":
            ((color, _),) = self._draw_pairs(1, types=("door",))
            # the door in the wall between room 0 and room 1; its key among the room's objects
            self.add_door(0, 0, door_idx=0, color=color, locked=True)
            self.add_object(0, 0, "key", color)
            self.add_distractors(0, 0, num_distractors=self.num_dists - 1, all_unique=False)
            self.check_objs_reachable()
            return OpenInstr(ObjDesc("door", color))
        raise ValueError(f"unknown task {task!r}")


class PickupLocal(LocalLevel):
    """Pick up an object in one 8x8 room with 8 objects: "pick up the/a {color} {type}"."""

    tasks = ("pickup",)


class PickUpSeqGoToLocal(LocalLevel):
    """Pick up A then go to B: "pick up A, then go to B" or "go to B after you pick up A"."""

    tasks = ("pickup_then_goto",)


class PickUpThenGoToLocal(PickUpSeqGoToLocal):
    """Only the "then" form: "pick up A, then go to B"."""

    def __init__(self, **kwargs):
        super().__init__(forms=("then",), **kwargs)


class GoToAfterPickUpLocal(PickUpSeqGoToLocal):
    """Only the "after" form: "go to B after you pick up A"."""

    def __init__(self, **kwargs):
        super().__init__(forms=("after",), **kwargs)


class PickUpSeqPickUpLocal(LocalLevel):
    """The paper's new-task test: "pick up A, then pick up B" / "pick up B after you pick up A"."""

    tasks = ("pickup_then_pickup",)


class MixedLocal(LocalLevel):
    """One of the task kinds in `tasks`, drawn from the seeded RNG at every reset (`self.task`).

    goto / pickup / putnext / pickup_then_goto: one 8x8 room. open: a locked door between two 8x8
    rooms, its key in the agent's room ("open the purple door"). `split="train"` never names a
    held-out pair (`HELD_OUT_PAIRS`); `split="test"` names only held-out pairs (doors red or grey).
    """

    def __init__(self, split: str | None = "train", tasks: Sequence[str] = MIXED_TASKS, **kwargs):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if isinstance(tasks, str):
            tasks = (tasks,)
        tasks = tuple(tasks)
        unknown = [t for t in tasks if t not in MIXED_TASKS]
        if not tasks or unknown:
            raise ValueError(f"tasks must be a non-empty subset of {MIXED_TASKS}, got {tasks!r}")
        # keep the canonical order so that the same subset draws the same kinds
        self.tasks = tuple(t for t in MIXED_TASKS if t in tasks)
        self.split = split
        super().__init__(**kwargs)

    def _draw_task(self) -> str:
        return self._rand_elem(self.tasks)


class MixedTrainLocal(MixedLocal):
    """The paper's training mix: five task kinds; held-out (colour, type) pairs never named."""

    def __init__(self, **kwargs):
        super().__init__(split="train", **kwargs)


class MixedTestLocal(MixedLocal):
    """The paper's held-out test: the same kinds, naming only the held-out pairs."""

    def __init__(self, **kwargs):
        super().__init__(split="test", **kwargs)
