"""Missions in English and French, rendered from minigrid's instruction tree.

minigrid's verifier builds a mission from its instruction objects (`Instr.surface`);
`render_mission` walks the same tree with the grammar of `lexicon.MISSION_WORDS`, so every task
kind of every level (go to, pick up, open, put next to, "then", "after you", "and", locations,
"the"/"a") has a French form. In English the result equals minigrid's own mission string (tested
over every level).

The article follows minigrid: "the" when the description matched one object when the mission was
generated, "a" when it matched several (`ObjDesc.obj_set`, filled at generation and by
`reset_verifier`, which see the same grid).
"""

from __future__ import annotations

from minigrid.envs.babyai.core.verifier import (
    AfterInstr,
    AndInstr,
    BeforeInstr,
    GoToInstr,
    Instr,
    ObjDesc,
    OpenInstr,
    PickupInstr,
    PutNextInstr,
)

from babyai_text.lexicon import (
    COLOR_WORDS,
    COLOR_WORDS_FR_MASCULINE,
    FRENCH_ARTICLES,
    FRENCH_MASCULINE_TYPES,
    LANGUAGES,
    MISSION_WORDS,
    OBJECT_WORDS,
)

__all__ = ["render_mission", "render_object"]


def render_object(desc: ObjDesc, language: str = "en", de: bool = False) -> str:
    """Noun phrase for an object description: "the red ball", "a key on your left", "la clef rouge".

    `de=True` (French only) gives the form after "à côté": "de la balle", "d'une clef",
    "de l'objet".
    """
    type_ = desc.type or "object"
    definite = len(desc.obj_set) <= 1
    words = MISSION_WORDS[language]
    if language == "en":
        s = OBJECT_WORDS["en"][type_] if type_ in OBJECT_WORDS["en"] else type_
        if desc.color:
            s = COLOR_WORDS["en"][desc.color] + " " + s
        if desc.loc:
            s = s + " " + words[desc.loc]
        return ("the " if definite else "a ") + s

    masculine = type_ in FRENCH_MASCULINE_TYPES
    noun = OBJECT_WORDS["fr"].get(type_, type_)
    s = noun
    if desc.color:
        colors = COLOR_WORDS_FR_MASCULINE if masculine else COLOR_WORDS["fr"]
        s = s + " " + colors[desc.color]
    if desc.loc:
        s = s + " " + words[desc.loc]
    gender = "m" if masculine else "f"
    key = ("de_" if de else "") + ("the_" if definite else "a_") + gender
    article = FRENCH_ARTICLES[key]
    if definite and noun[:1].lower() in "aeiouéèêàâîôû":
        # elision: l'objet, de l'objet
        return ("de l'" if de else "l'") + s
    if article.endswith("'"):
        return article + s
    return article + " " + s


def _render(instr: Instr, language: str, past: bool = False) -> str:
    words = MISSION_WORDS[language]
    suffix = "_past" if past else ""
    if isinstance(instr, GoToInstr):
        return words["goto" + suffix].format(obj=render_object(instr.desc, language))
    if isinstance(instr, PickupInstr):
        return words["pickup" + suffix].format(obj=render_object(instr.desc, language))
    if isinstance(instr, OpenInstr):
        return words["open" + suffix].format(obj=render_object(instr.desc, language))
    if isinstance(instr, PutNextInstr):
        return words["putnext" + suffix].format(
            obj=render_object(instr.desc_move, language),
            obj2=render_object(instr.desc_fixed, language),
            de_obj2=render_object(instr.desc_fixed, language, de=True) if language == "fr" else "",
        )
    if isinstance(instr, AndInstr):
        return words["and"].format(
            a=_render(instr.instr_a, language, past), b=_render(instr.instr_b, language, past)
        )
    if isinstance(instr, BeforeInstr):
        return words["before"].format(
            a=_render(instr.instr_a, language), b=_render(instr.instr_b, language)
        )
    if isinstance(instr, AfterInstr):
        # English: "A after you B"; French: "A après avoir fait B" (past infinitive)
        return words["after"].format(
            a=_render(instr.instr_a, language),
            b=_render(instr.instr_b, language, past=language == "fr"),
        )
    raise TypeError(f"unknown instruction type {type(instr).__name__}")


def render_mission(instrs: Instr, language: str = "en") -> str:
    """The mission for a minigrid instruction tree, in `language` ("en" or "fr")."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
    return _render(instrs, language)
