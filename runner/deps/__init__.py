"""Dependency stage: scan imports, map them in the user's interpreter, pin them.

Entry point: :func:`lock_project`.  Steps (each a module):

``scan``      AST walk of every Python file and notebook -> import sites
``interp``    one probe of the user's interpreter -> installed distributions
``resolve``   site -> standard library / project / installed / missing
``pin``       installed closure, pinned ``==`` to the local versions
``declared``  requirements.txt / pyproject / environment.yml / uv.lock / poetry.lock (evidence)
``optional``  installed optional dependencies of the imported distributions
``compose``   imports + declared evidence + optional -> one lock, with provenance
``index``     newest release for a declared line that is not installed
``cache``     the file cache that keeps an unchanged ``runner run`` free of
              subprocesses and parsing
``pycheck``   the base image's Python against the lock's Requires-Python (used by the app,
              once the image's version is known)

Cache layout under ``cache_dir/deps/``: ``lock-<project>.json`` (the last lock of a
(root, script, options) with the key of its inputs and the sys.path stamps it was
made with), ``scan-<root>.json`` (per-file imports keyed by size and mtime),
``probe-<fingerprint>.json`` (what an interpreter reported), ``index.json`` (index
answers, one day), ``dist-imports.json`` (what each installed distribution's code
imports, keyed by its RECORD's stat).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from runner.deps.cache import digest, lock_from_json, lock_to_json, read_json, write_json
from runner.deps.interp import (
    Environment,
    fingerprint,
    parse_probe,
    resolve_python,
    run_probe,
    stamps_valid,
)
from runner.deps.model import ImportSite, Lock
from runner.deps.pipconf import pip_settings

if TYPE_CHECKING:
    from runner.deps.declared import Declared
    from runner.deps.index import IndexLookup
    from runner.deps.resolve import Resolved
    from runner.deps.scan import FileScan

# Only the modules the cached path needs are imported here: a cached ``runner run``
# must not pay for packaging/ssl/tomllib imports (tens of milliseconds).  The
# others are imported where a cache miss needs them.

#: where shipped wheel files are in the image (the build copies ``Lock.ship`` there)
SHIP_DIR = "/runner-deps"
_DECLARED_NAMES = ("uv.lock", "poetry.lock", "requirements.txt", "environment.yml", "environment.yaml", "pyproject.toml")


def _declared_folders(script: str) -> list[str]:
    """The script's folder and each one above it up to the root ("")."""
    folder = script.rpartition("/")[0]
    out = [folder]
    while folder:
        folder = folder.rpartition("/")[0]
        out.append(folder)
    return out


def scan_file_bytes(path: str, data: bytes) -> FileScan:
    """Parse one file (indirection so the parser module loads only on a cache miss)."""
    from runner.deps.scan import scan_file_bytes as scan

    return scan(path, data)

__all__ = ["lock_project", "write_lock", "SHIP_DIR"]

_SCHEMA = 5  # 5: Requires-Python, extras and RECORD in the probe; dropped lines in the lock
_SCANNED = (".py", ".pyw", ".ipynb")


