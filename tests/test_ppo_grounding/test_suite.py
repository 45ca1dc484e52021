"""The generalisation suite: its tests, the same episodes for every test, the tables it writes,
and bad input refused before any episode is played."""

import csv
import dataclasses
import io
import re

import numpy as np
import pytest
from babyai_text import ACTION_NAMES, MIXED_TASKS
from ppo_grounding.cli import main
from ppo_grounding.evaluate import EXTRA_ACTION_PHRASES, extra_action_phrases, wilson_interval
from ppo_grounding.suite import (
    CSV_COLUMNS,
    TESTS,
    csv_text,
    get_test,
    markdown_table,
    run_suite,
    write_tables,
)

HEADER = (
    "| test | task | env | episodes | policy success (95% CI) | policy mean return "
    "| random success (95% CI) | random mean return |"
)
CELL = re.compile(r"^\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]$")


class Forward:
    """Goes forward, turning right at walls: text-blind, cheap and deterministic."""

    def __call__(self, prompts, action_names):
        return np.array([1 if "wall 1 step forward" in p else 2 for p in prompts])


class NeverCalled:
    def __call__(self, prompts, action_names):
        raise AssertionError("an episode was played before the input was checked")


@pytest.fixture(scope="module")
def mixed_rows():
    return run_suite(
        Forward(),
        tests="baseline,new_nouns,mixed_test",
        episodes=6,
        num_envs=3,
        num_observations=1,
    )


def test_the_suite_holds_the_papers_tests():
    assert list(TESTS) == [
        "baseline",
        "new_nouns",
        "colour_synonyms",
        "invented_nouns",
        "invented_adjectives",
        "invented_nouns_and_adjectives",
        "goal_i_would_like",
        "goal_you_have_to",
        "mixed_test",
        "new_task",
        "synonym_actions",
        "french",
    ]
    assert TESTS["mixed_test"].env_id == "BabyAI-Text-MixedTestLocal-v0"
    assert TESTS["new_task"].env_id == "BabyAI-Text-PickUpSeqPickUpLocal-v0"
    assert TESTS["synonym_actions"].action_names == "synonyms"
    assert TESTS["french"].language == "fr"


def test_markdown_table_has_a_row_per_test_and_task_kind(mixed_rows):
    lines = markdown_table(mixed_rows).splitlines()
    assert lines[0] == HEADER
    assert lines[1] == "|" + "---|" * 8
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert cells[0][:4] == ["baseline", "all", "MixedTrainLocal-v0", "6"]
    tests = [c[0] for c in cells if c[1] == "all"]
    assert tests == ["baseline", "new_nouns", "mixed_test"]
    for test in tests:
        kinds = [c for c in cells if c[0] == test and c[1] != "all"]
        assert kinds and {c[1] for c in kinds} <= set(MIXED_TASKS)
        assert sum(int(c[3]) for c in kinds) == 6
    for c in cells:
        assert CELL.match(c[4]) and CELL.match(c[6]), c
        assert re.fullmatch(r"\d\.\d{3}", c[5]) and re.fullmatch(r"\d\.\d{3}", c[7])


def test_csv_rows_carry_the_counts_and_wilson_interval(mixed_rows):
    table = list(csv.DictReader(io.StringIO(csv_text(mixed_rows))))
    assert tuple(table[0]) == CSV_COLUMNS
    assert len(table) == len(mixed_rows)
    assert {r["agent"] for r in table} == {"policy", "random"}
    for row in table:
        n, k = int(row["episodes"]), int(row["successes"])
        low, high = wilson_interval(k, n)
        assert float(row["success_rate"]) == pytest.approx(k / n, abs=1e-4)
        assert (float(row["ci_low"]), float(row["ci_high"])) == pytest.approx((low, high), abs=1e-4)
    assert {r["env_id"] for r in table if r["test"] == "mixed_test"} == {
        "BabyAI-Text-MixedTestLocal-v0"
    }


def test_every_test_plays_the_same_episodes(mixed_rows):
    """Same seeds: the text-blind agents score the same with and without the new nouns, task
    kinds included."""
    by = {(r.test, r.task, r.agent): r.result for r in mixed_rows}
    for (test, task, agent), result in by.items():
        if test == "new_nouns":
            assert result == by[("baseline", task, agent)]


def test_tables_are_written_with_their_heading(mixed_rows, tmp_path):
    md, table = write_tables(mixed_rows, tmp_path / "out", heading="# Generalisation suite")
    assert md.name == "generalisation.md" and table.name == "generalisation.csv"
    assert md.read_text().startswith("# Generalisation suite\n\n" + HEADER)
    assert table.read_text() == csv_text(mixed_rows)


