"""One build of an image at a time on an engine, whoever asks for it.

Two runs that need the same new image at once would both build it: the same work
twice, on a machine that has little to spare.  So "is the image there? else build
it" is done under a lock per (engine, image tag): an ``flock`` on a file in one
folder that every user of the machine shares (``/tmp/runner-builds``, sticky and
world-writable like ``/tmp`` itself), not one under RUNNER_HOME: two users with
their own homes still build on the same engine.  The second run waits, then looks
for the image again and finds it built.

The engine is named by its own ID, so two clients that reach the same engine by
different addresses share the lock.  A lock file holds nothing and is never
removed (removing a lock file races with the next one who opens it).  Where the
folder cannot be used (another user made it private, a read-only /tmp), runs
build without the lock, as before, and the build log says so.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat
from pathlib import Path

#: shared by every user of the machine (not TMPDIR, which may be per user)
LOCK_DIR = Path("/tmp/runner-builds")


def lock_path(engine_id: str, image: str, folder: Path = LOCK_DIR) -> Path:
    """The lock file of one image tag on one engine."""
    key = hashlib.sha256(f"{engine_id}\0{image}".encode()).hexdigest()[:32]
    return folder / f"{key}.lock"


class BuildLock:
    """An exclusive ``flock`` on a shared lock file: :meth:`try_acquire`, else :meth:`acquire` (waits), then :meth:`release`.

    Each instance opens its own file description, so it also excludes other threads of this process.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def open(self) -> None:
        """Open (or make) the lock file; OSError where the shared folder cannot be used."""
        folder = self.path.parent
        try:
            folder.mkdir(mode=0o1777)
            os.chmod(folder, 0o1777)  # mkdir's mode passes through the umask
        except FileExistsError:
            pass
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, "not a folder", str(folder))
        # read-only is enough for flock, and another user's file (0444) can always be opened so;
        # O_CREAT on a file someone else owns in a sticky folder is refused (fs.protected_regular)
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        while self._fd is None:
            try:
                self._fd = os.open(self.path, flags)
            except FileNotFoundError:
                try:
                    self._fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o444)
                except FileExistsError:
                    continue  # made by another run meanwhile: open that one

    def try_acquire(self) -> bool:
        """Take the lock if it is free; whether it was."""
        if self._fd is None:
            self.open()
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def acquire(self) -> None:
        """Wait for the lock (Ctrl-C interrupts the wait)."""
        if self._fd is None:
            self.open()
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only description drops the lock
            self._fd = None
