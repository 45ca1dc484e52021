"""`--out` of evaluate --suite, replay and plot (and quickstart's run directory) is checked
before any model loads or episode plays: a file where a directory is needed, a directory where
a file is needed, a read-only directory are one-line errors naming the path and the fix."""

import os
import shutil
import subprocess
import sys

import pytest
from ppo_grounding import cli
from ppo_grounding.cli import check_out_dir, check_out_file, main


@pytest.fixture
def never_loads(monkeypatch):
    """Fail the test if a command gets as far as loading its model."""

    def load(source):
        raise AssertionError(f"loaded {source} before checking --out")

    monkeypatch.setattr(cli, "_load", load)


def test_a_file_where_the_suite_or_replay_needs_a_directory_fails_before_loading(
    tmp_path, never_loads
):
    taken = tmp_path / "results"
    taken.write_text("notes")
    commands = [
        ["evaluate", "--checkpoint", "offline-gpt2", "--suite", "generalisation"],
        ["replay", "--checkpoint", "offline-gpt2"],
    ]
    for command in commands:
        for out, culprit in ((taken, f"{taken} is a file"), (taken / "sub", f"inside {taken}")):
            with pytest.raises(SystemExit) as stopped:
                main([*command, "--out", str(out)])
            message = str(stopped.value)
            assert message.startswith(f"ppo-grounding {command[0]}: --out {out} ")
            assert culprit in message and "pass another --out" in message
            assert "\n" not in message
    assert taken.read_text() == "notes"


def test_plot_checks_its_file_before_reading_the_runs(tmp_path):
    missing_run = str(tmp_path / "no-such-run")
    with pytest.raises(SystemExit, match=r"is a directory, not a file: name the file to write"):
        main(["plot", missing_run, "--out", str(tmp_path)])
    (tmp_path / "taken").write_text("x")
    with pytest.raises(SystemExit, match=r"taken, is a file, not a directory"):
        main(["plot", missing_run, "--out", str(tmp_path / "taken" / "curve.png")])


def test_the_directory_is_created_and_probed(tmp_path):
    out = tmp_path / "a" / "b"
    assert check_out_dir(out) == out and out.is_dir()
    assert list(out.iterdir()) == []  # the probe file is gone
    assert check_out_file(tmp_path / "c" / "curve.png").parent.is_dir()


READ_ONLY_CHECK = """
import sys
from ppo_grounding.cli import check_out_dir, check_out_file
for check, path in ((check_out_dir, sys.argv[1]), (check_out_dir, sys.argv[1] + "/new"),
                    (check_out_file, sys.argv[1] + "/curve.png")):
    try:
        check(path)
        print("no error")
    except ValueError as error:
        print(error)
"""


def as_unprivileged() -> list[str]:
    """A command prefix under which a read-only directory is read-only: root writes anywhere
    (CAP_DAC_OVERRIDE), so as root the child runs without that capability."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only directory is writable")
    return ["setpriv", "--bounding-set", "-dac_override", "--inh-caps", "-dac_override", "--"]


def test_a_read_only_directory_is_refused_with_the_fix(tmp_path):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    os.chmod(read_only, 0o555)
    try:
        child = subprocess.run(
            [*as_unprivileged(), sys.executable, "-c", READ_ONLY_CHECK, str(read_only)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.chmod(read_only, 0o755)
    assert child.returncode == 0, child.stderr
    lines = child.stdout.splitlines()
    assert lines[0] == (
        f"--out {read_only} cannot be written (Permission denied): make it writable "
        f"(chmod u+w {read_only}) or pass another --out"
    )
    assert lines[1].startswith(f"--out {read_only}/new cannot be written (Permission denied)")
    assert lines[2].startswith(f"the directory of --out {read_only}/curve.png, {read_only}, cannot")
