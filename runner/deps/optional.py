"""Installed optional dependencies of the imported distributions (issue 9, point 8).

A library may import another installed distribution at run time without requiring
it: xgboost imports scikit-learn lazily (an extra), torch imports numpy, pandas
imports matplotlib for ``.plot()``.  Locally those imports work, so in the image they
must too.  For each distribution the script imports, this finds the *installed*
distributions that

* its own code imports (guarded and lazy imports included): the ``.py`` files its
  RECORD lists, read from disk by runner (no subprocess), test folders left out;
* or its extras name (``Provides-Extra`` + ``Requires-Dist: x; extra == "e"``),
  except development extras (test, dev, docs, lint...).

Never anything that is not installed.  What each distribution's code imports is
cached by its RECORD's stat (an upgrade rewrites RECORD), so only a new or changed
distribution is read again.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.deps.interp import Distribution, Environment, normalize

__all__ = ["Optional", "DEV_EXTRAS", "DEV_TOOLS", "code_imports", "optional_dependencies", "is_dev_extra"]

#: extras that are for working *on* a library, not for using it
DEV_EXTRAS = frozenset(
    {
        "test",
        "tests",
        "testing",
        "dev",
        "devel",
        "develop",
        "development",
        "doc",
        "docs",
        "documentation",
        "lint",
        "linting",
        "typing",
        "types",
        "mypy",
        "style",
        "format",
        "qa",
        "check",
        "benchmark",
        "benchmarks",
        "bench",
        "build",
        "release",
        "ci",
        "coverage",
        "all",
        "full",
        "complete",
    }
)
# Test and documentation tools: libraries import them in their test helpers (networkx's
# backends import pytest, numpy.testing too), never on the path a script runs.
DEV_TOOLS = frozenset(
    {
        "pytest",
        "hypothesis",
        "nose",
        "coverage",
        "sphinx",
        "mypy",
        "black",
        "flake8",
        "pylint",
        "ruff",
        "tox",
        "pre-commit",
    }
)
# Folders inside a distribution whose imports are not the library's (pytest, hypothesis...).
# Vendored copies (pkg_resources/_vendor/pyparsing) import their own siblings, not installed distributions.
_SKIP_PARTS = frozenset(
    {
        "tests",
        "test",
        "testing",
        "_testing",
        "benchmarks",
        "examples",
        "docs",
        "conftest.py",
        "_vendor",
        "vendor",
        "_vendored",
        "vendored",
        "extern",
        "_extern",
        "externals",
    }
)
# ``import a.b, c as d`` / ``from a.b import c`` at any indentation (guarded and lazy imports too)
_IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+([A-Za-z_][\w.]*)[ \t]+import\b|import[ \t]+([A-Za-z_][\w.]*(?:[ \t]*(?:as[ \t]+\w+)?[ \t]*,[ \t]*[A-Za-z_][\w.]*)*))",
    re.M,
)
_SCHEMA = 2


@dataclass(frozen=True)
class Optional:
    name: str  # the optional distribution
    of: str  # the imported distribution that brings it
    detail: str  # "imported at xgboost/sklearn.py:12" or "extra scikit-learn"


def _record_files(dist: Distribution) -> list[str]:
    try:
        with open(dist.record, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        path = line.rsplit(",", 2)[0]
        if not path.endswith(".py") or path.startswith(("..", "/")):
            continue
        parts = path.split("/")
        if ".dist-info" in parts[0] or any(p in _SKIP_PARTS for p in parts[:-1]) or parts[-1] in _SKIP_PARTS:
            continue
        out.append(path)
    return sorted(out)


def _file_imports(data: bytes) -> list[tuple[str, int]]:
    """Top-level module names a source imports, with the line of the first import of each.

    A line match rather than a parse: a large library (torch: thousands of files) is
    read in well under a second; the rare false hit (an ``import x`` line inside a
    docstring) can only add a distribution that is installed anyway.
    """
    out: dict[str, int] = {}
    for m in _IMPORT.finditer(data):
        line = data.count(b"\n", 0, m.start()) + 1
        if m.group(1) is not None:
            names = [m.group(1)]
        else:
            names = [part.strip().split()[0] for part in m.group(2).split(b",") if part.strip()]
        for raw in names:
            top = raw.split(b".", 1)[0].decode("ascii", "replace")
            if top and top not in out:
                out[top] = line
    return sorted(out.items())


def code_imports(dist: Distribution, cache: Mapping[str, Any] | None) -> tuple[dict[str, dict[str, str]], Any]:
    """What ``dist``'s own code imports, by its top-level module: top -> {imported top name -> ``file:line``}.

    ``cache`` is this distribution's previous entry (or None); the second value is the
    entry to store (keyed by the RECORD's size and mtime).
    """
    try:
        st = os.stat(dist.record)
        stamp: list[Any] = [_SCHEMA, st.st_size, st.st_mtime_ns]
    except OSError:
        return {}, None
    if isinstance(cache, dict) and cache.get("stamp") == stamp and isinstance(cache.get("by_top"), dict):
        return {str(t): {str(k): str(v) for k, v in m.items()} for t, m in cache["by_top"].items()}, cache
    found: dict[str, dict[str, str]] = {}
    for rel in _record_files(dist):
        try:
            with open(os.path.join(dist.location, rel), "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        if b"import" not in data:
            continue
        own = found.setdefault(rel.split("/", 1)[0].removesuffix(".py"), {})
        for top, line in _file_imports(data):
            own.setdefault(top, f"{rel}:{line}")
    return found, {"stamp": stamp, "by_top": found}


def is_dev_extra(extra: str) -> bool:
    """``test``, ``docs``, ``test-extra``, ``dev_tools``...: an extra for working on the library."""
    name = normalize(extra)
    return name in DEV_EXTRAS or any(part in DEV_EXTRAS for part in name.split("-"))


def _extra_names(env: Environment, dist: Distribution, marker_env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(installed distribution, extra) pairs the non-development extras of ``dist`` name."""
    from runner.deps.pin import parse_requirement

    out: list[tuple[str, str]] = []
    for text in dist.requires:
        req = parse_requirement(text)
        if req is None or req.marker is None or "extra" not in str(req.marker):
            continue
        dep = normalize(req.name)
        if dep not in env.dists or dep == dist.name:
            continue
        try:
            if req.marker.evaluate({**marker_env, "extra": ""}):
                continue  # not extra-only: a plain requirement, already in the closure
            for extra in dist.extras:
                if is_dev_extra(extra):
                    continue
                if req.marker.evaluate({**marker_env, "extra": extra}):
                    out.append((dep, extra))
                    break
        except Exception:  # packaging's marker errors: such a line names nothing usable
            continue
    return out


def optional_dependencies(
    env: Environment,
    imported: Mapping[str, tuple[str, ...]],
    required: frozenset[str],
    marker_env: Mapping[str, str],
    cache: dict[str, Any],
) -> tuple[list[Optional], bool]:
    """Installed distributions that ``imported`` (distribution -> import names) may import at run time, beyond ``required``.

    Only the code of the modules the script imports counts (``import pkg_resources``
    reads pkg_resources/, not the rest of setuptools).  ``cache`` (RECORD path -> entry)
    is updated in place; the flag says it changed.
    """
    out: dict[str, Optional] = {}
    changed = False
    for name in sorted(imported):
        dist = env.dists.get(name)
        if dist is None:
            continue
        own = set(dist.top)
        if dist.record:
            by_top, entry = code_imports(dist, cache.get(dist.record))
            if entry is not cache.get(dist.record):
                cache[dist.record] = entry
                changed = True
            used = {i.split(".", 1)[0] for i in imported[name]}
            found: dict[str, str] = {}
            for top in sorted(used):
                for k, v in by_top.get(top, {}).items():
                    found.setdefault(k, v)
            for top, at in sorted(found.items()):
                if top in own or top in env.stdlib or top in env.builtin:
                    continue
                owners = env.by_top.get(top, ())
                # a shared namespace (google, azure) names no one distribution: left alone
                if len(owners) != 1 or owners[0] in DEV_TOOLS:
                    continue
                if owners[0] not in required and owners[0] != name and owners[0] not in out:
                    out[owners[0]] = Optional(name=owners[0], of=name, detail=f"imported at {at}")
        for dep, extra in _extra_names(env, dist, marker_env):
            if dep not in required and dep not in out and dep not in DEV_TOOLS:
                out[dep] = Optional(name=dep, of=name, detail=f"extra {extra}")
    return [out[k] for k in sorted(out)], changed
