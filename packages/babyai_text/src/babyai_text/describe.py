"""The GLAM describer: minigrid's egocentric view -> English or French sentences.

Pure functions. The input is the view minigrid already computed for its own observation
(`obs["image"]`, i.e. `grid.encode(vis_mask)` of `gen_obs_grid`): a `(V, V, 3)` uint8 array
indexed `[i, j]`, column i from the far left (0) to the far right (V-1), row j from the farthest (0)
to the agent's row (V-1); each cell holds minigrid's `(OBJECT_IDX, COLOR_IDX, STATE)`, with
`unseen` (0) for cells hidden by walls or closed doors and walls for cells off the map. The agent
stands at `(V // 2, V - 1)` facing up the view, and its cell holds what it carries. So describing
costs no second pass over the world grid: it reads 3 bytes per cell of an array that already exists.

Order of the sentences:

1. "You carry a {color} {type}" when carrying.
2. Walls along the three straight lines from the agent, forward, then left, then right: each scan
   skips unseen and empty cells and stops at the first other cell, reported only if it is a wall
   ("You see a wall 2 steps left"). An object or a door first on the line hides the wall, as in the
   original code.
3. Every other visible cell that is not empty and not a wall, except the agent's own, column by
   column from left to right and, within a column, far to near: "You see a blue key 1 step left
   and 2 steps forward", "You see an open red door 3 steps forward".

Sentences are built once per (cell, content) and memoised, so a step costs a few byte lookups.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from minigrid.core.constants import IDX_TO_COLOR, IDX_TO_OBJECT, OBJECT_TO_IDX
from minigrid.core.grid import Grid

from babyai_text.lexicon import (
    COLOR_WORDS,
    DESCRIPTION_TEMPLATES,
    DOOR_STATE_WORDS,
    DOOR_STATES,
    LANGUAGES,
    OBJECT_WORDS,
)

__all__ = ["describe_view", "describe_grid", "where_phrase", "join_descriptions"]

_UNSEEN = OBJECT_TO_IDX["unseen"]  # 0
_EMPTY = OBJECT_TO_IDX["empty"]  # 1
_WALL = OBJECT_TO_IDX["wall"]  # 2
_DOOR = OBJECT_TO_IDX["door"]

# bytes.translate table: 1 for the cells listed in part 3 (anything but unseen, empty, wall)
_ITEM_MARK = bytes(0 if k in (_UNSEEN, _EMPTY, _WALL) else 1 for k in range(256))
# 1 for the cells that stop a wall scan (anything but unseen and empty)
_STOP_MARK = bytes(0 if k in (_UNSEEN, _EMPTY) else 1 for k in range(256))


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _steps(n: int, t: dict[str, str]) -> str:
    return t["step"] if n == 1 else t["steps"]


def where_phrase(dx: int, dy: int, language: str = "en") -> str:
    """Position relative to the agent: `dx` cells to the right (negative: left), `dy` forward.

    "2 steps forward", "1 step left", "3 steps right and 1 step forward".
    """
    _check_language(language)
    t = DESCRIPTION_TEMPLATES[language]
    side = "left" if dx < 0 else "right"
    n = abs(dx)
    if dx == 0:
        return t["forward"].format(n=dy, steps=_steps(dy, t))
    if dy == 0:
        return t[side].format(n=n, steps=_steps(n, t))
    return t["side_forward"].format(
        side=t[side].format(n=n, steps=_steps(n, t)),
        forward=t["forward"].format(n=dy, steps=_steps(dy, t)),
    )


def _names(code: bytes, language: str) -> tuple[str, str, str]:
    obj_idx, color_idx, state = code[0], code[1], code[2]
    obj = IDX_TO_OBJECT.get(obj_idx, "object")
    color = IDX_TO_COLOR.get(color_idx, "grey")
    type_word = OBJECT_WORDS[language].get(obj, obj)
    color_word = COLOR_WORDS[language].get(color, color)
    state_word = ""
    if obj == "door":
        state_word = DOOR_STATE_WORDS[language][DOOR_STATES[min(state, 2)]]
    return type_word, color_word, state_word


def _object_sentence(code: bytes, where: str, language: str) -> str:
    t = DESCRIPTION_TEMPLATES[language]
    type_word, color_word, state_word = _names(code, language)
    if code[0] == _DOOR:
        return t["door"].format(
            a=_article(state_word), state=state_word, color=color_word, where=where
        )
    return t["object"].format(a=_article(color_word), color=color_word, type=type_word, where=where)


def _carry_sentence(code: bytes, language: str) -> str:
    type_word, color_word, _ = _names(code, language)
    return DESCRIPTION_TEMPLATES[language]["carry"].format(
        a=_article(color_word), color=color_word, type=type_word
    )


class _Tables:
    """Memoised sentences for one (language, view size)."""

    def __init__(self, language: str, size: int) -> None:
        t = DESCRIPTION_TEMPLATES[language]
        self.language = language
        self.shape = (size, size, 3)
        ax, ay = size // 2, size - 1
        self.agent = ax * size + ay  # flat index (i * size + j) of the agent's cell
        # the three wall scans as slices of the flat (i * size + j) cell order, nearest first:
        # forward (j decreasing), left (i decreasing), right (i increasing)
        forward = slice(ax * size + ay - 1, ax * size - 1, -1)
        left = slice((ax - 1) * size + ay, None, -size) if ax > 0 else slice(0, 0)
        right = slice((ax + 1) * size + ay, None, size)

        def walls(dx: int, dy: int) -> tuple[str, ...]:
            # the sentence for a wall d = 1, 2, ... cells away along (dx, dy)
            return tuple(
                t["wall"].format(where=where_phrase(dx * d, dy * d, language))
                for d in range(1, size)
            )

        self.scans = ((forward, walls(0, 1)), (left, walls(-1, 0)), (right, walls(1, 0)))
        self.where = [
            where_phrase(k // size - ax, ay - k % size, language) for k in range(size * size)
        ]
        # per-cell memo: code (3 bytes) -> sentence
        self.cells: list[dict[bytes, str]] = [{} for _ in range(size * size)]
        self.carry: dict[bytes, str] = {}

    def item(self, k: int, code: bytes) -> str:
        sentence = self.cells[k][code] = _object_sentence(code, self.where[k], self.language)
        return sentence

    def carried(self, code: bytes) -> str:
        sentence = self.carry.get(code)
        if sentence is None:
            sentence = self.carry[code] = _carry_sentence(code, self.language)
        return sentence


_TABLES: dict[tuple[str, int], _Tables] = {}
_UINT8 = np.dtype(np.uint8)


def _tables(language: str, size: int) -> _Tables:
    tables = _TABLES.get((language, size))
    if tables is None:
        _check_language(language)
        if size % 2 == 0 or size < 3:
            raise ValueError(f"the view size must be odd and >= 3, got {size}")
        tables = _TABLES[(language, size)] = _Tables(language, size)
    return tables


def describe_view(image: np.ndarray, language: str = "en") -> list[str]:
    """Sentences for minigrid's encoded egocentric view.

    Args:
        image: `(V, V, 3)` uint8, minigrid's `obs["image"]` (`grid.encode(vis_mask)` of
            `gen_obs_grid`), V odd (7 in BabyAI). Indexed `[column, row]`; agent at `(V//2, V-1)`.
        language: "en" or "fr".

    Returns:
        The sentences, carrying first, then walls (forward, left, right), then the other cells
        column by column (left to right), far to near within a column. Possibly empty.
    """
    tables = _TABLES.get((language, image.shape[0])) or _tables(language, image.shape[0])
    if image.shape != tables.shape:
        raise ValueError(f"expected a {tables.shape} view, got shape {image.shape}")
    raw = image.tobytes() if image.dtype is _UINT8 else image.astype(np.uint8).tobytes()
    objs = raw[0::3]
    out: list[str] = []

    agent = tables.agent
    if objs[agent] > _WALL:
        out.append(tables.carried(raw[3 * agent : 3 * agent + 3]))

    for scan, sentences in tables.scans:
        line = objs[scan]
        d = line.translate(_STOP_MARK).find(1)  # first cell neither unseen nor empty
        if d >= 0 and line[d] == _WALL:
            out.append(sentences[d])

    marks = objs.translate(_ITEM_MARK)
    cells = tables.cells
    k = marks.find(1)
    while k >= 0:
        if k != agent:
            code = raw[3 * k : 3 * k + 3]
            sentence = cells[k].get(code)
            out.append(sentence if sentence is not None else tables.item(k, code))
        k = marks.find(1, k + 1)
    return out


def describe_grid(
    grid: Grid, vis_mask: np.ndarray | None = None, language: str = "en"
) -> list[str]:
    """Sentences for a `minigrid.core.grid.Grid` view and its visibility mask.

    The view is oriented as `MiniGridEnv.gen_obs_grid` returns it (agent at the bottom centre,
    facing up, its carried object in its own cell). Convenience for hand-built grids; the envs
    call `describe_view` on the encoding minigrid already made.
    """
    return describe_view(grid.encode(vis_mask), language)


def join_descriptions(descriptions: Sequence[str]) -> str:
    """The observation text: one sentence per line (`text.splitlines()` gives the list back)."""
    return "\n".join(descriptions)
