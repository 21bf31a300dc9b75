"""The last step: one :class:`Lock` for a project run as a script, cached with its inputs.

A warm call stats the inputs and reads one cache file; the modules that parse, probe,
pin and compose are imported only on a miss.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.deps.cache import CacheDir, digest, file_stamp, lock_from_json, lock_to_json, stamps_ok
from runner.deps.interp import (
    PROBE_SCRIPT,
    Environment,
    fingerprint,
    parse_probe,
    resolve_python,
    run_probe,
    stamps_valid,
)
from runner.deps.model import Lock
from runner.deps.pipconf import pip_settings
from runner.deps.scanstore import scan_sites

if TYPE_CHECKING:
    from runner.deps.declared import Declared
    from runner.deps.index import IndexLookup

__all__ = ["declared_folders", "lock_project"]

_SCHEMA = 5  # 5: Requires-Python, extras and RECORD in the probe; dropped lines in the lock
_SCANNED = (".py", ".pyw", ".ipynb")
_DECLARED_NAMES = (
    "uv.lock",
    "poetry.lock",
    "requirements.txt",
    "environment.yml",
    "environment.yaml",
    "pyproject.toml",
)


def declared_folders(script: str) -> list[str]:
    """Folders (relative to the root, "" = root) where a declared file counts: the script's, up to the root."""
    folder = script.rpartition("/")[0]
    out = [folder]
    while folder:
        folder = folder.rpartition("/")[0]
        out.append(folder)
    return out


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
    scan: Sequence[str] | None = None,
    search: Sequence[str] | None = None,
) -> Lock:
    """The dependency lock of the project at ``root`` run as ``script`` (relative to ``root``).

    ``files`` is the build context (``runner.project.list_files``); its ``.py``,
    ``.pyw`` and ``.ipynb`` files are scanned unless ``scan`` names the files to scan (the
    script's import closure, relative to ``root``; ``search``: the folders besides the
    script's own on its ``sys.path``, relative to ``root``).  ``python`` is the interpreter whose
    packages are pinned (default: ``python`` on PATH).  ``requirements`` overrides
    every declared file.  ``index`` replaces the package index (tests); ``offline``
    never asks it.  ``optional``: add the installed optional dependencies of imported
    distributions (default: yes, unless ``RUNNER_OPTIONAL_DEPS=0``).
    """
    if optional is None:
        optional = os.environ.get("RUNNER_OPTIONAL_DEPS", "1").strip().lower() not in ("0", "false", "no", "off")
    root = Path(root)
    cache = CacheDir(Path(cache_dir) if cache_dir is not None else None)
    where = "" if offline else (index.where if index is not None else pip_settings().index_url)

    # --- inputs, by stat only
    scanned = sorted(f for f in (files if scan is None else scan) if f.endswith(_SCANNED))
    stats = {f: file_stamp(os.path.join(root, f)) for f in scanned}
    # Which declared file applies is decided on a cache miss only (it parses pyproject.toml);
    # the key holds every candidate's stat, so adding, removing or editing one is a miss.
    file_set = set(files)
    candidates = (
        [requirements]
        if requirements is not None
        else [
            root / rel
            for d in declared_folders(script)
            for n in _DECLARED_NAMES
            if (rel := f"{d}/{n}" if d else n) in file_set
        ]
    )
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
            [[os.fspath(c), file_stamp(os.fspath(c))] for c in candidates],
            offline,
            where,
            optional,
            None if search is None else list(search),
        ]
    )
    lock_name = f"lock-{digest([os.fspath(root), script, python, None if requirements is None else os.fspath(requirements), offline])}.json"
    entry = cache.read(lock_name)
    if isinstance(entry, dict) and entry.get("key") == key:
        try:
            if (
                stamps_valid(entry["probe_stamps"])
                and stamps_ok(entry["stamps"])
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
    sites, scan_warnings = scan_sites(root, scanned, stats, cache, os.path.dirname(os.path.join(root, script)))
    local = build_local_index(files)
    resolved = classify(sites, script=script, local=local, env=env, search=search)
    stamps: list[list[Any]] = []
    expires = [time.time() + 365 * 24 * 3600.0]

    declared: Declared | None = None
    if declared_path is not None:
        from runner.deps.declared import load_declared

        declared = load_declared(
            Path(declared_path), root=root, marker_env=image_marker_env(env), installed=frozenset(env.dists)
        )
        stamps.extend([p, file_stamp(p)] for p in declared.read)
    from runner.deps.compose import compose_lock

    if index is None and not offline and declared is not None:
        from runner.deps.index import SimpleIndex

        index = SimpleIndex()  # asked only for declared lines that are not installed
    lock = compose_lock(
        root,
        resolved,
        declared,
        env,
        python_cmd,
        scan_warnings,
        explicit=requirements is not None,
        index=None if offline else index,
        offline=offline,
        where=where,
        cache=cache,
        expires=expires,
        optional=optional,
    )
    lock = _with_requires_python(lock, env)
    stamps.extend([s.source, file_stamp(s.source)] for s in lock.ship)
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


def _environment(python_cmd: str, fp: Mapping[str, Any], cache: CacheDir) -> Environment:
    """What the interpreter reports (``runner.deps.interp``), cached until its files change."""
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
