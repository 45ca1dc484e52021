"""manifest.py on plain directories: what it writes, and each kind of damage it reports by name."""

import hashlib
import json
import warnings

import pytest
from llm_policy import CheckpointCorruptError, ManifestWarning, verify_manifest, write_manifest
from llm_policy.atomic import atomic_directory
from llm_policy.manifest import read_manifest


def make_tree(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "weights.bin").write_bytes(bytes(range(256)) * 8)
    (root / "config.json").write_text('{"a": 1}\n')
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "sub" / "deeper" / "tokenizer.json").write_text('{"vocab": ["a", "b"]}')
    (root / "sub" / "empty.txt").write_bytes(b"")
    return root


def test_the_manifest_lists_every_file_with_its_size_and_sha256(tmp_path):
    root = make_tree(tmp_path / "d")
    written = write_manifest(root)
    on_disk = json.loads((root / "manifest.json").read_text())
    assert on_disk == written
    assert on_disk["format"] == "llm-policy-manifest" and on_disk["version"] == 1
    assert on_disk["algorithm"] == "sha256"
    files = on_disk["files"]
    assert list(files) == [
        "config.json",
        "sub/deeper/tokenizer.json",
        "sub/empty.txt",
        "weights.bin",
    ]  # relative, "/"-separated, sorted; the manifest does not list itself
    data = (root / "weights.bin").read_bytes()
    assert files["weights.bin"] == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert files["sub/empty.txt"]["size"] == 0
    assert read_manifest(root) == files
    assert verify_manifest(root) is True


def test_written_inside_atomic_directory_it_is_published_with_the_files(tmp_path):
    with atomic_directory(tmp_path / "ckpt") as tmp:
        make_tree(tmp)
        write_manifest(tmp)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert verify_manifest(tmp_path / "ckpt") is True


@pytest.mark.parametrize(
    "damage, name, kind, detail",
    [
        (
            lambda r: (r / "weights.bin").write_bytes(b"\0" * 100),
            "weights.bin",
            "truncated",
            "100 of 2048",
        ),
        (
            lambda r: (r / "config.json").write_text('{"a": 1, "b": 2}\n'),
            "config.json",
            "size changed",
            "size changed",
        ),
        (
            lambda r: (r / "config.json").write_text('{"a": 2}\n'),
            "config.json",
            "modified",
            "sha256 differs",
        ),
        (
            lambda r: (r / "sub" / "deeper" / "tokenizer.json").unlink(),
            "sub/deeper/tokenizer.json",
            "missing",
            "missing",
        ),
    ],
    ids=["truncated", "grown", "edited", "deleted"],
)
def test_each_kind_of_damage_is_named(tmp_path, damage, name, kind, detail):
    root = make_tree(tmp_path / "d")
    write_manifest(root)
    damage(root)
    with pytest.raises(CheckpointCorruptError) as info:
        verify_manifest(root)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.problems == {name: kind}
    assert err.directory == root
    message = str(err)
    assert f"{name}: " in message and detail in message
    assert "backup" in message and "older checkpoint" in message  # what to do about it


def test_a_flipped_bit_is_found_and_every_bad_file_is_listed_at_once(tmp_path):
    root = make_tree(tmp_path / "d")
    write_manifest(root)
    data = bytearray((root / "weights.bin").read_bytes())
    data[1000] ^= 0x01
    (root / "weights.bin").write_bytes(bytes(data))
    (root / "config.json").unlink()
    with pytest.raises(CheckpointCorruptError) as info:
        verify_manifest(root)
    assert info.value.problems == {"config.json": "missing", "weights.bin": "modified"}


def test_files_added_after_saving_warn_raise_or_pass(tmp_path):
    root = make_tree(tmp_path / "d")
    write_manifest(root)
    (root / "sub" / "notes.md").write_text("mine")
    with pytest.warns(ManifestWarning, match=r"does not list.*sub/notes.md"):
        assert verify_manifest(root) is True
    with pytest.raises(CheckpointCorruptError) as info:
        verify_manifest(root, extra="error")
    assert info.value.problems == {"sub/notes.md": "unexpected"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verify_manifest(root, extra="ignore") is True
    with pytest.raises(ValueError, match="extra="):
        verify_manifest(root, extra="strict")


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "manifest.json: unreadable"),
        ('{"format": "other"}', "not an llm-policy-manifest"),
        (
            '{"format": "llm-policy-manifest", "version": 7, "algorithm": "sha256", "files": {}}',
            "version 7",
        ),
        (
            '{"format": "llm-policy-manifest", "version": 1, "algorithm": "sha256", "files": []}',
            "malformed",
        ),
    ],
)
def test_an_unreadable_manifest_is_itself_reported(tmp_path, content, match):
    root = make_tree(tmp_path / "d")
    (root / "manifest.json").write_text(content)
    with pytest.raises(CheckpointCorruptError, match=match):
        verify_manifest(root)


def test_a_directory_without_a_manifest_is_accepted_with_one_warning(tmp_path):
    root = make_tree(tmp_path / "old")
    with pytest.warns(ManifestWarning, match="no manifest.json.*cannot be checked"):
        assert verify_manifest(root) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per directory and process
        assert verify_manifest(root) is False
    other = make_tree(tmp_path / "other")
    with pytest.warns(ManifestWarning):
        verify_manifest(other)
