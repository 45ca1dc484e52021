"""One training job per run directory: `<output_dir>/run.lock`.

The lock is an advisory `fcntl.flock` on that file, held for the life of the trainer. The file
also records who holds it (pid, host, start time) so that a refused job can say which one is in
the way.

Why flock and not a file created with O_EXCL: the kernel drops a flock when its process dies,
however it dies (SIGKILL, out of memory, a power cut's reboot), so a lock can never outlive its
holder and no one has to guess whether a recorded pid is still the same process (pids are
reused). An O_EXCL file stays behind after a crash and every later start has to decide whether it
is stale. Here the file's content is only information: a job that gets the flock while the file
still names another process knows that process was killed without releasing it, says so in a
`StaleLockWarning`, and takes over. The flock is taken on the open file, which is never deleted
(it is emptied on release), so two processes can never lock two different files under the same
name.

Limits: flock is per machine on most network filesystems (and a no-op on some); two jobs on two
hosts sharing an NFS directory may not see each other's lock. Within one process, a second
`RunLock` on the same directory takes over from the first (a notebook that rebuilds a trainer
after an error must not lock itself out); the first must not train any more.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import time
import warnings
import weakref
from pathlib import Path

from llm_policy.small_files import UnsafeFileError, file_kind

__all__ = ["LOCK_FILE", "RunLock", "RunLockedError", "StaleLockWarning"]

LOCK_FILE = "run.lock"

_held: dict[str, RunLock] = {}
"""This process's locks, by resolved directory."""


class RunLockedError(RuntimeError):
    """Another live process trains in this run directory."""


class StaleLockWarning(UserWarning):
    """The lock file names a process that died without releasing it; the lock was taken over."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(holder: dict) -> str:
    started = holder.get("started")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
        if isinstance(started, (int, float))
        else "an unknown time"
    )
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {when}"


def _open_lock_file(path: Path) -> int:
    """Open (creating it) the regular file `path` for the lock.

    Never through a symbolic link and never a pipe or a device: the holder's record is written
    into it and it is emptied on release, so a link planted as run.lock would have us truncate
    whatever file it points to, and a pipe or /dev/zero would block or fill the record.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fix = "remove it (run.lock only records which job trains here) and start again"
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as error:
        if os.path.islink(path):  # ELOOP: O_NOFOLLOW met a link
            raise UnsafeFileError(path, "run lock", "is a symbolic link", fix) from error
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnsafeFileError(path, "run lock", f"is {file_kind(mode)}, not a regular file", fix)
    os.set_blocking(fd, True)
    return fd


def _release(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)
    except OSError:
        pass
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class RunLock:
    """Hold `<directory>/run.lock` (created with the directory if needed) until `release()`.

    Raises RunLockedError, naming the holder, if another live process holds it. The lock is also
    released when this object is garbage collected or the interpreter exits, and by the kernel
    when the process dies.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OSError(
                f"cannot create the run directory {self.directory}: {error.strerror}"
            ) from error
        self.path = self.directory / LOCK_FILE
        key = str(self.directory.resolve())
        previous = _held.pop(key, None)
        if previous is not None:
            previous.release()  # the same process, a new trainer: take over
        fd = _open_lock_file(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read(fd)
            os.close(fd)
            raise RunLockedError(
                f"{self.directory} is in use by another training job ({_describe(holder)}): "
                "two jobs in one run directory would overwrite each other's checkpoints. Wait "
                "for it to finish (or stop it), or choose another --run.output-dir."
            ) from None
        except BaseException:
            os.close(fd)
            raise
        holder = self._read(fd)
        if holder:
            same_host = holder.get("host") == socket.gethostname()
            pid = holder.get("pid")
            state = (
                "is no longer running"
                if same_host and isinstance(pid, int) and not _pid_alive(pid)
                else "no longer holds it"
            )
            warnings.warn(
                f"{self.path}: took over the lock of a job that ended without releasing it "
                f"({_describe(holder)}, which {state}; killed?). Its last complete checkpoint "
                "is kept.",
                StaleLockWarning,
                stacklevel=2,
            )
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        os.fsync(fd)
        self.holder = record
        self._finalizer = weakref.finalize(self, _release, fd)
        _held[key] = self
        self._key = key

    @staticmethod
    def _read(fd: int) -> dict:
        try:
            data = os.pread(fd, 4096, 0)
        except OSError:
            return {}
        if not data.strip():
            return {}
        try:
            holder = json.loads(data.decode())
        except ValueError:  # written by a process killed mid-write
            holder = None
        return holder if isinstance(holder, dict) else {"pid": "?", "host": "?"}

    @property
    def held(self) -> bool:
        return self._finalizer.alive

    def release(self) -> None:
        """Empty the lock file and unlock it (idempotent)."""
        if self._finalizer.alive:
            self._finalizer()
        if _held.get(self._key) is self:
            del _held[self._key]

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
