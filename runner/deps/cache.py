"""The dependency stage's file cache: small JSON files, written atomically.

Everything here is best effort: a missing, unreadable or corrupt cache file is a
miss, a failed write is ignored.  Writes go to a temporary file in the same folder
and are renamed over the target (``os.replace`` is atomic on POSIX), so parallel
runners never see half a file; the worst case of a race is one lost update.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR
from typing import Any

from runner.deps.model import (
    Dropped,
    ImportInfo,
    ImportKind,
    ImportSite,
    Lock,
    Origin,
    PinSource,
    Requirement,
    ShipFile,
)
from runner.jsonfile import read_json, write_json

__all__ = [
    "CacheDir",
    "read_json",
    "write_json",
    "digest",
    "file_stamp",
    "dir_stamp",
    "stamps_ok",
    "lock_to_json",
    "lock_from_json",
]


@dataclass(frozen=True)
class CacheDir:
    """The cache files under ``folder/deps/`` (``folder`` None: no cache, every read a miss)."""

    folder: Path | None

    def path(self, name: str) -> Path | None:
        return None if self.folder is None else self.folder / "deps" / name

    def read(self, name: str) -> Any | None:
        p = self.path(name)
        return None if p is None else read_json(p)

    def write(self, name: str, data: Any) -> None:
        p = self.path(name)
        if p is not None:
            write_json(p, data)


def file_stamp(path: str) -> list[int] | None:
    """[size, mtime_ns] of ``path`` (None: missing): what a cache entry is valid for."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def dir_stamp(path: str) -> int | None:
    """The mtime of folder ``path`` (None: missing or not a folder): changes when an entry is added or removed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns if S_ISDIR(st.st_mode) else None


def stamps_ok(stamps: Iterable[Sequence[Any]]) -> bool:
    """Every ``[path, file_stamp]`` pair still holds."""
    return all(file_stamp(str(p)) == s for p, s in stamps)


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def _site_to_json(s: ImportSite) -> list[Any]:
    return [s.module, s.file, s.line, s.guarded, s.lazy, list(s.names), s.cell]


def _site_from_json(v: list[Any]) -> ImportSite:
    return ImportSite(
        module=str(v[0]),
        file=str(v[1]),
        line=int(v[2]),
        guarded=bool(v[3]),
        lazy=bool(v[4]),
        names=tuple(str(n) for n in v[5]),
        cell=int(v[6]),
    )


def lock_to_json(lock: Lock) -> dict[str, Any]:
    return {
        "requirements": [
            [
                r.name,
                r.version,
                r.line,
                r.source.value,
                list(r.imports),
                [[o.kind.value, o.at, o.via, o.detail] for o in r.provenance],
            ]
            for r in lock.requirements
        ],
        "imports": [
            [i.name, i.kind.value, list(i.distributions), [_site_to_json(s) for s in i.sites]] for i in lock.imports
        ],
        "warnings": list(lock.warnings),
        "ship": [[s.source, s.target] for s in lock.ship],
        "origin": lock.origin,
        "install_project": lock.install_project,
        "python": lock.python,
        "python_version": lock.python_version,
        "notes": list(lock.notes),
        "pip_options": list(lock.pip_options),
        "dropped": [[d.what, d.at, d.reason, d.kind] for d in lock.dropped],
        "requires_python": [list(p) for p in lock.requires_python],
    }


def lock_from_json(d: dict[str, Any]) -> Lock:
    """Inverse of :func:`lock_to_json`; raises (KeyError, TypeError, ValueError) on a bad entry."""
    return Lock(
        requirements=tuple(
            Requirement(
                name=str(n),
                version=None if v is None else str(v),
                line=str(line),
                source=PinSource(src),
                imports=tuple(imps),
                provenance=tuple(
                    Origin(kind=PinSource(k), at=str(a), via=str(b), detail=str(c)) for k, a, b, c in prov
                ),
            )
            for n, v, line, src, imps, prov in d["requirements"]
        ),
        imports=tuple(
            ImportInfo(
                name=str(n), kind=ImportKind(k), distributions=tuple(ds), sites=tuple(_site_from_json(s) for s in sites)
            )
            for n, k, ds, sites in d["imports"]
        ),
        warnings=tuple(str(w) for w in d["warnings"]),
        ship=tuple(ShipFile(source=str(a), target=str(b)) for a, b in d["ship"]),
        origin=str(d["origin"]),
        install_project=bool(d["install_project"]),
        python=str(d["python"]),
        python_version=str(d["python_version"]),
        notes=tuple(str(n) for n in d["notes"]),
        pip_options=tuple(str(o) for o in d["pip_options"]),
        dropped=tuple(Dropped(what=str(w), at=str(a), reason=str(r), kind=str(k)) for w, a, r, k in d["dropped"]),
        requires_python=tuple((str(n), str(spec)) for n, spec in d["requires_python"]),
    )
