"""The paper's generalisation tests on one model: new and invented words, a rephrased goal,
held-out pairs, a new task, synonym action names, French; one Markdown and one CSV table.

    python examples/generalisation.py runs/my-run                      # a trained run
    python examples/generalisation.py offline-t5 --tests baseline,french  # untrained: zero-shot

Every test plays the same seeds as the baseline row, beside a uniformly random agent.
"""

from dataclasses import dataclass

import tyro
from ppo_grounding.evaluate import load_policy
from ppo_grounding.suite import (
    DEFAULT_ENV_ID,
    describe_tests,
    markdown_table,
    run_suite,
    write_tables,
)


@dataclass
class Args:
    model: tyro.conf.Positional[str]
    """A run, checkpoint or policy directory, a Hugging Face id, or an offline model name."""
    env_id: str | None = None
    """The suite's env (default: the run's, else MixedTrainLocal)."""
    tests: str | None = None
    """Comma-separated tests (default: all of them)."""
    episodes: int = 100
    """Episodes per test and agent."""
    out: str = "generalisation"
    """Directory for generalisation.md and generalisation.csv."""


def main(args: Args) -> None:
    policy, config, kind = load_policy(args.model)
    env_id = args.env_id or (config.env.env_id if kind == "trained" else DEFAULT_ENV_ID)
    rows = run_suite(
        policy,
        env_id=env_id,
        tests=args.tests,
        episodes=args.episodes,
        num_observations=config.env.num_observations,
        progress=True,
    )
    heading = f"# Generalisation of {args.model} ({kind}) from {env_id}\n\n{describe_tests()}"
    md, table = write_tables(rows, args.out, heading=heading)
    print(markdown_table(rows))
    print(f"wrote {md} and {table}")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
