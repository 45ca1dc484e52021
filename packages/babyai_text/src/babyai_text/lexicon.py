"""Every word the environments can emit, in one place.

The describer (`describe.py`), the mission renderer (`missions.py`) and the action names all read
their words from these tables, so a tokenizer vocabulary or a generalisation test (swap "key" for
"chair", French for English) starts here. `vocabulary(language)` derives the full word list.

French nouns are all feminine (clef, balle, boîte, porte), so articles and colour adjectives agree
without per-noun logic; only minigrid's untyped "object" (French "objet", masculine) needs the
masculine colour forms.
"""

from __future__ import annotations

import re

LANGUAGES: tuple[str, ...] = ("en", "fr")
"""Languages of the descriptions and missions (`language=` keyword)."""

ACTION_NAMES: dict[str, tuple[str, ...]] = {
    # index i is minigrid action i (left, right, forward, pickup, drop, toggle); minigrid's
    # `done` (6) is not offered.
    "en": ("turn left", "turn right", "go forward", "pick up", "drop", "toggle"),
    "fr": (
        "tourner à gauche",
        "tourner à droite",
        "aller tout droit",
        "attraper",
        "lâcher",
        "basculer",
    ),
    "synonyms": ("rotate left", "rotate right", "move ahead", "take", "release", "switch"),
}
"""Action phrases by variant (`action_names=` keyword); index i is minigrid action i."""

NUM_ACTIONS = 6

EXTRA_ACTION_PHRASES: tuple[str, ...] = (
    "sleep",
    "dance",
    "sing",
    "think",
    "wait",
    "jump",
    "wave",
    "shout",
    "sit down",
    "look around",
)
"""Ten useless phrases for the original's action-space experiment (`extra_actions=`): the first k
are what ppo-grounding's `--env.extra-actions k` offers after the real actions, each executing
minigrid's `done`, a no-op in BabyAI. Not in `vocabulary()`: the envs never emit them."""

# minigrid's colour names (minigrid.core.constants.COLOR_NAMES), in minigrid's index order.
COLORS: tuple[str, ...] = ("red", "green", "blue", "purple", "yellow", "grey")

COLOR_WORDS: dict[str, dict[str, str]] = {
    "en": {c: c for c in COLORS},
    # feminine forms: every French noun below is feminine
    "fr": {
        "red": "rouge",
        "green": "verte",
        "blue": "bleue",
        "purple": "violette",
        "yellow": "jaune",
        "grey": "grise",
    },
}
"""Colour adjective per language (French: feminine)."""

COLOR_WORDS_FR_MASCULINE: dict[str, str] = {
    "red": "rouge",
    "green": "vert",
    "blue": "bleu",
    "purple": "violet",
    "yellow": "jaune",
    "grey": "gris",
}
"""French masculine colours, only for minigrid's untyped "object" ("objet") in missions."""

# minigrid object types that can appear in a BabyAI view (plus the MiniGrid-only ones, so that the
# describer never crashes on a custom grid).
OBJECT_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "key": "key",
        "ball": "ball",
        "box": "box",
        "door": "door",
        "wall": "wall",
        "goal": "goal",
        "lava": "lava",
        "floor": "floor",
        "object": "object",
    },
    "fr": {
        "key": "clef",
        "ball": "balle",
        "box": "boîte",
        "door": "porte",
        "wall": "mur",
        "goal": "cible",
        "lava": "lave",
        "floor": "dalle",
        "object": "objet",
    },
}
"""Noun per object type and language."""

DOOR_STATES: tuple[str, ...] = ("open", "closed", "locked")  # minigrid STATE_TO_IDX order

DOOR_STATE_WORDS: dict[str, dict[str, str]] = {
    "en": {"open": "open", "closed": "closed", "locked": "locked"},
    "fr": {"open": "ouverte", "closed": "fermée", "locked": "fermée à clef"},
}
"""Door state adjective per language (French: feminine, agreeing with "porte")."""

