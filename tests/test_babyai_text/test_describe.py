"""The describer on hand-built views, with golden sentences for every rule."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from babyai_text import describe_grid, describe_view
from babyai_text.describe import where_phrase
from babyai_text.reference import reference_describe
from minigrid.core.grid import Grid
from minigrid.core.world_object import Ball, Box, Door, Key, Wall

AGENT = (3, 6)  # column 3 of 7, nearest row; facing up the view


def view(cells=None, hidden=(), carrying=None):
    """A 7x7 view: `cells` maps (i, j) -> object; `hidden` cells are unseen."""
    grid = Grid(7, 7)
    for (i, j), obj in (cells or {}).items():
        grid.set(i, j, obj)
    if carrying is not None:
        grid.set(*AGENT, carrying)
    vis = np.ones((7, 7), dtype=bool)
    for i, j in hidden:
        vis[i, j] = False
    return grid, vis


def describe(cells=None, hidden=(), carrying=None, language="en"):
    grid, vis = view(cells, hidden, carrying)
    return describe_grid(grid, vis, language)


def test_empty_view_has_no_sentences():
    assert describe() == []


def test_carrying():
    assert describe(carrying=Key("red")) == ["You carry a red key"]
    assert describe(carrying=Ball("purple")) == ["You carry a purple ball"]
    assert describe(carrying=Box("grey"), language="fr") == ["Tu portes une boîte grise"]


@pytest.mark.parametrize(
    "cell, sentence",
    [
        ((3, 5), "You see a wall 1 step forward"),
        ((3, 0), "You see a wall 6 steps forward"),
        ((2, 6), "You see a wall 1 step left"),
        ((0, 6), "You see a wall 3 steps left"),
        ((4, 6), "You see a wall 1 step right"),
        ((5, 6), "You see a wall 2 steps right"),
    ],
)
def test_wall_in_each_direction(cell, sentence):
    assert describe({cell: Wall()}) == [sentence]


def test_walls_forward_then_left_then_right():
    cells = {(6, 6): Wall(), (1, 6): Wall(), (3, 2): Wall()}
    assert describe(cells) == [
        "You see a wall 4 steps forward",
        "You see a wall 2 steps left",
        "You see a wall 3 steps right",
    ]


def test_only_the_nearest_wall_of_a_line_is_reported_and_diagonal_walls_never():
    cells = {(3, 4): Wall(), (3, 1): Wall(), (2, 5): Wall(), (5, 3): Wall()}
    assert describe(cells) == ["You see a wall 2 steps forward"]


def test_hidden_walls_are_skipped_and_the_scan_goes_on():
    # (3, 4) is an unseen wall: not reported; the scan continues to the visible wall at (3, 2)
    cells = {(3, 4): Wall(), (3, 2): Wall()}
    assert describe(cells, hidden=[(3, 4)]) == ["You see a wall 4 steps forward"]
    assert describe({(1, 6): Wall()}, hidden=[(1, 6)]) == []


def test_object_first_on_the_line_hides_the_wall():
    cells = {(3, 5): Ball("green"), (3, 3): Wall(), (2, 6): Key("blue"), (0, 6): Wall()}
    assert describe(cells) == [
        "You see a blue key 1 step left",
        "You see a green ball 1 step forward",
    ]


def test_door_first_on_the_line_hides_the_wall():
    cells = {(3, 4): Door("red", is_open=True), (3, 1): Wall()}
    assert describe(cells) == ["You see an open red door 2 steps forward"]


@pytest.mark.parametrize(
    "door, en, fr",
    [
        (Door("red", is_open=True), "You see an open red door", "Tu vois une porte rouge ouverte"),
        (Door("green"), "You see a closed green door", "Tu vois une porte verte fermée"),
        (
            Door("purple", is_locked=True),
            "You see a locked purple door",
            "Tu vois une porte violette fermée à clef",
        ),
    ],
)
def test_doors_in_each_state(door, en, fr):
    cells = {(5, 2): door}
    assert describe(cells) == [en + " 2 steps right and 4 steps forward"]
    assert describe(cells, language="fr") == [fr + " 2 pas à droite et 4 pas devant"]


@pytest.mark.parametrize(
    "cell, where",
    [
        ((3, 5), "1 step forward"),
        ((3, 2), "4 steps forward"),
        ((2, 6), "1 step left"),
        ((0, 6), "3 steps left"),
        ((4, 6), "1 step right"),
        ((6, 6), "3 steps right"),
        ((2, 5), "1 step left and 1 step forward"),
        ((1, 4), "2 steps left and 2 steps forward"),
        ((4, 0), "1 step right and 6 steps forward"),
        ((6, 5), "3 steps right and 1 step forward"),
    ],
)
def test_positions_singular_and_plural(cell, where):
    assert describe({cell: Box("yellow")}) == [f"You see a yellow box {where}"]


def test_where_phrase_french():
    assert where_phrase(0, 1, "fr") == "1 pas devant"
    assert where_phrase(-2, 0, "fr") == "2 pas à gauche"
    assert where_phrase(3, 4, "fr") == "3 pas à droite et 4 pas devant"


def test_objects_column_by_column_far_to_near():
    cells = {
        (4, 5): Key("red"),
        (0, 1): Ball("blue"),
        (4, 2): Box("grey"),
        (0, 4): Key("green"),
        (3, 3): Ball("yellow"),
    }
    assert describe(cells) == [
        "You see a blue ball 3 steps left and 5 steps forward",
        "You see a green key 3 steps left and 2 steps forward",
        "You see a yellow ball 3 steps forward",
        "You see a grey box 1 step right and 4 steps forward",
        "You see a red key 1 step right and 1 step forward",
    ]


def test_unseen_objects_are_not_described():
    assert describe({(1, 1): Ball("red")}, hidden=[(1, 1)]) == []


def test_full_sentence_order_and_french():
    cells = {
        (3, 1): Wall(),
        (0, 6): Wall(),
        (1, 3): Door("blue", is_locked=True),
        (5, 5): Ball("red"),
    }
    en = describe(cells, carrying=Key("yellow"))
    assert en == [
        "You carry a yellow key",
        "You see a wall 5 steps forward",
        "You see a wall 3 steps left",
        "You see a locked blue door 2 steps left and 3 steps forward",
        "You see a red ball 2 steps right and 1 step forward",
    ]
    fr = describe(cells, carrying=Key("yellow"), language="fr")
    assert fr == [
        "Tu portes une clef jaune",
        "Tu vois un mur à 5 pas devant",
        "Tu vois un mur à 3 pas à gauche",
        "Tu vois une porte bleue fermée à clef 2 pas à gauche et 3 pas devant",
        "Tu vois une balle rouge 2 pas à droite et 1 pas devant",
    ]


def test_french_colours_and_nouns():
    cells = {(0, 0): Key("green"), (1, 0): Ball("blue"), (2, 0): Box("purple"), (4, 0): Key("grey")}
    assert [s.split(" ")[2:5] for s in describe(cells, language="fr")] == [
        ["une", "clef", "verte"],
        ["une", "balle", "bleue"],
        ["une", "boîte", "violette"],
        ["une", "clef", "grise"],
    ]


def test_orientation_in_a_real_env():
    """Left of the view is the agent's left, whichever way it faces."""
    env = gym.make("BabyAI-Text-GoToLocal-v0", num_dists=1).unwrapped
    env.reset(seed=0)
    level = env.level
    for x in range(1, 7):
        for y in range(1, 7):
            level.grid.set(x, y, None)
    level.agent_pos, level.agent_dir = (3, 4), 0  # facing east (+x); north (-y) is left
    level.grid.set(3, 3, Ball("red"))
    level.grid.set(5, 4, Key("blue"))
    out = describe_view(level.gen_obs()["image"])
    assert "You see a red ball 1 step left" in out
    assert "You see a blue key 2 steps forward" in out
    assert "You see a wall 4 steps forward" not in out  # the key hides the east wall
    assert not any("steps left" in s and "wall" in s for s in out)  # the ball hides it
    assert "You see a wall 3 steps right" in out  # south wall at y = 7


