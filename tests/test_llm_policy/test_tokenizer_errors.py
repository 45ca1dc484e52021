"""A damaged tokenizer file in a model directory: the error names the file and what to do."""

from __future__ import annotations

import shutil

import pytest
from llm_policy.loading import load_model_and_tokenizer


@pytest.mark.parametrize(
    "garbage",
    [b"<html>404: not found</html>", b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary", b""],
    ids=["html", "binary", "empty"],
)
@pytest.mark.parametrize("kind", ["gpt2", "t5"])
def test_a_non_json_tokenizer_json_is_named(tiny_model_dir, tmp_path, kind, garbage):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir(kind), model_dir)  # the shared fixture stays intact
    (model_dir / "tokenizer.json").write_bytes(garbage)
    with pytest.raises(ValueError) as error:
        load_model_and_tokenizer(str(model_dir))
    message = str(error.value)
    assert str(model_dir / "tokenizer.json") in message
    assert "not valid JSON" in message and "replace it with a good copy" in message
    # only the damaged file is named
    assert "tokenizer_config.json" not in message


def test_an_intact_copy_still_loads(tiny_model_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir("gpt2"), model_dir)
    _, tokenizer = load_model_and_tokenizer(str(model_dir))
    assert tokenizer("go forward")["input_ids"]
