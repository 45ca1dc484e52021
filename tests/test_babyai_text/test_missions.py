"""Missions: English equals minigrid's for every level; French for every task kind."""

from __future__ import annotations

import contextlib
import io

import gymnasium as gym
import pytest
from babyai_text import render_mission
from babyai_text.lexicon import vocabulary
from minigrid.envs.babyai.core.verifier import (
    AfterInstr,
    AndInstr,
    BeforeInstr,
    GoToInstr,
    ObjDesc,
    OpenInstr,
    PickupInstr,
    PutNextInstr,
)

from .conftest import ALL_IDS


def desc(type_, color=None, loc=None, many=False):
    d = ObjDesc(type_, color, loc)
    d.obj_set = [object(), object()] if many else [object()]  # as if matched at generation
    return d


@pytest.mark.parametrize(
    "instr, en, fr",
    [
        (GoToInstr(desc("ball", "red")), "go to the red ball", "va vers la balle rouge"),
        (GoToInstr(desc("key", "green", many=True)), "go to a green key", "va vers une clef verte"),
        (PickupInstr(desc("box", "yellow")), "pick up the yellow box", "attrape la boîte jaune"),
        (OpenInstr(desc("door", "purple")), "open the purple door", "ouvre la porte violette"),
        (OpenInstr(desc("door")), "open the door", "ouvre la porte"),
        (
            PutNextInstr(desc("key", "blue"), desc("ball", "grey", many=True)),
            "put the blue key next to a grey ball",
            "pose la clef bleue à côté d'une balle grise",
        ),
        (
            PutNextInstr(desc("ball", "blue", many=True), desc("box", "red")),
            "put a blue ball next to the red box",
            "pose une balle bleue à côté de la boîte rouge",
        ),
        (
            BeforeInstr(PickupInstr(desc("key", "red")), GoToInstr(desc("ball", "blue"))),
            "pick up the red key, then go to the blue ball",
            "attrape la clef rouge, puis va vers la balle bleue",
        ),
        (
            AfterInstr(GoToInstr(desc("ball", "blue")), PickupInstr(desc("key", "red"))),
            "go to the blue ball after you pick up the red key",
            "va vers la balle bleue après avoir attrapé la clef rouge",
        ),
        (
            AfterInstr(PickupInstr(desc("box", "green")), PickupInstr(desc("key", "red"))),
            "pick up the green box after you pick up the red key",
            "attrape la boîte verte après avoir attrapé la clef rouge",
        ),
        (
            AfterInstr(
                OpenInstr(desc("door", "grey")),
                AndInstr(
                    GoToInstr(desc("ball", "red")),
                    PutNextInstr(desc("key", "blue"), desc("box", "green")),
                ),
            ),
            "open the grey door after you go to the red ball and put the blue key next to "
            "the green box",
            "ouvre la porte grise après être allé vers la balle rouge et avoir posé la clef bleue "
            "à côté de la boîte verte",
        ),
        (
            AndInstr(OpenInstr(desc("door", many=True)), GoToInstr(desc("box", "grey"))),
            "open a door and go to the grey box",
            "ouvre une porte et va vers la boîte grise",
        ),
        (
            GoToInstr(desc("ball", loc="left")),
            "go to the ball on your left",
            "va vers la balle à ta gauche",
        ),
        (
            PickupInstr(desc("key", "red", loc="front", many=True)),
            "pick up a red key in front of you",
            "attrape une clef rouge devant toi",
        ),
        (
            GoToInstr(desc("door", "yellow", loc="behind")),
            "go to the yellow door behind you",
            "va vers la porte jaune derrière toi",
        ),
        (
            GoToInstr(desc("box", loc="right")),
            "go to the box on your right",
            "va vers la boîte à ta droite",
        ),
        # minigrid's untyped object is masculine in French
        (GoToInstr(desc(None, "green")), "go to the green object", "va vers l'objet vert"),
        (
            PutNextInstr(desc("ball", "red"), desc(None, "grey", many=True)),
            "put the red ball next to a grey object",
            "pose la balle rouge à côté d'un objet gris",
        ),
        (
            PutNextInstr(desc("ball", "red"), desc(None, "blue")),
            "put the red ball next to the blue object",
            "pose la balle rouge à côté de l'objet bleu",
        ),
    ],
)
def test_golden_missions(instr, en, fr):
    assert render_mission(instr, "en") == en
    assert render_mission(instr, "fr") == fr


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_english_rendering_equals_minigrid_and_french_exists(env_id):
    level = gym.make(env_id).unwrapped.level
    words = set(vocabulary("fr"))
    for seed in range(10):
        with contextlib.redirect_stdout(io.StringIO()):
            level.reset(seed=seed)
        assert render_mission(level.instrs, "en") == level.mission
        fr = render_mission(level.instrs, "fr")
        assert fr and fr != level.mission
        assert set(fr.replace(",", " ").split()) <= words


def test_french_env_mission(make):
    en = make("BabyAI-Text-PickUpSeqGoToLocal-v0")
    fr = make("BabyAI-Text-PickUpSeqGoToLocal-v0", language="fr")
    for seed in range(20):
        mission_en = en.reset(seed=seed)[0]["mission"]
        mission_fr = fr.reset(seed=seed)[0]["mission"]
        assert ("then" in mission_en) == ("puis" in mission_fr)
        assert ("after you" in mission_en) == ("après avoir" in mission_fr)
        assert mission_fr.startswith(("attrape ", "va vers "))


def test_unknown_language():
    with pytest.raises(ValueError, match="language must be one of"):
        render_mission(GoToInstr(desc("ball", "red")), "es")
