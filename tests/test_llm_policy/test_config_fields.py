"""Each `PolicyConfig` field declares its kind next to it (what loading a checkpoint and
--run.init-from compare, what `from_pretrained` may override), fields with a fixed set of values
are `Literal`s (checked by the config, listed by tyro's --help), and a config is validated once
per construction."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import tyro
from llm_policy import LLMPolicy, PolicyConfig, write_manifest
from llm_policy.batching import NORMALIZATIONS
from llm_policy.policy import _OVERRIDABLE, FIELD_KINDS, LORA, RUN_TIME, WEIGHTS
from llm_policy.precision import DTYPES
from llm_policy.scorer import SCORING_METHODS

# The hand-written lists these kinds replaced (policy.py's _OVERRIDABLE, checkpoint.py's
# _WEIGHT_FIELDS, _LORA_FIELDS and _RUN_TIME_FIELDS before issue 19): the derived ones match.
OLD_WEIGHT_FIELDS = {
    "model",
    "finetune",
    "head",
    "num_actions",
    "critic",
    "value_head_hidden",
    "action_prefix",
    "seed",
}
OLD_LORA_FIELDS = {"lora_r", "lora_alpha", "lora_dropout", "lora_target_modules"}
OLD_RUN_TIME_FIELDS = {
    "normalization",
    "max_prompt_tokens",
    "max_batch_prompts",
    "dtype",
    "gradient_checkpointing",
    "scoring",
    "disable_dropout",
    "attn_implementation",
    "verify_scoring",
    "trust_remote_code",
}
OLD_OVERRIDABLE = OLD_RUN_TIME_FIELDS | {"model", "device"}

CHOICES = {
    "normalization": NORMALIZATIONS,
    "head": ("score", "action_head"),
    "critic": ("value_head", "frozen_base"),
    "finetune": ("lora", "full"),
    "dtype": tuple(DTYPES),
    "scoring": SCORING_METHODS,
}


def test_every_field_declares_a_kind():
    # a new field without one would be neither compared on --run.init-from nor overridable
    missing = [
        f.name
        for f in dataclasses.fields(PolicyConfig)
        if f.metadata.get("kind") not in FIELD_KINDS
    ]
    assert missing == []
    names = [f.name for f in dataclasses.fields(PolicyConfig)]
    by_kind = [name for kind in FIELD_KINDS for name in PolicyConfig.field_names(kind)]
    assert sorted(by_kind) == sorted(names)  # each field in exactly one kind


def test_the_derived_lists_are_the_hand_written_ones():
    assert set(PolicyConfig.field_names(WEIGHTS)) == OLD_WEIGHT_FIELDS
    assert set(PolicyConfig.field_names(LORA)) == OLD_LORA_FIELDS
    # the device is run-time too; --run.init-from maps it to each process's own device
    assert set(PolicyConfig.field_names(RUN_TIME)) == OLD_RUN_TIME_FIELDS | {"device"}
    assert _OVERRIDABLE == OLD_OVERRIDABLE
    with pytest.raises(ValueError, match="field kind 'weight' is not one of"):
        PolicyConfig.field_names("weight")


def test_from_pretrained_refuses_to_override_a_weights_field(tmp_path):
    (tmp_path / "llm_policy_config.json").write_text(
        '{"format": "llm-policy", "format_version": 1, "config": {}}'
    )
    write_manifest(tmp_path)
    with pytest.raises(ValueError, match=r"cannot override \['head', 'lora_r'\] when loading"):
        LLMPolicy.from_pretrained(tmp_path, head="action_head", lora_r=4, dtype="bfloat16")


def test_the_literal_choices_are_the_modules_tuples():
    hints = typing.get_type_hints(PolicyConfig)
    literals = {
        name: typing.get_args(hint)
        for name, hint in hints.items()
        if typing.get_origin(hint) is typing.Literal
    }
    assert literals == CHOICES


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_a_value_outside_the_choices_is_refused_with_them(name):
    options = CHOICES[name]
    with pytest.raises(ValueError) as error:
        PolicyConfig(**{name: "nonsense"})
    assert str(error.value) == f"PolicyConfig.{name}='nonsense' is not one of {options}"
    for value in options:
        kw = {"finetune": "lora"} if value == "frozen_base" else {}
        assert getattr(PolicyConfig(**{name: value}, **kw), name) == value


def test_help_lists_the_choices_and_the_command_line_refuses_others(capsys):
    with pytest.raises(SystemExit) as exit_:
        tyro.cli(PolicyConfig, args=["--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    for options in CHOICES.values():
        assert "{" + ",".join(options) + "}" in shown
    with pytest.raises(SystemExit) as exit_:
        tyro.cli(PolicyConfig, args=["--dtype", "float8"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice 'float8'" in err and "Traceback" not in err


@pytest.fixture
def validations(monkeypatch):
    """The number of PolicyConfig.validate calls so far (a list of one count)."""
    count = [0]
    validate = PolicyConfig.validate

    def counted(self):
        count[0] += 1
        validate(self)

    monkeypatch.setattr(PolicyConfig, "validate", counted)
    return count


def test_a_train_config_validates_its_policy_once(validations):
    from ppo_grounding.config import TrainConfig

    config = TrainConfig()
    config.validate(check_paths=False, check_device=False)
    assert validations == [1]  # at construction; TrainConfig.validate finds it unchanged
    config.policy.seed = 1  # as the CLI and callers change fields after construction
    config.validate(check_paths=False, check_device=False)
    assert validations == [2]
    config.policy.seed = True  # equal to 1, but no int
    with pytest.raises(ValueError, match=r"PolicyConfig\.seed must be an int"):
        config.validate(check_paths=False, check_device=False)


def test_a_policy_validates_its_config_once(validations):
    config = PolicyConfig(model="offline-gpt2", value_head_hidden=8, verify_scoring=False)
    policy = LLMPolicy(config)
    assert validations == [1]
    assert policy.config == config and policy.config is not config  # a private copy
    config.dtype = "float8"  # changed after construction: checked before any model loads
    with pytest.raises(ValueError, match=r"PolicyConfig\.dtype='float8' is not one of"):
        LLMPolicy(config)
    assert validations == [2]
