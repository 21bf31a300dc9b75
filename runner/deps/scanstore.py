"""The scan step, cached: per-file import scans, the import sites of a file list, and the
script's import closure walked over those scans.

A file is parsed (``runner.deps.scan``, imported only on a miss) again only when its
(size, mtime) changed; a warm run reads the cache and stats files, nothing more.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.deps.cache import CacheDir, digest, dir_stamp, file_stamp
from runner.deps.closure import Closure, FileFacts, import_closure
from runner.deps.model import ImportSite

if TYPE_CHECKING:
    from runner.deps.scan import FileScan

__all__ = ["ScanStore", "project_closure", "scan_file_bytes", "scan_sites"]

#: scan cache entries: keyed by absolute path, with relative imports and paths (for the closure)
SCAN_V = "abs-1"


def scan_file_bytes(path: str, data: bytes) -> FileScan:
    """Parse one file (indirection so the parser module loads only on a cache miss)."""
    from runner.deps.scan import scan_file_bytes as scan

    return scan(path, data)


def _raw_to_json(r: Any) -> list[Any]:
    return [r.module, r.line, r.guarded, r.lazy, list(r.names), r.cell]


def _facts(entry: list[Any]) -> FileFacts:
    """The closure's view of a cache entry (plain tuples: no parser import on a warm run)."""
    return FileFacts(
        imports=tuple((str(m), tuple(str(n) for n in ns)) for m, _, _, _, ns, _ in entry[1]),
        relative=tuple((int(lv), str(m), tuple(str(n) for n in ns)) for lv, m, ns, _ in entry[3]),
        path_adds=tuple((str(b), str(r), int(ln)) for b, r, ln in entry[4]),
        paths=tuple((str(b), str(r), int(ln)) for b, r, ln in entry[5]),
    )


class ScanStore:
    """Per-file scan results, keyed by absolute path and (size, mtime): a file is parsed
    again only when it changed.  One cache file per script folder; it keeps the files the
    last run looked at."""

    def __init__(self, cache: CacheDir, anchor: str) -> None:
        self.cache = cache
        self.name = f"scan-{digest(anchor)}.json"
        old = cache.read(self.name)
        self.old: dict[str, Any] = old.get("files", {}) if isinstance(old, dict) and old.get("v") == SCAN_V else {}
        self.new: dict[str, Any] = {}
        self.changed = False
        self.unreadable: dict[str, str] = {}
        self.decoded: dict[str, FileFacts] = {}

    def entry(self, path: str, stat: list[int] | None = None) -> list[Any] | None:
        """[stat, imports, errors, relative, path_adds, paths] of ``path`` (None: unreadable)."""
        if path in self.new:
            return self.new[path]  # type: ignore[no-any-return]
        stat = stat if stat is not None else file_stamp(path)
        if stat is None:
            self.unreadable[path] = "no such file"
            return None
        hit = self.old.get(path)
        if isinstance(hit, list) and len(hit) == 6 and hit[0] == stat:
            try:
                self.decoded[path] = _facts(hit)
                self.new[path] = hit
                return hit
            except (TypeError, ValueError):
                pass  # a damaged entry: parse again
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            self.unreadable[path] = exc.strerror or str(exc)
            return None
        result = scan_file_bytes(path, data)
        entry = [
            stat,
            [_raw_to_json(r) for r in result.imports],
            [list(e) for e in result.errors],
            [[r.level, r.module, list(r.names), r.line] for r in result.relative],
            [list(a) for a in result.path_adds],
            [list(p) for p in result.paths],
        ]
        self.new[path] = entry
        self.changed = True
        return entry

    def facts(self, path: str) -> FileFacts | None:
        entry = self.entry(path)
        if entry is None:
            return None
        if path not in self.decoded:
            self.decoded[path] = _facts(entry)
        return self.decoded[path]

    def save(self) -> None:
        if self.changed or set(self.new) != set(self.old):
            self.cache.write(self.name, {"v": SCAN_V, "files": self.new})


def project_closure(script: Path, *, cwd: Path, roots: Sequence[Path], cache_dir: Path | None = None) -> Closure:
    """The import closure of ``script`` (absolute): the local files it can import, the
    folders it adds to ``sys.path`` and the relative paths it names (``runner.deps.closure``).

    Cached with what it depends on: each closure file's (size, mtime), the mtime of every
    folder it listed (a module added or removed there changes it) and the existence of
    every path it tested.  A warm run only stats those.
    """
    cache = CacheDir(Path(cache_dir) if cache_dir is not None else None)
    inputs = [SCAN_V, os.fspath(script), os.fspath(cwd), [os.fspath(r) for r in roots]]
    name = f"closure-{digest(inputs)}.json"
    entry = cache.read(name)
    if isinstance(entry, dict) and entry.get("inputs") == inputs:
        try:
            if (
                all(file_stamp(p) == s for p, s in entry["files"])
                and all(dir_stamp(d) == m for d, m in entry["listed"])
                and all(os.path.lexists(p) == e for p, e in entry["tested"])
            ):
                r = entry["result"]
                return Closure(
                    files=tuple(r["files"]),
                    path_dirs=tuple((str(d), str(f), int(n)) for d, f, n in r["path_dirs"]),
                    reached=tuple((str(d), str(f), int(n)) for d, f, n in r["reached"]),
                    search=tuple(r["search"]),
                )
        except (KeyError, TypeError, ValueError):
            pass
    store = ScanStore(cache, os.path.dirname(os.fspath(script)))
    # every stamp is taken before what it guards is read: a change during the walk is a miss next time
    closure = import_closure(
        os.fspath(script), cwd=os.fspath(cwd), roots=[os.fspath(r) for r in roots], scan=store.facts
    )
    store.save()
    cache.write(
        name,
        {
            "inputs": inputs,
            "files": [[p, store.new[p][0] if p in store.new else None] for p in closure.files],
            "listed": [list(x) for x in closure.listed],
            "tested": [[p, os.path.lexists(p)] for p in closure.tested],
            "result": {
                "files": list(closure.files),
                "path_dirs": [list(x) for x in closure.path_dirs],
                "reached": [list(x) for x in closure.reached],
                "search": list(closure.search),
            },
        },
    )
    return closure


def scan_sites(
    root: Path, scanned: list[str], stats: Mapping[str, list[int] | None], cache: CacheDir, anchor: str
) -> tuple[list[ImportSite], list[str]]:
    """The import sites of the files ``scanned`` (relative to ``root``, with their stamps), and
    a warning for each file that cannot be read or parsed."""
    store = ScanStore(cache, anchor)
    sites: list[ImportSite] = []
    warnings: list[str] = []
    for rel in scanned:
        stat = stats.get(rel)
        if stat is None:
            continue
        path = os.path.join(root, rel)
        entry = store.entry(path, stat)
        if entry is None:
            warnings.append(f"{rel}: cannot read ({store.unreadable.get(path)}); its imports are not in the lock")
            continue
        for module, line, guarded, lazy, names, cell in entry[1]:
            sites.append(
                ImportSite(
                    module=module, file=rel, line=line, guarded=guarded, lazy=lazy, names=tuple(names), cell=cell
                )
            )
        for cell, line, message in entry[2]:
            at = f"{rel}: cell {cell}, line {line}" if cell else f"{rel}:{line}"
            if rel.endswith(".ipynb") and not cell:
                at = rel
            warnings.append(f"{at}: cannot parse ({message}); its imports are not in the lock")
    store.save()
    return sites, warnings