def write_lock(lock: Lock, path: Path) -> None:
    """Write ``lock.text()`` to ``path`` atomically (the file the person reads and the build installs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(lock.text(), encoding="utf-8")
    os.replace(tmp, path)


def _stat(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _stamps_ok(stamps: Iterable[Sequence[Any]]) -> bool:
    return all(_stat(str(p)) == s for p, s in stamps)


@dataclass(frozen=True)
class _Cache:
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


def lock_project(
    root: Path,
    files: Sequence[str],
    script: str,
    *,
    python: str | None = None,
    requirements: Path | None = None,
    cache_dir: Path | None = None,
    offline: bool = False,
    index: IndexLookup | None = None,
    optional: bool | None = None,
) -> Lock:
    """The dependency lock of the project at ``root`` run as ``script`` (relative to ``root``).

    ``files`` is the build context (``runner.project.list_files``); its ``.py``,
    ``.pyw`` and ``.ipynb`` files are scanned.  ``python`` is the interpreter whose
    packages are pinned (default: ``python`` on PATH).  ``requirements`` overrides
    every declared file.  ``index`` replaces the package index (tests); ``offline``
    never asks it.  ``optional``: add the installed optional dependencies of imported
    distributions (default: yes, unless ``RUNNER_OPTIONAL_DEPS=0``).
    """
    if optional is None:
        optional = os.environ.get("RUNNER_OPTIONAL_DEPS", "1").strip().lower() not in ("0", "false", "no", "off")
    root = Path(root)
    cache = _Cache(Path(cache_dir) if cache_dir is not None else None)
    where = "" if offline else (index.where if index is not None else pip_settings().index_url)

    # --- inputs, by stat only
    scanned = sorted(f for f in files if f.endswith(_SCANNED))
    stats = {f: _stat(os.path.join(root, f)) for f in scanned}
    # Which declared file applies is decided on a cache miss only (it parses pyproject.toml);
    # the key holds every candidate's stat, so adding, removing or editing one is a miss.
    file_set = set(files)
    candidates = [requirements] if requirements is not None else [
        root / rel for d in _declared_folders(script) for n in _DECLARED_NAMES if (rel := f"{d}/{n}" if d else n) in file_set
    ]
    python_cmd = resolve_python(python)
    fp = fingerprint(python_cmd)
    key = digest(
        [
            _SCHEMA,
            os.fspath(root),
            script,
            digest(list(files)),
            stats,
            fp,
            [[os.fspath(c), _stat(os.fspath(c))] for c in candidates],
            offline,
            where,
            optional,
        ]
    )
    lock_name = f"lock-{digest([os.fspath(root), script, python, None if requirements is None else os.fspath(requirements), offline])}.json"
    entry = cache.read(lock_name)
    if isinstance(entry, dict) and entry.get("key") == key:
        try:
            if (
                stamps_valid(entry["probe_stamps"])
                and _stamps_ok(entry["stamps"])
                and float(entry["expires"]) > time.time()
            ):
                return lock_from_json(entry["lock"])
        except (KeyError, TypeError, ValueError):
            pass

    from runner.deps.pin import image_marker_env
    from runner.deps.resolve import build_local_index, classify

    declared_path: Path | None = requirements
    if declared_path is None and candidates:
        from runner.deps.declared import find_declared

        declared_path = find_declared(root, files, script)

    env = _environment(python_cmd, fp, cache)
    sites, scan_warnings = _scan(root, scanned, stats, cache)
    local = build_local_index(files)
    resolved = classify(sites, script=script, local=local, env=env)
    stamps: list[list[Any]] = []
    expires = [time.time() + 365 * 24 * 3600.0]

    declared: Declared | None = None
    if declared_path is not None:
        from runner.deps.declared import load_declared

        declared = load_declared(
            Path(declared_path), root=root, marker_env=image_marker_env(env), installed=frozenset(env.dists)
        )
        stamps.extend([p, _stat(p)] for p in declared.read)
    from runner.deps.compose import compose_lock

    if index is None and not offline and declared is not None:
        from runner.deps.index import SimpleIndex

        index = SimpleIndex()  # asked only for declared lines that are not installed
    lock = compose_lock(
        root, resolved, declared, env, python_cmd, scan_warnings, explicit=requirements is not None,
        index=None if offline else index, offline=offline, where=where, cache=cache, expires=expires, optional=optional,
    )  # fmt: skip
    lock = _with_requires_python(lock, env)
    stamps.extend([s.source, _stat(s.source)] for s in lock.ship)
    cache.write(
        lock_name,
        {
            "key": key,
            "probe_stamps": [list(s) for s in env.stamps],
            "stamps": stamps,
            "expires": min(expires),
            "lock": lock_to_json(lock),
        },
    )
    return lock


# --------------------------------------------------------------------------- environment


def _environment(python_cmd: str, fp: Mapping[str, Any], cache: _Cache) -> Environment:
    from runner.deps.interp import PROBE_SCRIPT

    name = f"probe-{digest([fp, digest(PROBE_SCRIPT)])}.json"  # a changed probe reports more: ask again
    cached = cache.read(name)
    if (
        isinstance(cached, dict)
        and cached.get("v") == _SCHEMA  # an older probe lacks fields (Requires-Python)
        and cached.get("fingerprint") == fp
        and isinstance(cached.get("probe"), dict)
    ):
        probe = cached["probe"]
        try:
            if stamps_valid(probe["stamps"]):
                return parse_probe(python_cmd, probe)
        except (KeyError, TypeError, ValueError):
            pass
    probe = run_probe(python_cmd)
    cache.write(name, {"v": _SCHEMA, "fingerprint": fp, "probe": probe})
    return parse_probe(python_cmd, probe)


def _with_requires_python(lock: Lock, env: Environment) -> Lock:
    """The lock with the Requires-Python of each line pinned to the installed version.

    Lines the local install does not back (an index pin, another version) get none:
    their metadata is not here, and pip reports a mismatch for them itself.
    """
    found = []
    for r in lock.requirements:
        dist = env.dists.get(r.name)
        if dist is not None and dist.requires_python and r.version in (dist.version, None):
            found.append((r.name, dist.requires_python))
    return replace(lock, requires_python=tuple(sorted(set(found))))


# --------------------------------------------------------------------------- scan


def _raw_to_json(r: Any) -> list[Any]:
    return [r.module, r.line, r.guarded, r.lazy, list(r.names), r.cell]


def _scan(
    root: Path, scanned: list[str], stats: Mapping[str, list[int] | None], cache: _Cache
) -> tuple[list[ImportSite], list[str]]:
    from runner.deps.scan import FileScan, RawImport

    cache_name = f"scan-{digest(os.fspath(root))}.json"
    old = cache.read(cache_name)
    old_files: dict[str, Any] = old.get("files", {}) if isinstance(old, dict) and old.get("v") == _SCHEMA else {}
    new_files: dict[str, Any] = {}
    sites: list[ImportSite] = []
    warnings: list[str] = []
    changed = False
    for rel in scanned:
        stat = stats.get(rel)
        if stat is None:
            continue
        hit = old_files.get(rel)
        result: FileScan | None = None
        if isinstance(hit, list) and len(hit) == 3 and hit[0] == stat:
            try:
                result = FileScan(
                    imports=tuple(
                        RawImport(module=m, line=ln, guarded=g, lazy=lz, names=tuple(ns), cell=c)
                        for m, ln, g, lz, ns, c in hit[1]
                    ),
                    errors=tuple((int(c), int(ln), str(msg)) for c, ln, msg in hit[2]),
                )
            except (TypeError, ValueError):
                result = None
        if result is None:
            changed = True
            try:
                with open(os.path.join(root, rel), "rb") as fh:
                    data = fh.read()
            except OSError as exc:
                warnings.append(f"{rel}: cannot read ({exc.strerror}); its imports are not in the lock")
                continue
            result = scan_file_bytes(rel, data)
        new_files[rel] = [stat, [_raw_to_json(r) for r in result.imports], [list(e) for e in result.errors]]
        for r in result.imports:
            sites.append(
                ImportSite(module=r.module, file=rel, line=r.line, guarded=r.guarded, lazy=r.lazy, names=r.names, cell=r.cell)
            )
        for cell, line, message in result.errors:
            at = f"{rel}: cell {cell}, line {line}" if cell else f"{rel}:{line}"
            if rel.endswith(".ipynb") and not cell:
                at = rel
            warnings.append(f"{at}: cannot parse ({message}); its imports are not in the lock")
    if changed or set(new_files) != set(old_files):
        cache.write(cache_name, {"v": _SCHEMA, "files": new_files})
    return sites, warnings