def test_a_level_without_task_kinds_has_one_row_per_test():
    rows = run_suite(
        Forward(),
        env_id="BabyAI-Text-GoToRedBallNoDists-v0",
        tests=["baseline", "synonym_actions"],
        baselines=None,
        episodes=2,
        num_envs=2,
        num_observations=1,
    )
    assert [(r.test, r.task, r.agent) for r in rows] == [
        ("baseline", "all", "policy"),
        ("synonym_actions", "all", "policy"),
    ]
    assert rows[1].action_names == "synonyms"


def test_bad_names_and_envs_fail_before_any_episode():
    with pytest.raises(
        ValueError,
        match=r"unknown generalisation test\(s\) \['nouns'\]; choose from: baseline, new_nouns",
    ):
        run_suite(NeverCalled(), tests="baseline,nouns")
    with pytest.raises(
        ValueError, match=r"unknown baseline\(s\) \['bot'\]; choose from: random, expert"
    ):
        run_suite(NeverCalled(), baselines=["bot"])
    with pytest.raises(ValueError, match="did you mean BabyAI-Text-GoToLocal-v0"):
        run_suite(NeverCalled(), env_id="BabyAI-Text-GoToLocl-v0")


def test_an_action_head_of_the_wrong_size_does_not_match_the_env():
    class ActionHeadPolicy(NeverCalled):
        class config:
            head, num_actions = "action_head", 7

    with pytest.raises(ValueError, match="outputs 7; this checkpoint does not match the env"):
        run_suite(ActionHeadPolicy(), tests="baseline")


def test_cli_checks_names_before_it_loads_the_model(tmp_path):
    missing = str(tmp_path / "no-such-run")
    with pytest.raises(SystemExit, match=r"unknown generalisation test\(s\) \['frnch'\]"):
        main(
            [
                "evaluate",
                "--checkpoint",
                missing,
                "--suite",
                "generalisation",
                "--suite-tests",
                "frnch",
            ]
        )
    with pytest.raises(SystemExit, match=r"unknown baseline\(s\) \['bot'\]"):
        main(
            ["evaluate", "--checkpoint", missing, "--suite", "generalisation", "--baselines", "bot"]
        )
    with pytest.raises(SystemExit, match="no-such-run does not exist"):
        main(["evaluate", "--checkpoint", missing, "--suite", "generalisation"])
    with pytest.raises(SystemExit, match="is a file, not a model directory"):
        (tmp_path / "notes.txt").write_text("x")
        main(["evaluate", "--checkpoint", str(tmp_path / "notes.txt"), "--suite", "generalisation"])
    with pytest.raises(SystemExit, match="holds no model"):
        main(["evaluate", "--checkpoint", str(tmp_path), "--suite", "generalisation"])


TINY = [
    "--env.num-envs", "2", "--ppo.num-steps", "8", "--ppo.minibatch-size", "8",
    "--ppo.total-frames", "16", "--ppo.update-epochs", "1", "--run.no-progress",
    "--run.no-tensorboard",
]  # fmt: skip


@pytest.mark.slow
def test_cli_suite_over_a_run_and_over_an_untrained_model(tmp_path, capsys):
    run = tmp_path / "run"
    main(["train", *TINY, "--run.output-dir", str(run)])
    suite = ["--suite", "generalisation", "--episodes", "2", "--num-envs", "2"]
    main(["evaluate", "--checkpoint", str(run), *suite, "--suite-tests", "baseline,new_nouns", "--out", str(tmp_path / "a")])  # fmt: skip
    md = (tmp_path / "a" / "generalisation.md").read_text()
    assert (
        f"Model `{run}` (trained)" in md and "suite env `BabyAI-Text-GoToRedBallNoDists-v0`" in md
    )
    assert HEADER in md and "| baseline | all | GoToRedBallNoDists-v0 | 2 |" in md
    table = list(csv.DictReader(open(tmp_path / "a" / "generalisation.csv")))
    assert [(r["test"], r["agent"]) for r in table] == [
        ("baseline", "policy"),
        ("baseline", "random"),
        ("new_nouns", "policy"),
        ("new_nouns", "random"),
    ]
    assert "wrote" in capsys.readouterr().out

    main(["evaluate", "--checkpoint", "offline-gpt2", *suite, "--env-id", "BabyAI-Text-GoToRedBallNoDists-v0", "--suite-tests", "french", "--baselines", "", "--out", str(tmp_path / "b")])  # fmt: skip
    md = (tmp_path / "b" / "generalisation.md").read_text()
    assert "(untrained: zero-shot)" in md and "| french | all |" in md and "random" not in md


