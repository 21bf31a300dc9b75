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
