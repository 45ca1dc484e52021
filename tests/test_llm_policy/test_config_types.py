"""`PolicyConfig` checks every field's type at construction (and in `validate()`): a wrong type
is a ValueError naming the field, never a silent config that fails later."""

from __future__ import annotations

import dataclasses
import math

import pytest
from llm_policy import PolicyConfig

WRONG_TYPES = [
    ("attn_implementation", math.nan, "a str or None"),
    ("attn_implementation", 3, "a str or None"),
    ("action_prefix", 1.5, "a str or None"),
    ("action_prefix", b" ", "a str or None"),
    ("normalization", None, "a str"),
    ("head", 0, "a str"),
    ("critic", ["value_head"], "a str"),
    ("finetune", True, "a str"),
    ("dtype", None, "a str"),
    ("scoring", 1.0, "a str"),
    ("num_actions", True, "an int"),
    ("num_actions", 6.0, "an int"),
    ("lora_r", "16", "an int"),
    ("lora_alpha", True, "an int"),
    ("lora_alpha", 32.0, "an int"),
    ("lora_alpha", math.inf, "an int"),
    ("value_head_hidden", None, "an int"),
    ("seed", 1.5, "an int"),
    ("seed", False, "an int"),
    ("seed", "0", "an int"),
    ("max_prompt_tokens", 2.0, "an int or None"),
    ("max_prompt_tokens", True, "an int or None"),
    ("max_batch_prompts", 2.5, "an int or None"),
    ("max_batch_prompts", "64", "an int or None"),
    ("lora_dropout", math.nan, "a finite number"),
    ("lora_dropout", math.inf, "a finite number"),
    ("lora_dropout", "0.1", "a finite number"),
    ("lora_dropout", False, "a finite number"),
    ("gradient_checkpointing", 1, "True or False"),
    ("disable_dropout", "yes", "True or False"),
    ("verify_scoring", None, "True or False"),
    ("trust_remote_code", 0, "True or False"),
]


@pytest.mark.parametrize(("name", "value", "expected"), WRONG_TYPES)
def test_a_field_of_the_wrong_type_is_a_value_error_naming_it(name, value, expected):
    with pytest.raises(ValueError, match=rf"PolicyConfig\.{name} must be {expected}, got"):
        PolicyConfig(**{name: value})


@pytest.mark.parametrize(("name", "value", "expected"), WRONG_TYPES[:6])
def test_validate_checks_fields_changed_after_construction(name, value, expected):
    config = PolicyConfig()
    setattr(config, name, value)
    with pytest.raises(ValueError, match=rf"PolicyConfig\.{name} must be {expected}"):
        config.validate()


def test_every_plain_field_is_covered():
    covered = {name for name, _, _ in WRONG_TYPES}
    own_checks = {"model", "device", "lora_target_modules"}  # tested in test_policy/loading
    assert covered | own_checks == {f.name for f in dataclasses.fields(PolicyConfig)}


def test_values_of_the_declared_types_pass():
    config = PolicyConfig(
        lora_dropout=0,  # an int is a number
        attn_implementation="sdpa",
        action_prefix="",
        max_prompt_tokens=128,
        max_batch_prompts=512,
        seed=2**40,
        lora_target_modules=["q", "v"],
    )
    config.validate()  # idempotent
    assert config.lora_target_modules == ("q", "v")
    assert PolicyConfig(**PolicyConfig().to_dict()) == PolicyConfig()
