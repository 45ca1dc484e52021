"""llm-policy: turn a Hugging Face language model into a policy over text actions.

GLAM-style (Carta et al., 2023): the policy is a softmax over log P(action | prompt) of each
candidate action, computed with the prompt run once; a value head on the prompt's hidden state is
the critic; LoRA (peft) or full fine-tuning; small offline models for machines without a hub.

    from llm_policy import LLMPolicy, PolicyConfig, build_prompt
    policy = LLMPolicy(PolicyConfig(model="offline-t5"))
    out = policy([prompt], [["turn left", "turn right", "go forward"]])
    action = out.distribution().sample()
"""

from .manifest import CheckpointCorruptError, ManifestWarning, verify_manifest, write_manifest
from .offline import OFFLINE_MODELS, OfflineModelSpec, offline_model_path
from .policy import LLMPolicy, PolicyConfig, PolicyOutput
from .prompt import (
    ENGLISH_ACTION_NAMES,
    FRENCH_ACTION_NAMES,
    FRENCH_TEMPLATE,
    PAPER_TEMPLATE,
    SYNONYM_ACTION_NAMES,
    TEMPLATES,
    PromptTemplate,
    build_prompt,
)
from .scorer import (
    ActionScorer,
    IdenticalCandidatesWarning,
    PromptTruncationWarning,
    ScoreOutput,
    UnknownWordWarning,
)
from .value_head import ActionHead, ValueHead

__version__ = "0.1.0"

__all__ = [
    "ENGLISH_ACTION_NAMES",
    "FRENCH_ACTION_NAMES",
    "FRENCH_TEMPLATE",
    "OFFLINE_MODELS",
    "PAPER_TEMPLATE",
    "SYNONYM_ACTION_NAMES",
    "TEMPLATES",
    "ActionHead",
    "ActionScorer",
    "CheckpointCorruptError",
    "IdenticalCandidatesWarning",
    "LLMPolicy",
    "ManifestWarning",
    "OfflineModelSpec",
    "PolicyConfig",
    "PolicyOutput",
    "PromptTemplate",
    "PromptTruncationWarning",
    "ScoreOutput",
    "UnknownWordWarning",
    "ValueHead",
    "__version__",
    "build_prompt",
    "offline_model_path",
    "verify_manifest",
    "write_manifest",
]
