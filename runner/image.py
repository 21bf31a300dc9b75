"""Image identity and build context: content hashing and a deterministic tar.

The tag is a hash of everything that decides the image: the base image's id,
the Dockerfile text, the lock, and every file of the build context (path, mode,
bytes).  Machine-specific build settings (the CA bundle, index URLs, proxies)
are not part of it: they change how the image is fetched, not what it is.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from runner.jsonfile import read_json, write_json

#: bump when the hashed layout changes, so old tags are not mistaken for new ones
TAG_SCHEME = "runner-image-v1"


@dataclass(frozen=True)
class ContextEntry:
    """One file of the build context: where it goes, its mode, and where its bytes come from."""

    arcname: str
    mode: int  # normalised: 0o755 or 0o644
    source: Path | None = None
    data: bytes | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read_bytes()


@dataclass(frozen=True)
class FileDigest:
    arcname: str
    mode: int
    sha256: str


@dataclass(frozen=True)
class TagInputs:
    base_image_id: str
    dockerfile: str
    lock: str
    files: tuple[FileDigest, ...]


def normal_mode(st_mode: int) -> int:
    """Only the executable bit survives: owners, groups and umasks differ between machines."""
    return 0o755 if st_mode & 0o111 else 0o644


def image_tag(inputs: TagInputs) -> str:
    """A 32-hex-digit content hash of the image inputs (sorted, canonical JSON)."""
    doc = {
        "scheme": TAG_SCHEME,
        "base": inputs.base_image_id,
        "dockerfile": inputs.dockerfile,
        "lock": inputs.lock,
        "files": [[f.arcname, f.mode, f.sha256] for f in sorted(inputs.files, key=lambda f: f.arcname)],
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


class DigestCache:
    """sha256 of files, remembered by (size, mtime_ns, inode) so unchanged files are not re-read.

    Stored as one small JSON file, written atomically; a missing or corrupt file
    only costs re-reading.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._entries: dict[str, list[object]] = {}
        self._dirty = False
        loaded = read_json(path) if path is not None else None
        if isinstance(loaded, dict):
            self._entries = loaded

    def digest(self, path: Path) -> str:
        st = path.stat()
        key = str(path)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        hit = self._entries.get(key)
        if isinstance(hit, list) and hit[:3] == stamp and isinstance(hit[3], str):
            return hit[3]
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        self._entries[key] = [*stamp, sha]
        self._dirty = True
        return sha

    def save(self) -> None:
        if self._path is None or not self._dirty:
            return
        write_json(self._path, self._entries)
        self._dirty = False


def digest_entries(entries: Sequence[ContextEntry], cache: DigestCache) -> tuple[FileDigest, ...]:
    out = []
    for e in entries:
        sha = cache.digest(e.source) if e.source is not None else hashlib.sha256(e.read()).hexdigest()
        out.append(FileDigest(e.arcname, e.mode, sha))
    return tuple(sorted(out, key=lambda d: d.arcname))


def write_context(out: BinaryIO, entries: Iterable[ContextEntry]) -> None:
    """Write a build-context tar with normalised metadata: sorted names, mtime 0, root owner.

    Directories are implied by file paths; the engine creates them.
    """
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in sorted(entries, key=lambda e: e.arcname):
            data = e.read()
            info = tarfile.TarInfo(e.arcname)
            info.size = len(data)
            info.mode = e.mode
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))


def context_mtime_ns(sha256: str) -> int:
    """A context file's mtime: under one second, so the image still reads it as 0, but tied to the content.

    BuildKit sends a folder context incrementally and tells changed files by size and
    mtime; with every mtime 0 a same-size edit would go unseen.  Artifacts are told by
    whole seconds (an mtime whose seconds are not 0), so these nanoseconds change nothing there.
    """
    return int(sha256[:8], 16) % 1_000_000_000


def sync_context_dir(
    root: Path, entries: Sequence[ContextEntry], digests: Sequence[FileDigest], *, blobs: Path
) -> bool:
    """Make ``root`` hold exactly ``entries``, as :func:`write_context` would, rewriting only what changed.

    Returns False, touching nothing, when a changed file would keep its size and mtime
    (two contents whose mtimes collide): the caller then starts a new folder, which
    BuildKit reads in full.  Files of 1 MiB or more are hard links to ``blobs`` (one
    copy however many projects ship them: uv's binary).  A manifest beside ``root``
    (``root`` + ``.json``) records what is there.
    """
    manifest_path = root.with_name(root.name + ".json")
    loaded = read_json(manifest_path)
    old: dict[str, list[object]] = loaded if isinstance(loaded, dict) else {}
    by_name = {e.arcname: e for e in entries}
    want: dict[str, tuple[str, int, int, int]] = {}
    for d in digests:
        entry = by_name[d.arcname]
        size = entry.source.stat().st_size if entry.source is not None else len(entry.read())
        want[d.arcname] = (d.sha256, d.mode, size, context_mtime_ns(d.sha256))
    for name, (sha, mode, size, ns) in want.items():
        before = old.get(name)
        if before and before[0] != sha and before[1:] == [mode, size, ns]:
            return False
    root.mkdir(parents=True, exist_ok=True)
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            if path.relative_to(root).as_posix() not in want:
                path.unlink()
    write_json(manifest_path, {})  # an interrupted update leaves no manifest to trust
    for d in digests:
        _, _, size, ns = want[d.arcname]
        path = root / d.arcname
        try:
            st = path.stat()
            if old.get(d.arcname) == list(want[d.arcname]) and (st.st_size, st.st_mtime_ns) == (size, ns):
                continue
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".runner-tmp")
        entry = by_name[d.arcname]
        if entry.source is not None and size >= 1 << 20:
            blob = blobs / f"{d.sha256}-{d.mode:o}"
            if not blob.exists():
                blobs.mkdir(parents=True, exist_ok=True)
                _write_file(
                    blob.with_name(blob.name + f".{os.getpid()}.tmp"),
                    entry,
                    d.mode,
                    context_mtime_ns(d.sha256),
                    final=blob,
                )
            tmp.unlink(missing_ok=True)
            os.link(blob, tmp)
            os.replace(tmp, path)
        else:
            _write_file(tmp, entry, d.mode, context_mtime_ns(d.sha256), final=path)
    for dirpath, dirnames, _ in os.walk(root, topdown=False):
        for name in dirnames:
            sub = Path(dirpath, name)
            if not any(sub.iterdir()):
                sub.rmdir()
            else:
                os.utime(sub, ns=(0, 0))
    os.utime(root, ns=(0, 0))
    write_json(manifest_path, {name: list(v) for name, v in want.items()})
    return True


def _write_file(tmp: Path, entry: ContextEntry, mode: int, mtime_ns: int, *, final: Path) -> None:
    if entry.source is not None:
        shutil.copyfile(entry.source, tmp)
    else:
        tmp.write_bytes(entry.read())
    os.chmod(tmp, mode)
    os.utime(tmp, ns=(mtime_ns, mtime_ns))
    os.replace(tmp, final)
