"""llm_policy.atomic: the one way every published file and directory is written."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from llm_policy import atomic
from llm_policy.atomic import (
    atomic_directory,
    atomic_write_bytes,
    atomic_write_text,
    clean_leftovers,
)
from safetensors.torch import save_file


def _names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_write_text_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "latest"
    atomic_write_text(target, "update_000001")
    atomic_write_text(target, "update_000002")
    assert target.read_text() == "update_000002"
    assert _names(target.parent) == {"latest"}


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics.jsonl"
    atomic_write_text(target, "old\n")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(target, b"new\n")
    assert target.read_text() == "old\n"
    assert _names(tmp_path) == {"metrics.jsonl"}


@pytest.mark.parametrize(
    ("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)]
)
def test_permissions_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "file.json", "{}")
        with atomic_directory(tmp_path / "ckpt") as tmp:
            (tmp / "weights").write_bytes(b"x")
            # writers that make private files (safetensors does) or copy another file's mode
            save_file({"w": torch.zeros(2)}, str(tmp / "private.safetensors"))
            (tmp / "sub").mkdir(mode=0o700)
            (tmp / "sub" / "copied").write_bytes(b"y")
            os.chmod(tmp / "sub" / "copied", 0o604)
            (tmp / "run.sh").write_text("#!/bin/sh\n")
            os.chmod(tmp / "run.sh", 0o700)
    finally:
        os.umask(old)
    assert (tmp_path / "file.json").stat().st_mode & 0o777 == file_mode
    ckpt = tmp_path / "ckpt"
    assert ckpt.stat().st_mode & 0o777 == dir_mode
    for name in ("weights", "private.safetensors", "sub/copied"):
        assert (ckpt / name).stat().st_mode & 0o777 == file_mode, name
    assert (ckpt / "sub").stat().st_mode & 0o777 == dir_mode
    assert (ckpt / "run.sh").stat().st_mode & 0o777 == dir_mode  # executable stays executable


def test_directory_appears_only_when_complete(tmp_path):
    final = tmp_path / "policy"
    with atomic_directory(final) as tmp:
        (tmp / "a.json").write_text("1")
        assert not final.exists()
        assert tmp.parent == tmp_path and tmp.name.startswith(".policy.tmp-")
    assert (final / "a.json").read_text() == "1"
    assert _names(tmp_path) == {"policy"}


def test_exception_keeps_the_old_directory(tmp_path):
    final = tmp_path / "policy"
    with atomic_directory(final) as tmp:
        (tmp / "a.json").write_text("old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_directory(final) as tmp:
            (tmp / "a.json").write_text("new")
            raise RuntimeError("killed mid-save")
    assert (final / "a.json").read_text() == "old"
    assert _names(tmp_path) == {"policy"}


def test_replacing_never_leaves_the_name_missing(tmp_path, monkeypatch):
    """At every rename and removal during a re-save, `final` holds a complete version."""
    final = tmp_path / "update_000010"
    with atomic_directory(final) as tmp:
        (tmp / "weights").write_text("old")
    seen = []

    def check(label):
        seen.append((label, (final / "weights").read_text()))

    real_rename, real_rmtree = atomic.os.rename, atomic.shutil.rmtree
    monkeypatch.setattr(atomic.os, "rename", lambda a, b: (check("rename"), real_rename(a, b))[1])
    monkeypatch.setattr(
        atomic.shutil, "rmtree", lambda p, **kw: (check("rmtree"), real_rmtree(p, **kw))[1]
    )
    with atomic_directory(final) as tmp:
        (tmp / "weights").write_text("new")
    assert (final / "weights").read_text() == "new"
    assert seen and all(content in ("old", "new") for _, content in seen)
    assert _names(tmp_path) == {"update_000010"}


@pytest.mark.skipif(sys.platform != "linux", reason="renameat2 is Linux's")
def test_linux_swaps_directories_in_one_step(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    assert atomic._exchange(a, b)
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


def test_marker_protects_unrelated_directories(tmp_path):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("...")
    with pytest.raises(FileExistsError, match="refusing to overwrite .*policy_config.json"):
        with atomic_directory(precious, marker="policy_config.json"):
            pass
    assert _names(precious) == {"chapter1.tex"}
    with pytest.raises(FileExistsError, match="not a directory"):
        with atomic_directory(precious / "chapter1.tex"):
            pass


def test_clean_leftovers_removes_only_temporaries(tmp_path):
    (tmp_path / ".update_000003.tmp-abc").mkdir()
    (tmp_path / ".latest.tmp-xyz").write_text("partial")
    (tmp_path / ".update_000002.old-1234").mkdir()
    (tmp_path / "update_000002").mkdir()
    (tmp_path / ".hidden-but-ours").write_text("keep")
    removed = clean_leftovers(tmp_path)
    assert len(removed) == 3
    assert _names(tmp_path) == {"update_000002", ".hidden-but-ours"}
    assert clean_leftovers(tmp_path / "missing") == []
