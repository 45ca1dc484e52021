"""Baselines for the LLM policy, trained on the same levels and frame budgets, evaluated by the
same `ppo_grounding.evaluate` on the same held-out seeds.

| baseline | trainer | agent for `evaluate` |
|---|---|---|
| uniformly random, blind walk | none | `RandomAgent()`, `RandomAgent(weights=action frequencies)` |
| the expert bot | none | `ExpertAgent()` |
| behaviour cloning of the expert | `clone_expert` (a run checkpoint) | `PolicyAgent(load_policy(run)[0])` |
| NPAE (action head) | `PPOTrainer` with `PolicyConfig(head="action_head")` | `PolicyAgent` |
| symbolic PPO | `SymbolicPPOTrainer` (symbolic.py) | `SymbolicAgent` (`trainer.agent()`) |
| DRRN | `DRRNTrainer` (drrn.py) | `DRRNAgent` (`trainer.agent()`) |

The trainers take the LLM trainer's `TrainConfig` and read the same sections with the same
meaning (env.env_id / num_envs / language / num_observations, ppo.total_frames and the PPO
settings, run.seed / max_minutes), so one config gives every method the same budget; each has its
own small settings dataclass for the rest (`SymbolicModelConfig`, `DRRNConfig`). One seed
(run.seed) makes a run repeat exactly.

## Adding your own baseline

An agent is any callable

    agent(prompts: list[str], action_names: Sequence[str]) -> np.ndarray   # (len(prompts),) ints

`evaluate` calls it once per step with one prompt per live env (the LLM policy's prompt: the
possible actions, the goal, the last observations and the actions between them) and the phrases
the env offers (index i is minigrid action i); it returns one action index per prompt. An agent
that needs more than text sets the class attribute `reads_env = True` and then also receives
`envs=`, the gymnasium envs those prompts come from, in the same order; `env.unwrapped` answers
minigrid's state and methods (`gen_obs()` for the symbolic view, `mission`, `agent_pos`, ...),
read-only: never step or reset them. Keep any randomness in a generator the agent seeds itself,
so that two evaluations with the same seed agree. Then

    result = evaluate(MyAgent(), "BabyAI-Text-GoToRedBall-v0", episodes=300)
    result.success_rate, result.confidence_interval   # 95% Wilson interval

meets the same episodes as every baseline here.
"""

from ..evaluate import ExpertAgent, PolicyAgent, RandomAgent
from .cloning import clone_expert
from .drrn import DRRNAgent, DRRNConfig, DRRNetwork, DRRNPolicy, DRRNTrainer
from .symbolic import (
    SymbolicActorCritic,
    SymbolicAgent,
    SymbolicModelConfig,
    SymbolicPolicy,
    SymbolicPPOTrainer,
    make_symbolic_envs,
)
from .text import WordVocabulary

__all__ = [
    "DRRNAgent",
    "DRRNConfig",
    "DRRNPolicy",
    "DRRNTrainer",
    "DRRNetwork",
    "ExpertAgent",
    "PolicyAgent",
    "RandomAgent",
    "SymbolicAgent",
    "SymbolicActorCritic",
    "SymbolicModelConfig",
    "SymbolicPPOTrainer",
    "SymbolicPolicy",
    "WordVocabulary",
    "clone_expert",
    "make_symbolic_envs",
]
