"""Word substitutions and goal-line rephrasings for the generalisation tests.

Where in the data path: a substitution rewrites what the environment *says*, not what it *is*.
`SubstituteWords` wraps each env and rewrites `obs["mission"]`, `obs["text"]` and
`info["descriptions"]` at reset and at every step, so the history, the prompt and the policy all
read the new words, the same way in every observation of every episode (one fixed word map per
test: a word is always replaced by the same word). The level underneath is untouched: its real
mission (`env.unwrapped.mission`), its verifier and its reward are minigrid's, and the action
names and the prompt's own words ("Goal of the agent:", "Observation 0:") are not substituted.

A rephrased goal line is a prompt-template change (`rephrased_template`), not a word map: only
the line that introduces the goal changes ("You have to go to the red ball").

Replacement is whole-word and case-preserving ("Key" -> "Chair", "KEY" -> "CHAIR"), and an
English article just before a replaced word agrees with the new word ("a box" -> "an afze").

Zero-shot note: the offline models' word-level tokenizer knows the paper's new nouns, colour
synonyms and invented nouns (they are in its word list, with untrained embeddings); any other
word, such as the invented adjectives below, becomes its single unknown token "[UNK]". That is
the honest zero-shot behaviour of such a model: all invented adjectives then read the same.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from llm_policy import TEMPLATES, PromptTemplate

__all__ = [
    "COLOUR_SYNONYMS",
    "GOAL_LINES",
    "INVENTED_ADJECTIVES",
    "INVENTED_NOUNS",
    "NEW_NOUNS",
    "SubstituteWords",
    "WordMap",
    "rephrased_template",
]

NEW_NOUNS: dict[str, str] = {"key": "chair", "ball": "table", "box": "car"}
"""Real English nouns in place of the object types."""

COLOUR_SYNONYMS: dict[str, str] = {
    "red": "vermilion",
    "green": "jade",
    "blue": "cyan",
    "purple": "violet",
    "yellow": "golden",
    "grey": "silver",
}
"""Near-synonyms of minigrid's six colours."""

INVENTED_NOUNS: dict[str, str] = {"key": "dax", "ball": "xolo", "box": "afze"}
"""Made-up nouns in place of the object types (fixed, so every run reads the same words)."""

INVENTED_ADJECTIVES: dict[str, str] = {
    "red": "plok",
    "green": "vask",
    "blue": "zorb",
    "purple": "quen",
    "yellow": "trelb",
    "grey": "snib",
}
"""Made-up adjectives in place of the colours (fixed; none is an English word)."""

GOAL_LINES: dict[str, str] = {
    "i_would_like": "I would like the agent to {goal}",
    "you_have_to": "You have to {goal}",
}
"""Rephrasings of the prompt's "Goal of the agent: {goal}" line."""

_VOWELS = frozenset("aeiouAEIOU")


def _match_case(original: str, new: str) -> str:
    if len(original) > 1 and original.isupper():
        return new.upper()
    if original[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


class WordMap:
    """Replace whole words in a text: `WordMap({"key": "chair"})("You see a red key")`.

    Matching ignores case and the replacement takes the case of the word it replaces. With
    `english_articles` (the default), "a"/"an" directly before a replaced word is corrected for
    the new word's first letter. Words are matched whole: "keys" or "monkey" are left alone.
    """

    def __init__(self, words: Mapping[str, str], *, english_articles: bool = True):
        self.words = {k.lower(): v for k, v in words.items()}
        for old, new in self.words.items():
            if not re.fullmatch(r"\w+", old) or not re.fullmatch(r"\w+", new):
                raise ValueError(f"substitutions map one word to one word, got {old!r} -> {new!r}")
        self.english_articles = english_articles
        alternatives = "|".join(sorted(map(re.escape, self.words), key=len, reverse=True))
        article = r"(?:(?P<article>\b[Aa]n?)(?P<space>\s+))?" if english_articles else ""
        self._pattern = (
            re.compile(rf"{article}\b(?P<word>{alternatives})\b", re.IGNORECASE)
            if self.words
            else None
        )

    def _replace(self, match: re.Match) -> str:
        word = match.group("word")
        new = _match_case(word, self.words[word.lower()])
        article = match.groupdict().get("article")
        if not article:
            return new
        fixed = "an" if new[:1] in _VOWELS else "a"
        return _match_case(article, fixed) + match.group("space") + new

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(self._replace, text)

    def __repr__(self) -> str:
        return f"WordMap({self.words!r})"


class SubstituteWords(gym.Wrapper):
    """Rewrite the mission and every observation sentence an env emits with one `WordMap`.

    Changes `obs["mission"]`, `obs["text"]` and `info["descriptions"]`; everything else (the
    level, its real mission, rewards, termination, `render()`'s picture) is the env's own.
    """

    def __init__(self, env: gym.Env, words: WordMap | Mapping[str, str]):
        super().__init__(env)
        self.word_map = words if isinstance(words, WordMap) else WordMap(words)

    def _rewrite(self, obs: dict[str, Any], info: dict[str, Any]):
        obs = dict(obs)
        obs["mission"] = self.word_map(obs["mission"])
        obs["text"] = self.word_map(obs["text"])
        if "descriptions" in info:
            info = {**info, "descriptions": [self.word_map(s) for s in info["descriptions"]]}
        return obs, info

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self._rewrite(obs, info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        obs, info = self._rewrite(obs, info)
        return obs, reward, terminated, truncated, info


def rephrased_template(goal_line: str, language: str = "en") -> PromptTemplate:
    """The prompt template of `language` with its goal line replaced.

    `goal_line` is a key of `GOAL_LINES` or a pattern with a `{goal}` field.
    """
    pattern = GOAL_LINES.get(goal_line, goal_line)
    if "{goal}" not in pattern:
        raise ValueError(
            f"goal line {goal_line!r} needs a {{goal}} field, or one of {sorted(GOAL_LINES)}"
        )
    return dataclasses.replace(TEMPLATES[language], goal_line=pattern)