def test_input_validation():
    with pytest.raises(ValueError, match="language must be one of"):
        describe_view(np.zeros((7, 7, 3), np.uint8), "de")
    with pytest.raises(ValueError, match="shape"):
        describe_view(np.zeros((7, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="odd"):
        describe_view(np.zeros((6, 6, 3), np.uint8))


def test_other_view_sizes():
    grid = Grid(5, 5)
    grid.set(2, 2, Wall())
    grid.set(0, 0, Ball("red"))
    assert describe_grid(grid) == [
        "You see a wall 2 steps forward",
        "You see a red ball 2 steps left and 4 steps forward",
    ]


@pytest.mark.parametrize("env_id", ["BabyAI-GoToLocal-v0", "BabyAI-GoTo-v0", "BabyAI-BossLevel-v0"])
def test_matches_the_per_cell_baseline_on_real_views(env_id):
    """The straightforward reference describer, cell by cell, agrees on every view."""
    baseline = reference_describe
    env = gym.make(env_id).unwrapped
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for t in range(300):
        grid, vis = env.gen_obs_grid()
        assert describe_view(grid.encode(vis)) == baseline(grid, vis)
        _, _, term, trunc, _ = env.step(int(rng.choice(6, p=[0.2, 0.2, 0.4, 0.1, 0.05, 0.05])))
        if term or trunc:
            env.reset(seed=t)
