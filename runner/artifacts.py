"""Artifacts: the files an experiment created or changed under its working directory."""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

from runner.errors import UsageError, clip


def copy_from_layer(upper: Path, dest: Path) -> list[str]:
    """Copy the regular files of a container's writable layer folder (its ``/project`` part) to ``dest``.

    Overlay whiteouts (character devices marking deletions) are not files and are skipped.
    """
    saved: list[str] = []
    if not upper.is_dir():
        return saved
    for path in sorted(upper.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        rel = path.relative_to(upper).as_posix()
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        os.chmod(target, 0o755 if path.stat().st_mode & 0o111 else 0o644)
        saved.append(rel)
    return saved


def extract_files(tar: tarfile.TarFile, dest: Path, *, name_of: Callable[[tarfile.TarInfo], str | None]) -> list[str]:
    """Write the regular files of ``tar`` below ``dest``, each at ``name_of(member)`` (None: skip it).

    Names are normalised, and any that would leave ``dest`` are refused, so a hostile
    archive cannot write elsewhere.  Returns the written names, in archive order.
    """
    saved = []
    for member in tar:
        if not member.isfile():
            continue
        name = name_of(member)
        if not name:
            continue
        name = posixpath.normpath(name)
        if name == ".." or name.startswith("../") or posixpath.isabs(name):
            continue
        src = tar.extractfile(member)
        if src is None:
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            shutil.copyfileobj(src, out)
        os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
        saved.append(name)
    return saved


def extract_changed(tar: tarfile.TarFile, *, dest: Path) -> list[str]:
    """From an export of the working folder, write the files the experiment created or changed.

    The build context gives every file of the image mtime 0 (see :mod:`runner.image`), so a
    regular file with any other mtime was written by the experiment.  The archive's top
    folder (the working folder's own name) is dropped.
    """

    def changed(member: tarfile.TarInfo) -> str | None:
        if member.mtime == 0 or posixpath.isabs(member.name):
            return None
        return "/".join(posixpath.normpath(member.name).split("/")[1:]) or None

    return extract_files(tar, dest, name_of=changed)


def list_artifacts(folder: Path) -> list[str]:
    """The regular files under ``folder``; symbolic links are not artifacts (one could point anywhere)."""
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def copy_artifacts(src: Path, dest: Path) -> list[str]:
    files = list_artifacts(src)
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dest / rel)
    return files


def writable_folder(folder: Path, option: str) -> None:
    """Make ``folder`` (and its parents) or say in one line why it cannot be written."""
    shown = clip(str(folder))
    existing = next((p for p in (folder, *folder.absolute().parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"{option} {shown}: {clip(str(existing))} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{option} {shown}: cannot make the folder ({e.strerror or e})") from e
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {shown}: the folder is not writable", hint="choose another --download-dir")
