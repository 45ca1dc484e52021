"""The generalisation suite: the paper's tests of a policy on words, goals, tasks and languages
it did not train on, on the same evaluation seeds, written as one Markdown and one CSV table.

    ppo-grounding evaluate --checkpoint runs/my-run --suite generalisation --out results/
    ppo-grounding evaluate --checkpoint offline-t5 --suite generalisation --suite-tests baseline,french

Each test (`TESTS`) is data: the env it plays (None: the suite's env, by default the one the run
trained in), its language and action names, a word map applied to the env's text (see
substitutions.py) and an optional rephrased goal line. Every test plays the episodes of seeds
seed_offset .. seed_offset + episodes - 1, so the substitution tests meet exactly the baseline's
layouts and missions with other words. On the Mixed levels each test also gets one row per task
kind (`info["task"]`). Baseline agents play the same episodes: "random" (uniform over the
action names) and "expert" (minigrid's bot, which reads the level's state, so no substitution
touches it: a ceiling, and a check that each test's level is solvable).
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import babyai_text
import gymnasium as gym
import torch
from babyai_text import Expert
from llm_policy.atomic import atomic_write_text
from tqdm.auto import tqdm

from .envs import make_env
from .evaluate import (
    EVAL_SEED_OFFSET,
    Agent,
    EvalResult,
    ExpertAgent,
    PolicyAgent,
    RandomAgent,
    evaluate,
)
from .reporter import stderr_is_terminal
from .substitutions import (
    COLOUR_SYNONYMS,
    INVENTED_ADJECTIVES,
    INVENTED_NOUNS,
    NEW_NOUNS,
    SubstituteWords,
    WordMap,
    rephrased_template,
)

if TYPE_CHECKING:
    from babyai_text import BabyAITextEnv

__all__ = [
    "BASELINES",
    "DEFAULT_ENV_ID",
    "TESTS",
    "GeneralisationTest",
    "SuiteOutput",
    "SuiteRow",
    "check_env_id",
    "check_setup",
    "get_test",
    "markdown_table",
    "resolve_names",
    "run_suite",
    "write_tables",
]

DEFAULT_ENV_ID = "BabyAI-Text-MixedTrainLocal-v0"
"""The suite's env when the model comes from no run (the paper's training level)."""


@dataclass(frozen=True)
class GeneralisationTest:
    """One test: what changes between the training setting and the episodes played."""

    name: str
    description: str
    env_id: str | None = None
    """Env to play; None: the suite's env."""
    language: str = "en"
    """Language of the descriptions, mission and prompt wording."""
    action_names: str | None = None
    """Action-name variant of babyai_text.ACTION_NAMES; None: the language's."""
    words: Mapping[str, str] = field(default_factory=dict)
    """Word map applied to the mission and every observation sentence."""
    goal_line: str | None = None
    """A key of substitutions.GOAL_LINES (or a "{goal}" pattern) replacing the goal line."""

    def env(self, suite_env_id: str) -> str:
        return self.env_id or suite_env_id

    def evaluate_kwargs(self) -> dict:
        """The keywords of `evaluate` that set this test up."""
        wrapper = None
        if self.words:
            word_map = WordMap(self.words)

            def wrapper(env: gym.Env) -> gym.Env:
                return SubstituteWords(env, word_map)

        template = None if self.goal_line is None else rephrased_template(self.goal_line)
        return dict(
            language=self.language,
            action_names=self.action_names,
            template=template,
            env_wrapper=wrapper,
        )


TESTS: dict[str, GeneralisationTest] = {
    t.name: t
    for t in (
        GeneralisationTest("baseline", "no change: the suite's env as in training"),
        GeneralisationTest(
            "new_nouns", "real nouns: key->chair, ball->table, box->car", words=NEW_NOUNS
        ),
        GeneralisationTest(
            "colour_synonyms",
            "red->vermilion, green->jade, blue->cyan, purple->violet, yellow->golden, grey->silver",
            words=COLOUR_SYNONYMS,
        ),
        GeneralisationTest(
            "invented_nouns", "key->dax, ball->xolo, box->afze", words=INVENTED_NOUNS
        ),
        GeneralisationTest(
            "invented_adjectives",
            "red->plok, green->vask, blue->zorb, purple->quen, yellow->trelb, grey->snib",
            words=INVENTED_ADJECTIVES,
        ),
        GeneralisationTest(
            "invented_nouns_and_adjectives",
            "both invented maps at once",
            words={**INVENTED_NOUNS, **INVENTED_ADJECTIVES},
        ),
        GeneralisationTest(
            "goal_i_would_like",
            'goal line "I would like the agent to ..."',
            goal_line="i_would_like",
        ),
        GeneralisationTest(
            "goal_you_have_to", 'goal line "You have to ..."', goal_line="you_have_to"
        ),
        GeneralisationTest(
            "mixed_test",
            "MixedTestLocal: only the held-out colour-object pairs",
            env_id="BabyAI-Text-MixedTestLocal-v0",
        ),
        GeneralisationTest(
            "new_task",
            "PickUpSeqPickUpLocal: pick up A, then pick up B",
            env_id="BabyAI-Text-PickUpSeqPickUpLocal-v0",
        ),
        GeneralisationTest(
            "synonym_actions",
            "action names rotate left, rotate right, move ahead, take, release, switch",
            action_names="synonyms",
        ),
        GeneralisationTest(
            "french",
            "French descriptions, mission, prompt and action names",
            language="fr",
        ),
    )
}
"""The paper's generalisation tests, by name, in table order."""

