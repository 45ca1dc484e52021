"""llm_policy.small_files and the manifest: a crafted directory (pipes, devices, links, huge files,
paths leading outside) is refused with a message, never read, followed, hung on or echoed.

Every case that would block if the check regressed runs under `no_hang` (a SIGALRM that raises
inside the blocked open), so a regression fails instead of hanging the suite.
"""

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest
from llm_policy.manifest import CheckpointCorruptError, verify_manifest, write_manifest
from llm_policy.small_files import (
    UnsafeFileError,
    file_kind,
    read_small_file,
    read_small_json,
)


def test_a_regular_file_is_read(tmp_path):
    (tmp_path / "c.json").write_text('{"a": 1}')
    assert read_small_json(tmp_path / "c.json", 100) == {"a": 1}
    assert read_small_file(tmp_path / "c.json", 8) == b'{"a": 1}'  # exactly the bound


def test_a_named_pipe_is_refused_without_blocking(tmp_path, no_hang):
    os.mkfifo(tmp_path / "pipe")
    with no_hang(), pytest.raises(UnsafeFileError, match="pipe is a named pipe, not a regular"):
        read_small_file(tmp_path / "pipe", 100, "config")


def test_a_symlink_is_refused_even_to_a_regular_file(tmp_path):
    (tmp_path / "real").write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafeFileError, match="is a symbolic link"):
        read_small_file(tmp_path / "link", 100)


# Run in a child whose address space is capped: if a check regressed, reading /dev/zero would
# end in its MemoryError instead of taking the machine's memory (and the suite) with it.
LIMITED = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    exec(sys.argv[1])
    """
)


def run_limited(code: str) -> str:
    """stdout of `code` run in a memory-capped child (fails on a hang, a crash or a traceback)."""
    child = subprocess.run(
        [sys.executable, "-c", LIMITED, textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stdout + child.stderr
    return child.stdout


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_or_a_link_to_it_is_refused_without_reading(tmp_path):
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "manifest.json").symlink_to("/dev/zero")
    out = run_limited(
        f"""
        from llm_policy.manifest import CheckpointCorruptError, verify_manifest
        from llm_policy.small_files import UnsafeFileError, read_small_file
        for path in ["{tmp_path / "zero"}", "/dev/zero"]:
            try:
                read_small_file(path, 100)
            except UnsafeFileError as error:
                print(error.problem)
        try:
            verify_manifest("{tmp_path / "saved"}")
        except CheckpointCorruptError as error:
            print(error.problems)
        """
    )
    assert out.splitlines() == [
        "is a symbolic link, not a regular file",
        "is a character device, not a regular file",
        "{'manifest.json': 'unreadable'}",
    ]


def test_a_file_over_the_bound_is_refused_before_it_is_read(tmp_path, monkeypatch):
    with open(tmp_path / "big", "wb") as f:
        f.truncate(10 << 20)  # sparse: no disk used
    reads = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    with pytest.raises(UnsafeFileError, match=r"is 10485760 bytes, more than the 1000"):
        read_small_file(tmp_path / "big", 1000, "config")
    assert reads == []


def test_deeply_nested_json_is_a_value_error(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 200_000)
    with pytest.raises(ValueError):
        read_small_json(tmp_path / "deep.json", 1 << 20)


def test_file_kinds_are_named():
    assert file_kind(stat.S_IFIFO) == "a named pipe"
    assert file_kind(stat.S_IFLNK) == "a symbolic link"
    assert file_kind(stat.S_IFREG) == "a regular file"


# ---------------------------------------------------------------------------------- manifests
@pytest.fixture
def saved(tmp_path):
    directory = tmp_path / "saved"
    (directory / "sub").mkdir(parents=True)
    (directory / "a.bin").write_bytes(b"abc")
    (directory / "sub" / "b.bin").write_bytes(b"defg")
    write_manifest(directory)
    return directory


def _rewrite_manifest(directory, edit):
    manifest = json.loads((directory / "manifest.json").read_text())
    edit(manifest["files"])
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_a_manifest_that_is_a_named_pipe_is_unreadable_not_a_hang(saved, no_hang):
    (saved / "manifest.json").unlink()
    os.mkfifo(saved / "manifest.json")
    with no_hang(), pytest.raises(CheckpointCorruptError, match="manifest.json: unreadable.*pipe"):
        verify_manifest(saved)


def test_a_manifest_linked_elsewhere_or_dangling_is_unreadable(saved, tmp_path):
    (tmp_path / "other.json").write_text("{}")
    (saved / "manifest.json").unlink()
    (saved / "manifest.json").symlink_to(tmp_path / "other.json")
    with pytest.raises(CheckpointCorruptError, match="unreadable.*symbolic link"):
        verify_manifest(saved)
    (saved / "manifest.json").unlink()
    (saved / "manifest.json").symlink_to(tmp_path / "nowhere")
    with pytest.raises(CheckpointCorruptError, match="unreadable.*symbolic link"):
        verify_manifest(saved)  # not "no manifest, loaded unchecked"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("/etc/passwd", "an absolute path"),
        ("../outside.bin", "not a plain relative one"),
        ("sub/../../outside.bin", "not a plain relative one"),
        ("./a.bin", "not a plain relative one"),
    ],
)
def test_manifest_entries_outside_the_directory_are_never_checked(
    saved, tmp_path, monkeypatch, entry, problem
):
    (tmp_path / "outside.bin").write_bytes(b"secret")
    _rewrite_manifest(saved, lambda files: files.update({entry: {"size": 6, "sha256": "0" * 64}}))
    touched = []
    real_lstat, real_stat = os.lstat, os.stat
    monkeypatch.setattr(os, "lstat", lambda p, *a, **k: touched.append(p) or real_lstat(p, *a, **k))
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: touched.append(p) or real_stat(p, *a, **k))
    with pytest.raises(CheckpointCorruptError, match=f"unreadable.*{problem}"):
        verify_manifest(saved)
    monkeypatch.undo()
    assert all(os.fspath(p).startswith(os.fspath(saved)) for p in touched), touched


def test_a_listed_file_replaced_by_a_pipe_a_link_or_through_a_linked_directory(
    saved, tmp_path, no_hang
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.bin").write_bytes(b"defg")  # same bytes: following the link would pass
    (saved / "a.bin").unlink()
    os.mkfifo(saved / "a.bin")
    (saved / "sub" / "b.bin").unlink()
    (saved / "sub").rmdir()
    (saved / "sub").symlink_to(outside)
    with no_hang(), pytest.raises(CheckpointCorruptError) as error:
        verify_manifest(saved)
    assert error.value.problems == {
        "a.bin": "not a regular file",
        "sub/b.bin": "not a regular file",
    }
    assert "a.bin: not a regular file (a named pipe)" in str(error.value)
    assert "its directory sub is a symbolic link" in str(error.value)
