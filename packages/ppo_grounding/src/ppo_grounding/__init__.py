"""ppo-grounding: online PPO fine-tuning of an LLM policy in BabyAI-Text (GLAM).

Data path: env (envs.py) -> text -> prompt (history.py) -> action scores (llm_policy) -> action ->
env, then rollout (buffer.py) -> advantages (gae.py) -> PPO loss (losses.py) -> optimiser step
(update.py) -> metrics (metrics.py, reporter.py) -> checkpoint (checkpoint.py), driven by
PPOTrainer (trainer.py) from a TrainConfig (config.py) in a run directory (run_directory.py);
optionally preceded by behaviour cloning of the expert bot (imitation.py). A run starts from a
fresh policy or from saved weights (sources.py).
"""

from .config import (
    PRESETS,
    DistConfig,
    EnvConfig,
    PPOConfig,
    RunConfig,
    TrainConfig,
    WarmStartConfig,
    offline_preset,
    paper_preset,
)
from .envs import EXTRA_ACTION_PHRASES, extra_action_phrases, make_env
from .evaluate import (
    EVAL_SEED_OFFSET,
    EvalResult,
    ExpertAgent,
    PolicyAgent,
    RandomAgent,
    evaluate,
    load_policy,
    wilson_interval,
)
from .gae import compute_gae
from .losses import PPOLoss, explained_variance, ppo_loss
from .replay import replay
from .rule_agents import DirectionRuleAgent
from .sources import load_init_policy
from .substitutions import SubstituteWords, WordMap, rephrased_template
from .suite import TESTS, GeneralisationTest, run_suite, write_tables
from .trainer import PPOTrainer

__version__ = "0.1.0"

__all__ = [
    "EVAL_SEED_OFFSET",
    "EXTRA_ACTION_PHRASES",
    "PRESETS",
    "TESTS",
    "DirectionRuleAgent",
    "EnvConfig",
    "EvalResult",
    "ExpertAgent",
    "GeneralisationTest",
    "PPOConfig",
    "PPOLoss",
    "PPOTrainer",
    "PolicyAgent",
    "RandomAgent",
    "RunConfig",
    "SubstituteWords",
    "TrainConfig",
    "WarmStartConfig",
    "DistConfig",
    "WordMap",
    "compute_gae",
    "evaluate",
    "explained_variance",
    "extra_action_phrases",
    "load_init_policy",
    "load_policy",
    "make_env",
    "offline_preset",
    "paper_preset",
    "ppo_loss",
    "rephrased_template",
    "replay",
    "run_suite",
    "wilson_interval",
    "write_tables",
]
