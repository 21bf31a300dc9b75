"""The build lock (runner.buildlock): one build of an image per engine at a time, across threads and processes."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
import time
from pathlib import Path

from runner.buildlock import BuildLock, lock_path


def build_once(folder: Path, image: Path, log: Path) -> None:
    """What App.build does around a build: lock, look for the image, build it if it is not there."""
    lock = BuildLock(lock_path("engine-1", "runner/proj:abc", folder))
    waited = not lock.try_acquire()
    if waited:
        lock.acquire()
    try:
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()} {threading.get_ident()} {'waited' if waited else 'first'}\n")
        if not image.exists():
            time.sleep(0.2)  # a build takes a while: the others pile up behind the lock
            with open(log, "a") as fh:
                fh.write("built\n")
            image.write_text("built")
    finally:
        lock.release()


def test_threads_build_once(tmp_path: Path) -> None:
    folder, image, log = tmp_path / "locks", tmp_path / "image", tmp_path / "log"
    threads = [threading.Thread(target=build_once, args=(folder, image, log)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = log.read_text().splitlines()
    assert lines.count("built") == 1
    assert sum(1 for ln in lines if ln.endswith("waited")) >= 1


def test_processes_build_once(tmp_path: Path) -> None:
    folder, image, log = tmp_path / "locks", tmp_path / "image", tmp_path / "log"
    ctx = multiprocessing.get_context("spawn")  # separate processes, as two `runner run`s are
    procs = [ctx.Process(target=build_once, args=(folder, image, log)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = log.read_text().splitlines()
    assert lines.count("built") == 1 and len(lines) == 5


def test_the_shared_folder_is_sticky_and_open_to_everyone(tmp_path: Path) -> None:
    folder = tmp_path / "locks"
    lock = BuildLock(lock_path("engine-1", "runner/proj:abc", folder))
    assert lock.try_acquire()
    mode = os.stat(folder).st_mode
    assert stat.S_IMODE(mode) == 0o1777
    assert stat.S_IMODE(os.stat(lock.path).st_mode) == 0o444  # read-only is enough for flock, for any user
    other = BuildLock(lock.path)
    assert not other.try_acquire()
    lock.release()
    assert other.try_acquire()
    other.release()


def test_one_lock_per_engine_and_tag(tmp_path: Path) -> None:
    a = lock_path("engine-1", "runner/proj:abc", tmp_path)
    assert a == lock_path("engine-1", "runner/proj:abc", tmp_path)
    assert a != lock_path("engine-2", "runner/proj:abc", tmp_path)
    assert a != lock_path("engine-1", "runner/proj:abd", tmp_path)


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "locks"
    folder.mkdir()
    path = lock_path("engine-1", "runner/proj:abc", folder)
    target = tmp_path / "victim"
    target.write_text("keep")
    path.symlink_to(target)
    lock = BuildLock(path)
    try:
        lock.try_acquire()
        raise AssertionError("a planted symlink was followed")
    except OSError:
        pass
    assert target.read_text() == "keep"


def test_an_unusable_folder_is_an_os_error(tmp_path: Path) -> None:
    """App.build then builds without the lock and says so in the build log."""
    (tmp_path / "locks").write_text("a file where the folder should be")
    lock = BuildLock(lock_path("engine-1", "runner/proj:abc", tmp_path / "locks"))
    try:
        lock.try_acquire()
        raise AssertionError("no error")
    except OSError:
        pass
    lock.release()
