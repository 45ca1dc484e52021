"""Zero-shot: let any language model act in BabyAI-Text by scoring the action phrases, no training.

    python examples/zero_shot.py                                   # the offline model (random weights)
    python examples/zero_shot.py --model google/flan-t5-small      # any Hugging Face id, on your machine

Prints the prompt and the policy over actions at the first step, then the success rate.
"""

from dataclasses import dataclass

import babyai_text  # noqa: F401  (registers the BabyAI-Text-* IDs)
import gymnasium as gym
import tyro
from llm_policy import LLMPolicy, PolicyConfig, build_prompt
from ppo_grounding import PolicyAgent, RandomAgent, evaluate


@dataclass
class Args:
    model: str = "offline-t5"
    """Hugging Face id, local path, or an offline model name."""
    env_id: str = "BabyAI-Text-GoToLocal-v0"
    """Environment to act in."""
    normalization: str = "token"
    """How action scores are normalised: sum, token or word."""
    episodes: int = 50
    """Episodes to evaluate."""


def main(args: Args) -> None:
    policy = LLMPolicy(PolicyConfig(model=args.model, normalization=args.normalization))
    env = gym.make(args.env_id)
    obs, info = env.reset(seed=0)
    actions = env.unwrapped.action_names
    prompt = build_prompt(obs["mission"], [info["descriptions"]], [], actions)
    probs = policy([prompt], [list(actions)]).distribution().probs[0]
    print(prompt, "\n")
    for name, p in sorted(zip(actions, probs.tolist(), strict=False), key=lambda x: -x[1]):
        print(f"  {p:6.3f}  {name}")

    print(
        f"\n{args.model}: {evaluate(PolicyAgent(policy), args.env_id, episodes=args.episodes).summary()}"
    )
    print(f"random: {evaluate(RandomAgent(seed=0), args.env_id, episodes=args.episodes).summary()}")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
