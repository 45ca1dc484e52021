import errno
import json
import os
import subprocess
import sys
import time

import pytest
import torch
from llm_policy import OFFLINE_MODELS, atomic, offline, offline_model_path
from llm_policy.atomic import atomic_directory
from llm_policy.offline import SPECIAL_TOKENS, build_word_tokenizer, cache_root, vocabulary
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer


def test_vocabulary_covers_babyai_text():
    words = vocabulary()
    assert words[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert len(words) == len(set(words))
    required = (
        "red green blue purple yellow grey key ball box door wall open closed locked "
        "you see a an step steps forward left right and carry "
        "go to pick up put next then after the "
        "possible action of agent goal observation : , "
        "tu vois un une mur à pas devant gauche droite et portes clef balle boîte porte "
        "rouge verte bleue violette jaune grise ouverte fermée "
        "tourner aller tout droit attraper lâcher basculer rotate move ahead take release switch "
        "turn drop toggle 0 1 2 6 7 10 20"
    ).split()
    missing = [w for w in required if w not in words]
    assert not missing


def test_tokenizer_lowercases_splits_punctuation_and_maps_unknown_words():
    tok = build_word_tokenizer()
    ids = tok("You see a RED ball 1 step left, Tu vois une boîte: blorp", add_special_tokens=False)[
        "input_ids"
    ]
    tokens = tok.convert_ids_to_tokens(ids)
    assert tokens == [
        "you", "see", "a", "red", "ball", "1", "step", "left", ",",
        "tu", "vois", "une", "boîte", ":", "[UNK]",
    ]  # fmt: skip
    assert tok.pad_token_id == 0 and tok.unk_token_id == 1


@pytest.mark.parametrize("name", sorted(OFFLINE_MODELS))
def test_offline_models_build_once_deterministically_and_load_like_any_model(
    name, tmp_path, monkeypatch
):
    monkeypatch.setenv("LLM_POLICY_CACHE", str(tmp_path / "a"))
    first = offline_model_path(name)
    assert first == tmp_path / "a" / name and cache_root() == tmp_path / "a"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [name]  # no temporary leftovers
    stamp = os.stat(first / "model.safetensors").st_mtime_ns
    assert (
        offline_model_path(name) == first
        and os.stat(first / "model.safetensors").st_mtime_ns == stamp
    )

    monkeypatch.setenv("LLM_POLICY_CACHE", str(tmp_path / "b"))
    second = offline_model_path(name)
    a, b = load_file(str(first / "model.safetensors")), load_file(str(second / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    auto = (
        AutoModelForSeq2SeqLM if OFFLINE_MODELS[name].architecture == "t5" else AutoModelForCausalLM
    )
    model = auto.from_pretrained(second)
    tok = AutoTokenizer.from_pretrained(second)
    assert len(tok) == model.config.vocab_size == len(vocabulary())
    n = sum(p.numel() for p in model.parameters())
    if name == "offline-t5":  # "a few million parameters", untied output head like Flan-T5
        assert 2e6 < n < 6e6
        assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
        assert model.config.is_encoder_decoder
    else:
        assert 2e5 < n < 1e6


def test_stale_build_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_POLICY_CACHE", str(tmp_path))
    path = offline_model_path("offline-gpt2")
    info = json.loads((path / "llm_policy_offline.json").read_text())
    info["spec_hash"] = "stale"
    (path / "llm_policy_offline.json").write_text(json.dumps(info))
    assert offline_model_path("offline-gpt2") == path
    assert json.loads((path / "llm_policy_offline.json").read_text())["spec_hash"] != "stale"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["offline-gpt2"]


def test_unknown_offline_name():
    with pytest.raises(KeyError, match="available"):
        offline_model_path("offline-bert")


def test_a_build_another_process_published_meanwhile_is_kept(tmp_path, monkeypatch):
    """Two first uses at once: the one that finishes building second keeps the first's model."""
    monkeypatch.setenv("LLM_POLICY_CACHE", str(tmp_path))
    real_build = offline._build

    def build_while_another_process_publishes(spec, out):
        real_build(spec, out)
        with atomic_directory(tmp_path / spec.name) as other:
            real_build(spec, other)
            (other / "built_by").write_text("the other process")

    monkeypatch.setattr(offline, "_build", build_while_another_process_publishes)
    path = offline_model_path("offline-gpt2")
    assert (path / "built_by").read_text() == "the other process"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["offline-gpt2"]  # ours was dropped
    assert AutoModelForCausalLM.from_pretrained(path).config.n_layer == 2


def test_losing_the_first_rename_returns_the_winners_model(tmp_path, monkeypatch):
    """Both saw no model and both rename at once: the loser's rename fails on the winner's
    directory, and the loser returns that (complete) model instead of failing."""
    monkeypatch.setenv("LLM_POLICY_CACHE", str(tmp_path))
    real_build = offline._build

    def rename_after_the_winner(tmp, final):
        winner = tmp_path / ".winner"
        winner.mkdir()
        real_build(OFFLINE_MODELS[final.name], winner)
        os.rename(winner, final)
        raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY), str(final))

    monkeypatch.setattr(atomic, "_publish_directory", rename_after_the_winner)
    path = offline_model_path("offline-gpt2")
    assert json.loads((path / "llm_policy_offline.json").read_text())["name"] == "offline-gpt2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["offline-gpt2"]


@pytest.mark.slow
def test_two_processes_building_at_once_both_get_a_valid_model(tmp_path):
    script = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from llm_policy import offline_model_path\n"
        "from transformers import AutoModelForCausalLM\n"
        "root = Path(sys.argv[1])\n"
        "(root / f'ready-{os.getpid()}').touch()\n"
        "while not (root / 'go').exists():\n"
        "    time.sleep(0.005)\n"
        "path = offline_model_path('offline-gpt2')\n"
        "model = AutoModelForCausalLM.from_pretrained(path)\n"
        "print('OK', sum(p.numel() for p in model.parameters()))\n"
    )
    env = {**os.environ, "LLM_POLICY_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # both have imported torch and transformers: release them together
    (tmp_path / "go").touch()
    results = [w.communicate(timeout=120) for w in workers]
    for worker, (_, stderr) in zip(workers, results, strict=True):
        assert worker.returncode == 0, stderr[-2000:]
    counts = {stdout.split()[-1] for stdout, _ in results}
    assert len(counts) == 1 and int(counts.pop()) > 0
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["offline-gpt2"]


def test_a_damaged_offline_build_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_POLICY_CACHE", str(tmp_path))
    path = offline_model_path("offline-gpt2")
    good = (path / "model.safetensors").read_bytes()
    with open(path / "model.safetensors", "r+b") as f:
        f.truncate(len(good) // 3)  # e.g. a disk that filled up under another tool
    (path / "tokenizer.json").unlink()
    assert offline_model_path("offline-gpt2") == path
    assert (path / "model.safetensors").read_bytes() == good
    assert (path / "tokenizer.json").is_file()
    (path / "manifest.json").unlink()  # a build made before manifests: rebuilt once, with one
    offline_model_path("offline-gpt2")
    assert (path / "manifest.json").is_file()
    assert (path / "model.safetensors").read_bytes() == good
