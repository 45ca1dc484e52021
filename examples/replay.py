"""Watch a policy act before trusting its numbers: one animated GIF (or MP4) per episode, with
the room, the prompt the policy read, its probability of each action and the reward at every step.

    python examples/replay.py runs/my-run --episodes 3
    python examples/replay.py runs/my-run --format mp4   # needs pip install 'ppo-grounding[video]'
    python examples/replay.py offline-gpt2 --test invented_nouns --max-steps 20   # zero-shot
"""

from dataclasses import dataclass
from typing import Literal

import tyro
from ppo_grounding.evaluate import load_policy
from ppo_grounding.replay import replay
from ppo_grounding.suite import DEFAULT_ENV_ID, get_test


@dataclass
class Args:
    model: tyro.conf.Positional[str]
    """A run, checkpoint or policy directory, a Hugging Face id, or an offline model name."""
    env_id: str | None = None
    """Environment (default: the run's, else MixedTrainLocal)."""
    test: str | None = None
    """A generalisation test to replay under (its env, words, action names, language)."""
    episodes: int = 3
    """Episodes, one file each."""
    max_steps: int | None = None
    """Cut each replay after this many steps."""
    out: str = "replays"
    """Directory for the files."""
    format: Literal["gif", "mp4"] = "gif"
    """Animated GIF, or MP4 (needs the ppo-grounding[video] extra)."""


def main(args: Args) -> None:
    policy, config, kind = load_policy(args.model)
    test = get_test(args.test, config.env.language)  # None: as the run trained
    env_id = (
        test.env_id or args.env_id or (config.env.env_id if kind == "trained" else DEFAULT_ENV_ID)
    )
    for path in replay(
        policy,
        env_id,
        args.out,
        episodes=args.episodes,
        num_observations=config.env.num_observations,
        max_steps=args.max_steps,
        video_format=args.format,
        title=f"{args.model}, {args.test or 'no test'}",
        **test.evaluate_kwargs(),
    ):
        print(f"wrote {path}")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
