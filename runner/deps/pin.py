"""Pin the imported distributions and everything they need, as installed locally.

Pure: (environment, direct distributions) in, requirement lines out.  The closure
follows ``Requires-Dist`` of the *installed* metadata, with markers evaluated for the
image (the user's Python, on Linux) and extras propagated, so the image gets the
local set rather than a fresh resolution.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote, urlparse

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as PackagingRequirement
from packaging.version import InvalidVersion, Version

from runner.deps.interp import Distribution, Environment, normalize
from runner.deps.model import SHIP_DIR, PinSource, Requirement, ShipFile

__all__ = ["PinResult", "SHIP_DIR", "image_marker_env", "closure", "pin", "parse_requirement"]


# PyTorch's local labels name an index of download.pytorch.org; other labels cannot
# be found by pip without an index the lock knows nothing about.
_TORCH_FAMILY = frozenset({"torch", "torchvision", "torchaudio", "torchtext", "torchdata", "torchrec"})
_TORCH_LABEL = re.compile(r"^(cpu|cu\d+|rocm\d+(\.\d+)*|xpu)$")
TORCH_INDEX = "https://download.pytorch.org/whl/"


def image_marker_env(env: Environment) -> dict[str, str]:
    """Marker environment of the image: the user's Python, on Linux."""
    out = dict(env.marker_env)
    out.update(sys_platform="linux", platform_system="Linux", os_name="posix")
    return out


@lru_cache(maxsize=4096)
def parse_requirement(text: str) -> PackagingRequirement | None:
    try:
        return PackagingRequirement(text)
    except InvalidRequirement:
        return None


def _marker_true(marker: Marker | None, env: Mapping[str, str], extras: frozenset[str]) -> bool:
    if marker is None:
        return True
    try:
        for extra in ("", *sorted(extras)):
            if marker.evaluate({**env, "extra": extra}):
                return True
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return False
    return False


@dataclass(frozen=True)
class Closure:
    dists: Mapping[str, frozenset[str]]  # name -> extras requested
    #: (needed distribution, needed by) pairs that are not installed locally
    unmet: tuple[tuple[str, str], ...]
    #: name -> the distributions in the closure whose requirements name it (empty for roots)
    via: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def closure(env: Environment, roots: Mapping[str, frozenset[str]], marker_env: Mapping[str, str]) -> Closure:
    """Every installed distribution reachable from ``roots`` (name -> extras)."""
    extras: dict[str, set[str]] = {}
    unmet: set[tuple[str, str]] = set()
    via: dict[str, set[str]] = {}
    queue = [(name, frozenset(e)) for name, e in sorted(roots.items())]
    while queue:
        name, wanted = queue.pop()
        have = extras.get(name)
        if have is not None and wanted <= have:
            continue
        extras.setdefault(name, set()).update(wanted)
        dist = env.dists.get(name)
        if dist is None:
            continue
        active = frozenset(extras[name])
        for text in dist.requires:
            req = parse_requirement(text)
            if req is None or not _marker_true(req.marker, marker_env, active):
                continue
            dep = normalize(req.name)
            if dep not in env.dists:
                unmet.add((dep, name))
                continue
            if dep != name:
                via.setdefault(dep, set()).add(name)
            queue.append((dep, frozenset(normalize(e) for e in req.extras)))
    return Closure(
        dists={k: frozenset(v) for k, v in sorted(extras.items()) if k in env.dists},
        unmet=tuple(sorted(unmet)),
        via={k: tuple(sorted(v)) for k, v in sorted(via.items()) if k not in roots},
    )


@dataclass(frozen=True)
class PinResult:
    requirements: tuple[Requirement, ...]
    ship: tuple[ShipFile, ...] = ()
    pip_options: tuple[str, ...] = ()
    install_project: bool = False
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: transitive name -> the pinned distributions that require it
    via: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _version_line(dist: Distribution, warnings: list[str], notes: list[str], options: set[str]) -> str:
    version = dist.version
    try:
        parsed = Version(version)
    except InvalidVersion:
        warnings.append(f"{dist.name} {version}: not a standard version number; pinned with '===' (arbitrary equality)")
        return f"{dist.name}==={version}"
    if parsed.local is None:
        return f"{dist.name}=={version}"
    if dist.name in _TORCH_FAMILY and _TORCH_LABEL.match(parsed.local):
        options.add(f"--extra-index-url {TORCH_INDEX}{parsed.local}")
        notes.append(
            f"{dist.name}=={version}: local build '+{parsed.local}', installed from {TORCH_INDEX}{parsed.local}"
        )
        return f"{dist.name}=={version}"
    warnings.append(
        f"{dist.name} {version}: local build '+{parsed.local}' is on no index runner knows; "
        f"pinned to {parsed.public} (use --requirements to point at its index)"
    )
    return f"{dist.name}=={parsed.public}"


