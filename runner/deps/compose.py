"""Compose the lock: imports, declared evidence and installed optional dependencies -> one ``==`` lock.

Pure but for the package-index questions (declared lines that are not installed)
and the per-distribution import cache of :mod:`runner.deps.optional`.

Rules (the README's "Dependencies" section says the same to users):

* Every imported distribution that is installed is pinned ``==`` its local version,
  with its installed ``Requires-Dist`` closure.
* The nearest declared file (``requirements.txt``... from the script's folder up to
  the root) is *evidence*: its lines join the imports and are pinned to the local
  versions.  A line whose bound the local version does not satisfy is pinned to the
  local version anyway, with a warning naming both: the local install is what the
  script ran with.  ``--requirements FILE`` is evidence too, but its bounds win a
  conflict (the person asked for this run, on the command line): the line is kept
  as written and pip picks within it in the image.
* A declared line naming a standard-library module (``os``), or the module of an
  installed distribution (``pkg_resources`` -> setuptools pinned instead), or
  nothing the index knows, is dropped with a warning naming the file and line.
* A declared line that is not installed locally gets the newest release on the
  index that its bound allows (an exact lock file's lines are kept as locked); no
  index (offline, unreachable): kept as written.
* An import that is not installed is never pinned: the local run could not import
  it either.  The warning names the import, file and line, and what to do.
* Installed optional dependencies of the imported distributions come along
  (:mod:`runner.deps.optional`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from runner.deps.interp import Environment, normalize
from runner.deps.model import Dropped, ImportInfo, ImportKind, Lock, Origin, PinSource, Requirement
from runner.deps.resolve import RUNTIME_MODULE

if TYPE_CHECKING:
    from packaging.requirements import Requirement as PackagingRequirement

    from runner.deps.declared import Declared
    from runner.deps.index import IndexLookup
    from runner.deps.resolve import Resolved

__all__ = ["compose_lock", "where_imported"]

_INDEX_TTL = 24 * 3600.0


class Cache(Protocol):
    def read(self, name: str) -> Any | None: ...

    def write(self, name: str, data: Any) -> None: ...


def where_imported(info: ImportInfo) -> str:
    """``file:line`` (or ``file, cell N, line M``) of the first import of ``info``."""
    site = info.sites[0]
    return f"{site.file}, cell {site.cell}, line {site.line}" if site.cell else f"{site.file}:{site.line}"


class _Index:
    """Index answers for declared lines that are not installed, cached for a day."""

    def __init__(self, index: IndexLookup | None, where: str, cache: Cache, expires: list[float], version: str) -> None:
        self.index, self.where, self.cache, self.expires, self.version = index, where, cache, expires, version
        self.answers: dict[str, Any] | None = None
        self.dirty = False

    def newest(self, name: str, specifier: str) -> str | None:
        """Raises IndexUnavailable; None when the index has no release the bound allows."""
        assert self.index is not None
        if self.answers is None:
            loaded = self.cache.read("index.json")
            self.answers = loaded if isinstance(loaded, dict) else {}
        key = f"{self.where}|{name}|{specifier}|{self.version}"
        hit = self.answers.get(key)
        if (
            isinstance(hit, list)
            and len(hit) == 2
            and isinstance(hit[0], (int, float))
            and hit[0] + _INDEX_TTL > time.time()
        ):
            self.expires.append(hit[0] + _INDEX_TTL)
            return None if hit[1] is None else str(hit[1])
        version = self.index.newest(name, python_version=self.version, specifier=specifier)
        now = time.time()
        self.answers[key] = [now, version]
        self.dirty = True
        self.expires.append(now + _INDEX_TTL)
        return version

    def save(self) -> None:
        if self.dirty and self.answers is not None:
            self.cache.write("index.json", self.answers)


def _with(r: Requirement, origin: Origin) -> Requirement:
    return Requirement(
        name=r.name, version=r.version, line=r.line, source=r.source, imports=r.imports, provenance=(origin,)
    )


def compose_lock(
    root: Path,
    resolved: Resolved,
    declared: Declared | None,
    env: Environment,
    python_cmd: str,
    scan_warnings: Sequence[str],
    *,
    explicit: bool,
    index: IndexLookup | None,
    offline: bool,
    where: str,
    cache: Cache,
    expires: list[float],
    optional: bool = True,
) -> Lock:
    """The lock of a scanned project and its declared file (None: none applies).

    ``explicit``: the declared file is ``--requirements`` (its bounds win a conflict).
    ``optional``: add the installed optional dependencies of imported distributions.
    """
    from runner.deps.pin import closure, image_marker_env, parse_requirement, pin, project_distributions

    marker_env = image_marker_env(env)
    warnings = list(scan_warnings)
    notes: list[str] = []
    dropped: list[Dropped] = []
    roots: dict[str, set[str]] = {}
    sources: dict[str, PinSource] = {}
    prov: dict[str, list[Origin]] = {}

    def add_root(name: str, source: PinSource, origin: Origin, extras: Sequence[str] = ()) -> None:
        roots.setdefault(name, set()).update(extras)
        sources.setdefault(name, source)
        prov.setdefault(name, []).append(origin)

    for info in resolved.imports:
        if info.kind is ImportKind.THIRD_PARTY:
            for dist in info.distributions:
                add_root(dist, PinSource.IMPORT, Origin(PinSource.IMPORT, at=where_imported(info), detail=info.name))

    kept: list[Requirement] = []  # declared lines that go in as written (URL, VCS, index pin...)
    overridden: set[str] = set()  # --requirements bounds that beat the local version
    declared_names: set[str] = set()  # what the declared file asks for (covers a missing import)
    ship = []
    pip_options: list[str] = []
    install_project = False
    if declared is not None:
        warnings += declared.warnings
        notes += declared.notes
        dropped += declared.dropped
        ship += declared.ship
        pip_options += declared.pip_options
        install_project = declared.install_project
        if install_project:
            for dist in project_distributions(env, os.fspath(root)):
                add_root(dist, PinSource.DECLARED, Origin(PinSource.DECLARED, at=declared.origin, detail="the project"))
        lookups = _Index(index, where, cache, expires, env.version)
        for r in sorted(declared.requirements, key=lambda r: _line_order(r, declared.origin)):
            at = r.provenance[0].at if r.provenance else declared.origin
            req = parse_requirement(r.line) if not r.line.startswith("-") else None
            if req is None or req.url:
                declared_names.add(r.name)
                kept.append(_with(r, Origin(PinSource.DECLARED, at=at)))
                continue
            if r.name == RUNTIME_MODULE:  # the starter needs runner locally; the image has the runtime
                dropped.append(
                    Dropped(what=r.line, at=at, reason="`import runner` in the image is runner's in-container runtime")
                )
                notes.append(
                    f"{RUNTIME_MODULE}: listed at {at}, left out of the image "
                    "(`import runner` there is runner's in-container runtime)"
                )
                continue
            if req.marker is not None and not _marker_holds(req, marker_env):
                written = (r.provenance[0].detail if r.provenance else "") or r.line
                dropped.append(
                    Dropped(what=written, at=at, reason="its marker is false in the image (Linux, this Python)")
                )
                continue
            declared_names.add(r.name)
            line = _declared_line(r, req, at, env, explicit, warnings, dropped, lookups, offline, declared.exact)
            if line is None:
                continue
            if isinstance(line, Requirement):
                if explicit and r.name in env.dists:
                    overridden.add(r.name)
                kept.append(line)
                continue
            for name in line:
                add_root(
                    name, PinSource.DECLARED, Origin(PinSource.DECLARED, at=at), [normalize(e) for e in req.extras]
                )
        lookups.save()

    from runner.deps.index import pypi_names

    for info in resolved.missing_top:
        if {*pypi_names(info.sites[0].module), normalize(info.name)} & declared_names:
            continue  # the declared file asks for it: its line decides
        file = declared.origin if declared is not None else "requirements.txt"
        warnings.append(
            f"{info.name} (imported at {where_imported(info)}) is not installed locally: not in the lock "
            f"(the local run cannot import it either); pip install it locally, or declare it in {file}"
        )
        dropped.append(Dropped(what=info.name, at=where_imported(info), reason="not installed locally", kind="import"))

    if optional and resolved.direct:
        from runner.deps.optional import optional_dependencies

        required = frozenset(closure(env, {k: frozenset(v) for k, v in roots.items()}, marker_env).dists)
        loaded = cache.read("dist-imports.json")
        dist_cache: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
        found, changed = optional_dependencies(env, resolved.direct, required, marker_env, dist_cache)
        if changed:
            cache.write("dist-imports.json", dist_cache)
        for opt in found:
            add_root(opt.name, PinSource.OPTIONAL, Origin(PinSource.OPTIONAL, via=opt.of, detail=opt.detail))

    pinned = pin(
        env,
        resolved.direct,
        root=os.fspath(root),
        roots={k: frozenset(v) for k, v in roots.items()},
        sources=sources,
    )
    as_written = {r.name for r in kept}
    # a line kept as written may be imported too: it says so
    requirements = [
        Requirement(
            name=r.name,
            version=r.version,
            line=r.line,
            source=r.source,
            imports=r.imports,
            provenance=(*r.provenance, *(o for o in prov.get(r.name, ()) if o not in r.provenance)),
        )
        for r in kept
    ]
    for r in pinned.requirements:
        if r.name in as_written or r.name in overridden:
            continue
        origins = prov.get(r.name) or [Origin(PinSource.TRANSITIVE, via=v) for v in pinned.via.get(r.name, ())]
        requirements.append(
            Requirement(
                name=r.name,
                version=r.version,
                line=r.line,
                source=r.source,
                imports=r.imports,
                provenance=tuple(origins),
            )
        )
    warnings += pinned.warnings
    notes += pinned.notes
    open_lines = [
        r
        for r in kept
        if r.version is None and "@" not in r.line and "://" not in r.line and not r.line.startswith("-")
    ]
    if declared is not None and open_lines:
        notes.append(
            f"{declared.origin}: {len(open_lines)} requirement(s) leave the version open; the installer resolves them when the image is built"
        )
    for info in resolved.missing_guarded:
        notes.append(
            f"{info.name}: imported only guarded or lazily ({where_imported(info)}) and not installed locally: left out"
        )
    for info in resolved.py2:
        notes.append(f"{info.name}: a Python 2 standard-library module ({where_imported(info)}): left out")
    for info in resolved.ambiguous:
        notes.append(
            f"{info.name}: provided by several installed distributions ({', '.join(info.distributions)}): all pinned"
        )
    return Lock(
        requirements=tuple(sorted(requirements, key=lambda r: (r.name, r.line))),
        imports=resolved.imports,
        warnings=tuple(warnings),
        ship=tuple(sorted({s.target: s for s in [*ship, *pinned.ship]}.values(), key=lambda s: s.target)),
        origin="scan" if declared is None else declared.origin,
        install_project=install_project or pinned.install_project,
        python=python_cmd,
        python_version=env.version,
        notes=tuple(notes),
        pip_options=tuple(sorted({*pip_options, *pinned.pip_options})),
        dropped=tuple(dropped),
    )


def _line_order(r: Requirement, origin: str) -> tuple[str, int, str]:
    """Sort key: the declared file, then its line number (messages follow the file)."""
    at = r.provenance[0].at if r.provenance else origin
    file, _, number = at.rpartition(":")
    return (file, int(number), r.line) if number.isdigit() else (at, 0, r.line)


def _marker_holds(req: PackagingRequirement, marker_env: dict[str, str]) -> bool:
    try:
        return bool(req.marker is None or req.marker.evaluate({**marker_env, "extra": ""}))
    except Exception:  # an undefined marker name: let pip decide in the image
        return True


def _declared_line(
    r: Requirement,
    req: PackagingRequirement,
    at: str,
    env: Environment,
    explicit: bool,
    warnings: list[str],
    dropped: list[Dropped],
    lookups: _Index,
    offline: bool,
    exact: bool,
) -> Requirement | list[str] | None:
    """What one plain declared line becomes: distributions to pin locally, a line as written, or nothing."""
    from runner.deps.index import IndexUnavailable

    dist = env.dists.get(r.name)
    spec = str(req.specifier)
    if dist is not None:
        if spec and not req.specifier.contains(dist.version, prereleases=True):
            if explicit:
                warnings.append(
                    f"{at} asks for {req.name}{spec}, but {dist.display_name} {dist.version} is installed locally: "
                    f"the --requirements bound wins, pip picks the version in the image"
                )
                return _with(r, Origin(PinSource.DECLARED, at=at))
            warnings.append(
                f"{at} asks for {req.name}{spec}, but {dist.display_name} {dist.version} is installed locally: "
                f"pinned {dist.name}=={dist.version}, the version the script runs with here "
                f"(pass --requirements to make the declared bound win)"
            )
        return [dist.name]
    written = (r.provenance[0].detail if r.provenance else "") or r.line  # as in the file (pkg_resources)
    module = req.name.replace("-", "_")  # the line's name is normalised (pkg-resources): modules use "_"
    if module in env.stdlib or module in env.builtin:
        warnings.append(f"{at}: '{written}' names the standard-library module {module}, not a distribution: dropped")
        dropped.append(Dropped(what=written, at=at, reason=f"names the standard-library module {module}"))
        return None
    owners = env.by_top.get(module) or next(
        (v for k, v in sorted(env.by_top.items()) if k.lower() == module.lower()), ()
    )
    if owners:
        module = next(k for k, v in sorted(env.by_top.items()) if k.lower() == module.lower())
        names = ", ".join(owners)
        warnings.append(
            f"{at}: '{written}' names the module {module} of {names}, not a distribution: {names} pinned instead"
        )
        dropped.append(Dropped(what=written, at=at, reason=f"names the module {module} of {names}, pinned instead"))
        return list(owners)
    if exact:
        return _with(r, Origin(PinSource.DECLARED, at=at))  # a lock file's own exact pin
    if offline or lookups.index is None or not lookups.where:
        warnings.append(
            f"{at}: {r.name} is not installed locally and the index was not asked (offline): kept as written"
        )
        return _with(r, Origin(PinSource.DECLARED, at=at))
    try:
        version = lookups.newest(r.name, spec)
    except IndexUnavailable as exc:
        warnings.append(
            f"{at}: {r.name} is not installed locally and the index could not be asked ({exc}): kept as written"
        )
        lookups.expires.append(0.0)  # ask again next time
        return _with(r, Origin(PinSource.DECLARED, at=at))
    if version is None:
        reason = f"neither installed locally nor on {lookups.where}" + (f" in a version {spec} allows" if spec else "")
        warnings.append(f"{at}: '{written}' is {reason}: dropped")
        dropped.append(Dropped(what=written, at=at, reason=reason))
        return None
    # Not pinned to the index's newest: that release may need newer versions of what is pinned
    # here from the local install (an unsatisfiable lock). The declared line lets the installer
    # pick a release that fits the exact pins.
    warnings.append(
        f"{at}: {r.name} is not installed locally: kept as declared ({written}), the installer picks "
        f"the version in the image (newest on {lookups.where}: {version}; install it locally to pin it)"
    )
    return _with(r, Origin(PinSource.DECLARED, at=at))