BASELINES: dict[str, str] = {
    "random": "uniform over the action names, seeded by the seed offset",
    "expert": "minigrid's BabyAIBot, which reads the level's state and never the text",
}
"""Comparison agents the suite can evaluate on the same episodes, by name."""


def resolve_names(names: str | Sequence[str] | None, valid: Mapping, what: str) -> list[str]:
    """Names from a comma-separated string or a list, checked against `valid`; None: all."""
    if names is None:
        return list(valid)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; choose from: {', '.join(valid)}")
    return list(dict.fromkeys(names))


def get_test(name: str | None, language: str = "en") -> GeneralisationTest:
    """The test called `name` (a ValueError lists the valid names); None: no test, the
    baseline setting in `language` (a run's own)."""
    if name is None:
        return dataclasses.replace(TESTS["baseline"], language=language)
    return TESTS[resolve_names([name], TESTS, "test")[0]]


def check_env_id(env_id: str) -> None:
    """Raise a ValueError that names close matches if `env_id` is no registered BabyAI-Text ID."""
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, babyai_text.registered_ids(), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(
        f"unknown env id {env_id!r}{hint} (babyai_text.registered_ids() lists them all)"
    )


def _check_expert(env: gym.Env, seed: int, test: str) -> None:
    bot = Expert(env)
    env.reset(seed=seed)
    done = False
    while not done and not bot.gave_up:
        _, _, terminated, truncated, _ = env.step(bot.act())
        done = terminated or truncated
    if bot.gave_up:
        assert env.spec is not None  # made by gym.make, which sets it
        raise ValueError(
            f"test {test!r}: the expert bot has no working plan in {env.spec.id} (seed {seed}: "
            f"{bot.error}); leave 'expert' out of the baselines for this level"
        )


@dataclass
class SuiteRow:
    """One line of the table: a test, a task kind ("all" or a Mixed level's kind), an agent."""

    test: str
    task: str
    agent: str
    env_id: str
    language: str
    action_names: str
    result: EvalResult


def check_setup(
    tests: Sequence[GeneralisationTest],
    env_id: str,
    seed: int,
    policy,
    extra_actions: Sequence[str] = (),
    expert: bool = False,
) -> None:
    """Build and reset each test's env once, so a bad env or setting fails before the long
    work; check that an action-head policy outputs one logit per action of every env, and with
    `expert`, that the expert bot plays one episode of each env without giving up."""
    for test in tests:
        kwargs = test.evaluate_kwargs()
        kwargs.pop("template")
        env = make_env(test.env(env_id), extra_actions=extra_actions, **kwargs)
        env.reset(seed=seed)
        names = cast("BabyAITextEnv", env.unwrapped).action_names
        if expert:
            _check_expert(env, seed, test.name)
        env.close()
        config = getattr(policy, "config", None)
        if (
            config is not None
            and getattr(config, "head", "score") == "action_head"
            and config.num_actions != len(names)
        ):
            raise ValueError(
                f"test {test.name!r}: {test.env(env_id)} offers {len(names)} actions but the "
                f"policy's action head outputs {config.num_actions}; this checkpoint does not "
                "match the env"
            )