def test_extra_actions_are_offered_in_every_test_and_do_nothing():
    offered = set()

    class Extra:
        """Always picks the last phrase: an extra, which executes minigrid's no-op `done`."""

        def __call__(self, prompts, action_names):
            offered.add(tuple(action_names))
            return np.full(len(prompts), len(action_names) - 1)

    rows = run_suite(
        Extra(),
        env_id="BabyAI-Text-GoToRedBallNoDists-v0",
        tests="baseline,synonym_actions",
        baselines=None,
        episodes=2,
        num_envs=2,
        num_observations=1,
        extra_actions=extra_action_phrases(2),
    )
    assert offered == {
        (*ACTION_NAMES["en"], "sleep", "dance"),
        (*ACTION_NAMES["synonyms"], "sleep", "dance"),
    }
    for row in rows:
        assert row.result.successes == 0 and row.result.mean_length == 64  # never moved
    assert [r.action_names for r in rows] == ["en+2 extra", "synonyms+2 extra"]
    assert extra_action_phrases(0) == () and len(EXTRA_ACTION_PHRASES) == 10
    with pytest.raises(ValueError, match="choose an int from 0 to 10"):
        extra_action_phrases(11)


def test_an_action_head_without_the_extra_actions_does_not_match_the_env():
    class ActionHeadPolicy(NeverCalled):
        class config:
            head, num_actions = "action_head", 6

    with pytest.raises(ValueError, match="offers 7 actions but the policy's action head outputs 6"):
        run_suite(ActionHeadPolicy(), tests="baseline", extra_actions=("sleep",))


def test_cli_checks_extra_actions_before_it_loads_the_model(tmp_path):
    missing = str(tmp_path / "no-such-run")
    with pytest.raises(SystemExit, match="--extra-actions: 11 extra actions: choose an int"):
        main(["evaluate", "--checkpoint", missing, "--suite", "generalisation", "--extra-actions", "11"])  # fmt: skip
    with pytest.raises(SystemExit, match="--extra-actions: -1 extra actions"):
        main(["evaluate", "--checkpoint", missing, "--extra-actions", "-1"])


def test_the_expert_baseline_reads_the_level_not_the_words():
    rows = run_suite(
        Forward(),
        env_id="BabyAI-Text-GoToRedBallNoDists-v0",
        tests="baseline,invented_nouns_and_adjectives,french",
        baselines="expert",
        episodes=3,
        num_envs=3,
        num_observations=1,
    )
    expert = [r.result for r in rows if r.agent == "expert"]
    assert len(expert) == 3 and all(r.successes == 3 for r in expert)
    assert expert[0] == expert[1] == expert[2]  # the same plan whatever the text says


def test_a_level_whose_expert_gives_up_fails_before_any_episode(monkeypatch):
    class GivesUp:
        def __init__(self, env):
            self.gave_up, self.error = False, ""

        def act(self):
            self.gave_up, self.error = True, "AssertionError: no path"
            return 0

    monkeypatch.setattr("ppo_grounding.suite.Expert", GivesUp)
    with pytest.raises(ValueError, match=r"test 'new_task': the expert bot has no working plan in BabyAI-Text-PickUpSeqPickUpLocal-v0 \(seed 1000000: AssertionError: no path\)"):  # fmt: skip
        run_suite(NeverCalled(), tests="new_task", baselines="random,expert")


def test_cli_single_evaluation_checks_the_env_before_the_model(tmp_path):
    missing = str(tmp_path / "no-such-run")
    with pytest.raises(SystemExit, match="unknown env id 'BabyAI-Text-GoToLocl-v0'; did you mean"):
        main(["evaluate", "--checkpoint", missing, "--env-id", "BabyAI-Text-GoToLocl-v0"])
    with pytest.raises(SystemExit, match="no-such-run does not exist"):
        main(["evaluate", "--checkpoint", missing])


def test_no_test_means_the_baseline_in_the_runs_language():
    assert get_test(None, "fr") == dataclasses.replace(TESTS["baseline"], language="fr")
    assert get_test("french") is TESTS["french"]
    with pytest.raises(ValueError, match=r"unknown test \['frech'\]; choose from: baseline"):
        get_test("frech")
