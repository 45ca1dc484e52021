"""Prompt construction: goal + action list + recent history -> one string, in GLAM's format.

`build_prompt` is a pure function of its inputs. The layout lives in a `PromptTemplate` (plain
data), so another wording or language is a new template, not new code; any callable with
`build_prompt`'s positional signature can replace the template altogether.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "ENGLISH_ACTION_NAMES",
    "FRENCH_ACTION_NAMES",
    "FRENCH_TEMPLATE",
    "PAPER_TEMPLATE",
    "SYNONYM_ACTION_NAMES",
    "TEMPLATES",
    "PromptTemplate",
    "build_prompt",
]

# minigrid actions 0..5; the env package owns these names, they are repeated here only
# as defaults for examples and tests (llm-policy does not depend on babyai-text).
ENGLISH_ACTION_NAMES = ("turn left", "turn right", "go forward", "pick up", "drop", "toggle")
FRENCH_ACTION_NAMES = (
    "tourner à gauche",
    "tourner à droite",
    "aller tout droit",
    "attraper",
    "lâcher",
    "basculer",
)
SYNONYM_ACTION_NAMES = ("rotate left", "rotate right", "move ahead", "take", "release", "switch")


@dataclass(frozen=True)
class PromptTemplate:
    """Wording of the prompt. Each `*_line` is a `str.format` pattern.

    The prompt is: `actions_line`, `goal_line`, then for each kept step `observation_line` and
    (except after the last observation) `action_line`, ending with the empty action slot
    `action_line` formatted with `action=""` and right-stripped ("Action 2:").
    """

    actions_line: str = "Possible action of the agent: {actions}"
    """Receives `actions`: the action names joined with `action_name_separator`."""
    goal_line: str = "Goal of the agent: {goal}"
    observation_line: str = "Observation {i}: {observation}"
    """Receives `i` (0 for the oldest kept observation) and `observation` (the joined sentences)."""
    action_line: str = "Action {i}: {action}"
    action_name_separator: str = ", "
    sentence_suffix: str = ","
    """Appended to every observation sentence (the paper's "..., You see ...," style)."""
    sentence_separator: str = " "
    line_separator: str = "\n"


PAPER_TEMPLATE = PromptTemplate()
"""The GLAM paper's format (its appendix C), with plain newlines between lines (the released code
put " \\n " between lines and ", " after each sentence)."""

FRENCH_TEMPLATE = PromptTemplate(
    actions_line="Actions possibles de l'agent: {actions}",
    goal_line="But de l'agent: {goal}",
    observation_line="Observation {i}: {observation}",
    action_line="Action {i}: {action}",
)

TEMPLATES: dict[str, PromptTemplate] = {"en": PAPER_TEMPLATE, "fr": FRENCH_TEMPLATE}

PromptFunction = Callable[[str, Sequence[Sequence[str]], Sequence[str], Sequence[str]], str]


def build_prompt(
    goal: str,
    observations: Sequence[Sequence[str]],
    actions: Sequence[str],
    action_names: Sequence[str],
    *,
    num_observations: int = 3,
    template: PromptTemplate | str | PromptFunction = PAPER_TEMPLATE,
) -> str:
    """Build the policy prompt for the current step.

    Args:
        goal: the mission, e.g. "pick up the blue key".
        observations: the sentences of each observation, oldest first; the last is the current one.
        actions: the action phrases taken between the observations (`len(observations) - 1`).
        action_names: the phrases the agent may choose from, listed on the first line.
        num_observations: how many of the most recent observations to keep (the paper used 3 and
            ablated 1, 3, 6, 9); the actions between the kept observations are kept with them.
        template: a `PromptTemplate`, a key of `TEMPLATES` ("en", "fr"), or a callable
            `f(goal, observations, actions, action_names) -> str` that receives the already
            truncated history.

    Returns:
        The prompt, ending with the empty action slot ("Action k:") the model continues.
    """
    if isinstance(goal, bytes) or not isinstance(goal, str):
        raise TypeError(f"goal must be a str, got {type(goal).__name__}")
    if isinstance(observations, str) or not isinstance(observations, Sequence):
        raise TypeError(
            "observations must be a sequence of observations, each a list of sentences; "
            f"got {type(observations).__name__}"
        )
    if len(observations) == 0:
        raise ValueError("observations is empty: pass at least the current observation")
    for k, obs in enumerate(observations):
        if isinstance(obs, str) or not isinstance(obs, Sequence):
            raise TypeError(
                f"observations[{k}] is a {type(obs).__name__}; each observation must be a list of "
                "sentences (wrap a single sentence in a list)"
            )
    if isinstance(actions, str) or not isinstance(actions, Sequence):
        raise TypeError(f"actions must be a sequence of str, got {type(actions).__name__}")
    if len(actions) != len(observations) - 1:
        raise ValueError(
            f"got {len(observations)} observations and {len(actions)} actions; there must be "
            "exactly one action between consecutive observations (len(observations) - 1)"
        )
    if isinstance(action_names, str) or len(action_names) == 0:
        raise ValueError("action_names must be a non-empty sequence of action phrases")
    if not isinstance(num_observations, int) or num_observations < 1:
        raise ValueError(f"num_observations must be a positive int, got {num_observations!r}")

    kept_obs = list(observations[-num_observations:])
    kept_actions = list(actions[len(actions) - (len(kept_obs) - 1) :]) if len(kept_obs) > 1 else []

    if isinstance(template, str):
        if template not in TEMPLATES:
            raise ValueError(f"unknown template {template!r}; choose one of {sorted(TEMPLATES)}")
        template = TEMPLATES[template]
    if not isinstance(template, PromptTemplate):
        if not callable(template):
            raise TypeError("template must be a PromptTemplate, a TEMPLATES key or a callable")
        return template(goal, kept_obs, kept_actions, list(action_names))

    lines = [
        template.actions_line.format(actions=template.action_name_separator.join(action_names)),
        template.goal_line.format(goal=goal),
    ]
    for i, sentences in enumerate(kept_obs):
        text = template.sentence_separator.join(s + template.sentence_suffix for s in sentences)
        lines.append(template.observation_line.format(i=i, observation=text).rstrip())
        action = kept_actions[i] if i < len(kept_actions) else ""
        lines.append(template.action_line.format(i=i, action=action).rstrip())
    return template.line_separator.join(lines)