def run_suite(
    policy,
    *,
    env_id: str = DEFAULT_ENV_ID,
    tests: str | Sequence[str] | None = None,
    baselines: str | Sequence[str] | None = ("random",),
    episodes: int = 100,
    seed_offset: int = EVAL_SEED_OFFSET,
    num_envs: int = 16,
    num_observations: int = 3,
    greedy: bool = False,
    extra_actions: Sequence[str] = (),
    progress: bool = False,
    output: SuiteOutput | None = None,
) -> list[SuiteRow]:
    """Evaluate `policy` (an LLMPolicy, or any `Agent`) and the baselines on each test.

    `extra_actions` are offered in every test after its action names (no-ops). Names are
    checked, and every test's env built and reset once, before any episode is played.
    Each (test, agent) evaluation restarts from the same seeds and, for an LLMPolicy and the
    baselines, a fresh agent RNG, so a row does not depend on which other tests ran (an `Agent`
    passed in is used as it is). Returns the rows in table order.

    With `output`, the tables are rewritten after each (test, agent), and the pairs whose rows
    `output` already holds from a run with the same settings are taken from it, not played
    again: an interrupted suite keeps what it finished, and the same command continues it.
    """
    test_names = resolve_names(tests, TESTS, "generalisation test(s)")
    baseline_names = resolve_names(baselines or [], BASELINES, "baseline(s)")
    chosen = [TESTS[n] for n in test_names]
    for test in chosen:
        check_env_id(test.env(env_id))
    check_setup(chosen, env_id, seed_offset, policy, extra_actions, "expert" in baseline_names)

    def make_agent(name: str) -> Agent:
        if name == "random":
            return RandomAgent(seed=seed_offset)
        if name == "expert":
            return ExpertAgent()
        if callable(policy) and not isinstance(policy, torch.nn.Module):
            return policy
        generator = torch.Generator().manual_seed(seed_offset)
        return PolicyAgent(policy, greedy=greedy, generator=generator)

    agents = ["policy", *baseline_names]
    finished = output.finished_rows() if output is not None else {}
    bar = None
    if progress and stderr_is_terminal():  # no redraws in logs
        bar = tqdm(total=len(chosen) * len(agents), desc="generalisation", unit="test")
    rows: list[SuiteRow] = []
    for test in chosen:
        env = test.env(env_id)
        variant = test.action_names or test.language
        if extra_actions:
            variant += f"+{len(extra_actions)} extra"
        for agent in agents:
            if (test.name, agent) in finished:  # played by an earlier run of the same settings
                rows += finished[(test.name, agent)]
                if bar is not None:
                    bar.update(1)
                continue
            if bar is not None:
                bar.set_postfix_str(f"{test.name} / {agent}")
            result = evaluate(
                make_agent(agent),
                env,
                episodes=episodes,
                seed_offset=seed_offset,
                num_envs=num_envs,
                num_observations=num_observations,
                progress=progress,
                label=f"{test.name} ({agent})",
                extra_actions=extra_actions,
                **test.evaluate_kwargs(),
            )
            rows.append(SuiteRow(test.name, "all", agent, env, test.language, variant, result))
            for task, of_task in result.by_task.items():
                rows.append(SuiteRow(test.name, task, agent, env, test.language, variant, of_task))
            if output is not None:
                output.write(_table_order(rows))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return _table_order(rows)


def _table_order(rows: Sequence[SuiteRow]) -> list[SuiteRow]:
    """Each test's "all" row, then its task kinds, agents side by side."""
    order: dict[tuple[str, str], int] = {}
    for k, r in enumerate(rows):
        order.setdefault((r.test, r.task), k)
    return sorted(rows, key=lambda r: order[(r.test, r.task)])


CSV_COLUMNS = (
    "test",
    "task",
    "agent",
    "env_id",
    "language",
    "action_names",
    "episodes",
    "successes",
    "success_rate",
    "ci_low",
    "ci_high",
    "mean_return",
    "mean_length",
)


def csv_text(rows: Sequence[SuiteRow]) -> str:
    """One line per (test, task, agent), with the success rate's 95% Wilson interval."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        low, high = r.result.confidence_interval
        writer.writerow(
            [
                r.test,
                r.task,
                r.agent,
                r.env_id,
                r.language,
                r.action_names,
                r.result.episodes,
                r.result.successes,
                f"{r.result.success_rate:.4f}",
                f"{low:.4f}",
                f"{high:.4f}",
                f"{r.result.mean_return:.4f}",
                f"{r.result.mean_length:.2f}",
            ]
        )
    return out.getvalue()


def markdown_table(rows: Sequence[SuiteRow], *, heading: str = "") -> str:
    """Tests as rows (task kinds under their test), agents side by side: success with its 95%
    interval and mean return."""
    agents = list(dict.fromkeys(r.agent for r in rows))
    cells: dict[tuple[str, str], dict[str, SuiteRow]] = {}
    for r in rows:
        cells.setdefault((r.test, r.task), {})[r.agent] = r
    header = ["test", "task", "env", "episodes"]
    for agent in agents:
        header += [f"{agent} success (95% CI)", f"{agent} mean return"]
    lines = [heading + "\n"] if heading else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (test, task), by_agent in cells.items():
        first = next(iter(by_agent.values()))
        env = first.env_id.removeprefix("BabyAI-Text-")
        line = [test, task, env, str(first.result.episodes)]
        for agent in agents:
            row = by_agent.get(agent)
            if row is None:
                line += ["", ""]
                continue
            low, high = row.result.confidence_interval
            line += [
                f"{row.result.success_rate:.3f} [{low:.3f}, {high:.3f}]",
                f"{row.result.mean_return:.3f}",
            ]
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines) + "\n"


def write_tables(
    rows: Sequence[SuiteRow], out_dir: str | Path, *, heading: str = ""
) -> tuple[Path, Path]:
    """Write `<out_dir>/generalisation.md` and `<out_dir>/generalisation.csv` (each atomically:
    a reader or an interruption never sees half a table); return both."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, table = out / "generalisation.md", out / "generalisation.csv"
    atomic_write_text(md, markdown_table(rows, heading=heading))
    atomic_write_text(table, csv_text(rows))
    return md, table