DESCRIPTION_TEMPLATES: dict[str, dict[str, str]] = {
    # {a} is the article chosen for the next word ("a"/"an"; unused in French).
    "en": {
        "carry": "You carry {a} {color} {type}",
        "wall": "You see a wall {where}",
        "object": "You see {a} {color} {type} {where}",
        "door": "You see {a} {state} {color} door {where}",
        "forward": "{n} {steps} forward",
        "left": "{n} {steps} left",
        "right": "{n} {steps} right",
        "side_forward": "{side} and {forward}",
        "step": "step",
        "steps": "steps",
    },
    "fr": {
        "carry": "Tu portes une {type} {color}",
        "wall": "Tu vois un mur à {where}",
        "object": "Tu vois une {type} {color} {where}",
        "door": "Tu vois une porte {color} {state} {where}",
        "forward": "{n} {steps} devant",
        "left": "{n} {steps} à gauche",
        "right": "{n} {steps} à droite",
        "side_forward": "{side} et {forward}",
        "step": "pas",
        "steps": "pas",
    },
}
"""Sentence templates of the describer."""

MISSION_WORDS: dict[str, dict[str, str]] = {
    # Mission grammar of minigrid's verifier (`Instr.surface`) and its French translation.
    "en": {
        "goto": "go to {obj}",
        "pickup": "pick up {obj}",
        "open": "open {obj}",
        "putnext": "put {obj} next to {obj2}",
        "before": "{a}, then {b}",
        "after": "{a} after you {b}",
        "and": "{a} and {b}",
        "front": "in front of you",
        "behind": "behind you",
        "left": "on your left",
        "right": "on your right",
        "the": "the",
        "a": "a",
    },
    "fr": {
        "goto": "va vers {obj}",
        "pickup": "attrape {obj}",
        "open": "ouvre {obj}",
        "putnext": "pose {obj} à côté {de_obj2}",
        "before": "{a}, puis {b}",
        "after": "{a} après {b}",
        "and": "{a} et {b}",
        # the clause after "après" is a past infinitive
        "goto_past": "être allé vers {obj}",
        "pickup_past": "avoir attrapé {obj}",
        "open_past": "avoir ouvert {obj}",
        "putnext_past": "avoir posé {obj} à côté {de_obj2}",
        "front": "devant toi",
        "behind": "derrière toi",
        "left": "à ta gauche",
        "right": "à ta droite",
    },
}
"""Mission grammar per language; see `missions.py`."""

FRENCH_ARTICLES: dict[str, str] = {
    # (definite/indefinite, gender) -> article; "de" contractions for "à côté de"
    "the_f": "la",
    "the_m": "le",
    "a_f": "une",
    "a_m": "un",
    "de_the_f": "de la",
    "de_the_m": "du",
    "de_a_f": "d'une",
    "de_a_m": "d'un",
}

FRENCH_MASCULINE_TYPES: frozenset[str] = frozenset({"object"})

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+")


# the per-language tables whose texts the envs emit (descriptions, missions and their words)
_TEXT_TABLES = (DESCRIPTION_TEMPLATES, MISSION_WORDS, COLOR_WORDS, OBJECT_WORDS, DOOR_STATE_WORDS)


def vocabulary(language: str = "en") -> list[str]:
    """All words (no digits) the envs can emit in `language`: descriptions, missions, actions.

    Words are split on spaces and punctuation; French elisions stay attached ("l'objet",
    "d'une"). Use it to build a tokenizer vocabulary; `ACTION_NAMES` variants are included.
    """
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
    texts: list[str] = []
    for table in _TEXT_TABLES:
        texts.extend(table[language].values())
    if language == "fr":
        texts.extend(COLOR_WORDS_FR_MASCULINE.values())
        texts.extend(FRENCH_ARTICLES.values())
        texts.extend(["l'" + w for w in OBJECT_WORDS["fr"].values()])
        texts.extend(["de l'" + w for w in OBJECT_WORDS["fr"].values()])
    else:
        texts.append("an")
    for names in ACTION_NAMES.values():
        texts.extend(names)
    words: set[str] = set()
    for text in texts:
        stripped = re.sub(r"\{[^}]*\}", " ", text)
        words.update(w for w in _WORD.findall(stripped) if not w.isdigit())
    return sorted(words)


def charset() -> frozenset[str]:
    """Characters the observations can contain (for `gymnasium.spaces.Text`)."""
    chars = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.'\n")
    for table in _TEXT_TABLES:
        for language in LANGUAGES:
            for text in table[language].values():
                chars.update(re.sub(r"\{[^}]*\}", "", text))
    for text in FRENCH_ARTICLES.values():
        chars.update(text)
    for names in ACTION_NAMES.values():
        for text in names:
            chars.update(text)
    return frozenset(chars)