def _file_path(url: str) -> str:
    parsed = urlparse(url)
    return unquote(parsed.path)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _direct_url(dist: Distribution) -> dict[str, object]:
    if not dist.direct_url:
        return {}
    try:
        loaded = json.loads(dist.direct_url)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def project_distributions(env: Environment, root: str) -> tuple[str, ...]:
    """Installed distributions that are the project itself (installed from its folder)."""
    real_root = os.path.realpath(root)
    out = []
    for dist in env.dists.values():
        info = _direct_url(dist)
        url = str(info.get("url", ""))
        if isinstance(info.get("dir_info"), dict) and url.startswith("file:"):
            if os.path.realpath(_file_path(url)) == real_root:
                out.append(dist.name)
    return tuple(sorted(out))


def pin(
    env: Environment,
    direct: Mapping[str, tuple[str, ...]],
    *,
    root: str,
    roots: Mapping[str, frozenset[str]] | None = None,
    sources: Mapping[str, PinSource] | None = None,
) -> PinResult:
    """Requirement lines for ``direct`` (distribution -> import names) and their closure.

    ``roots`` (distribution -> extras) replaces ``direct``'s keys as the closure's
    starting points when given (declared and optional distributions join the imported
    ones); ``sources`` says what brought each root (default: imported).
    """
    marker_env = image_marker_env(env)
    starts = roots if roots is not None else {name: frozenset() for name in direct}
    result = closure(env, starts, marker_env)
    warnings: list[str] = []
    notes: list[str] = []
    options: set[str] = set()
    ship: list[ShipFile] = []
    lines: list[Requirement] = []
    install_project = False
    real_root = os.path.realpath(root)
    for name in sorted(result.dists):
        dist = env.dists[name]
        imports = direct.get(name, ())
        if name in starts:
            source = (sources or {}).get(name, PinSource.IMPORT)
        else:
            source = PinSource.TRANSITIVE
        info = _direct_url(dist)
        url = str(info.get("url", ""))
        line: str | None
        version: str | None = dist.version
        dir_info = info.get("dir_info")
        if isinstance(dir_info, dict):
            folder = os.path.realpath(_file_path(url)) if url.startswith("file:") else url
            editable = bool(dir_info.get("editable"))
            if folder == real_root:
                install_project = True
                notes.append(
                    f"{name} is this project{' (editable install)' if editable else ''}: installed from the build context"
                )
                continue
            where = "inside the project" if _inside(folder, real_root) else "on this machine"
            warnings.append(
                f"{name} {dist.version} is installed from the folder {folder} ({where}) and cannot be reproduced "
                f"in the image: left out (publish it, or list it with --requirements)"
            )
            continue
        if isinstance(info.get("vcs_info"), dict):
            vcs = info["vcs_info"]
            assert isinstance(vcs, dict)
            commit = vcs.get("commit_id") or vcs.get("requested_revision")
            if url.startswith("file:"):
                warnings.append(
                    f"{name} {dist.version} is installed from the local checkout {_file_path(url)} and cannot be "
                    f"reproduced in the image: left out"
                )
                continue
            line = f"{name} @ {vcs.get('vcs', 'git')}+{url}" + (f"@{commit}" if commit else "")
            if info.get("subdirectory"):
                line += f"#subdirectory={info['subdirectory']}"
            version = None
        elif isinstance(info.get("archive_info"), dict):
            if url.startswith("file:"):
                path = _file_path(url)
                if os.path.isfile(path):
                    target = posixpath.basename(path)
                    ship.append(ShipFile(source=path, target=target))
                    line = f"{name} @ file://{SHIP_DIR}/{target}"
                    notes.append(f"{name} {dist.version} was installed from the file {path}: shipped into the build")
                else:
                    line = _version_line(dist, warnings, notes, options)
                    warnings.append(
                        f"{name} {dist.version} was installed from {path}, which no longer exists: "
                        f"pinned to the index version instead"
                    )
            else:
                line = f"{name} @ {url}"
                archive = info["archive_info"]
                assert isinstance(archive, dict)
                hashes = archive.get("hashes")
                digest = (
                    f"sha256={hashes['sha256']}"
                    if isinstance(hashes, dict) and "sha256" in hashes
                    else archive.get("hash")
                )
                if digest and "#" not in url:
                    line += f"#{digest}"
                version = None
        else:
            line = _version_line(dist, warnings, notes, options)
        lines.append(Requirement(name=name, version=version, line=line, source=source, imports=imports))
    for dep, needed_by in result.unmet:
        warnings.append(
            f"{dep} (needed by {needed_by}) is not installed locally: not pinned, pip picks a version in the image"
        )
    return PinResult(
        requirements=tuple(lines),
        ship=tuple(sorted(ship, key=lambda s: s.target)),
        pip_options=tuple(sorted(options)),
        install_project=install_project,
        warnings=tuple(warnings),
        notes=tuple(notes),
        via=result.via,
    )