RESULTS_FILE = "generalisation.json"
"""Beside the tables: the settings they were played with and every row's raw counts, read back
by a rerun to skip what is done."""


@dataclass
class SuiteOutput:
    """The suite's files in `out_dir`: the two tables and RESULTS_FILE, rewritten after each
    (test, agent) so that an interrupted suite keeps what it finished.

    `settings` is what makes two runs' rows interchangeable (the model's identity, env, episodes,
    seeds, parallel envs, prompt length, greedy or sampled, extra actions; any JSON dict): a
    rerun with equal settings continues from RESULTS_FILE, one with other settings starts over
    and replaces the files (`note` says which, for the caller to show)."""

    out_dir: Path
    settings: dict
    heading: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        # as JSON reads them back (tuples become lists), so that equal settings compare equal
        self.settings = json.loads(json.dumps(self.settings))

    @property
    def results_path(self) -> Path:
        return self.out_dir / RESULTS_FILE

    def finished_rows(self) -> dict[tuple[str, str], list[SuiteRow]]:
        """The rows of an earlier run with the same settings, by (test, agent); {} if none."""
        path = self.results_path
        if not path.is_file():
            return {}
        try:
            saved = json.loads(path.read_text())
            same = isinstance(saved, dict) and saved.get("settings") == self.settings
            rows = [_row_from_json(r) for r in saved["rows"]] if same else []
        except (OSError, ValueError, KeyError, TypeError) as error:
            self.note = f"{path} cannot be read ({error}): playing every test again"
            return {}
        if not same:
            self.note = (
                f"{path} holds results of other settings (model, env, episodes, seeds, ...): "
                "playing every test again; its tables will be replaced"
            )
            return {}
        finished: dict[tuple[str, str], list[SuiteRow]] = {}
        for row in rows:
            finished.setdefault((row.test, row.agent), []).append(row)
        self.note = (
            f"continuing from {path}: {len(finished)} (test, agent) pair(s) already played "
            "with these settings"
        )
        return finished

    def write(self, rows: Sequence[SuiteRow]) -> tuple[Path, Path]:
        """The tables of `rows`, then RESULTS_FILE (last: every pair it lists is in the tables)."""
        md, table = write_tables(rows, self.out_dir, heading=self.heading)
        record = {"settings": self.settings, "rows": [_row_to_json(r) for r in rows]}
        atomic_write_text(self.results_path, json.dumps(record, indent=1) + "\n")
        return md, table


def _row_to_json(row: SuiteRow) -> dict:
    r = row.result
    return {
        **{f: getattr(row, f) for f in ("test", "task", "agent", "env_id", "language")},
        "action_names": row.action_names,
        "episodes": r.episodes,
        "successes": r.successes,
        "mean_return": r.mean_return,
        "mean_length": r.mean_length,
    }


def _row_from_json(data: dict) -> SuiteRow:
    result = EvalResult(
        int(data["episodes"]),
        int(data["successes"]),
        float(data["mean_return"]),
        float(data["mean_length"]),
    )
    return SuiteRow(
        test=str(data["test"]),
        task=str(data["task"]),
        agent=str(data["agent"]),
        env_id=str(data["env_id"]),
        language=str(data["language"]),
        action_names=str(data["action_names"]),
        result=result,
    )


def describe_tests(names: Sequence[str] | None = None) -> str:
    """The tests as a bullet list, for a README or the table's heading."""
    return "\n".join(f"- `{n}`: {TESTS[n].description}" for n in (names or TESTS))
