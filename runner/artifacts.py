"""Artifacts: the files an experiment created or changed under its working directory."""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path


def export_roots(changed: Iterable[str], under: str) -> tuple[list[str], set[str]]:
    """From changed container paths, the relative paths under ``under`` and the fewest folders to export.

    ``changed`` lists every changed path, folders included; a path whose parent also
    changed is inside an exported folder already.
    """
    prefix = under.rstrip("/") + "/"
    rel = {p[len(prefix):] for p in changed if p.startswith(prefix)}
    roots = sorted(p for p in rel if posixpath.dirname(p) not in rel)
    return roots, rel


def extract_selected(tar: tarfile.TarFile, *, root: str, wanted: set[str], dest: Path) -> list[str]:
    """Write the regular files of ``tar`` (the export of folder ``root``) whose path is in ``wanted``, below ``dest``.

    Names are checked so a hostile archive cannot write outside ``dest``.
    """
    saved = []
    for member in tar:
        if not member.isfile():
            continue
        name = posixpath.normpath(member.name)
        # the archive of container path X/Y holds Y/...: put the folder X back in front
        parent = posixpath.dirname(root)
        if parent:
            name = posixpath.join(parent, name)
        if name not in wanted or name.startswith("../") or posixpath.isabs(name):
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        src = tar.extractfile(member)
        if src is None:
            continue
        with open(target, "wb") as out:
            shutil.copyfileobj(src, out)
        os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
        saved.append(name)
    return saved


def list_artifacts(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def copy_artifacts(src: Path, dest: Path) -> list[str]:
    files = list_artifacts(src)
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dest / rel)
    return files
