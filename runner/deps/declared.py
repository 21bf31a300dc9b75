"""Dependencies the project declares: requirements.txt, pyproject, environment.yml, uv.lock, poetry.lock.

Declared files are evidence, not the lock: this module only reads them (names
normalised, each line with the ``file:line`` it came from); ``compose`` merges them
with the imports and pins them.  Lines that cannot be used are recorded as
:class:`~runner.deps.model.Dropped` with a warning.  Reads files; otherwise pure.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from runner.deps.interp import normalize
from runner.deps.model import SHIP_DIR, Dropped, Origin, PinSource, Requirement, ShipFile
from runner.errors import DependencyError, UsageError

__all__ = ["Declared", "DECLARED_FILES", "find_declared", "load_declared"]

#: files looked for at the project root, first found wins: exact lock files first
DECLARED_FILES = ("uv.lock", "poetry.lock", "requirements.txt", "environment.yml", "environment.yaml", "pyproject.toml")

# pip options that may appear in a requirements file and are kept for the install
_KEEP_OPTIONS = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "--trusted-host": "--trusted-host",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--pre": "--pre",
    "--prefer-binary": "--prefer-binary",
    "--no-binary": "--no-binary",
    "--only-binary": "--only-binary",
}
_FLAG_OPTIONS = {"--pre", "--prefer-binary"}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(.*)$", re.DOTALL)
_ARCHIVE = re.compile(r"\.(whl|tar\.gz|zip|tar\.bz2|tgz)$", re.IGNORECASE)
_WHEEL_NAME = re.compile(r"^([^-]+)-")
_EGG = re.compile(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)")

# conda package -> pip distribution, where the names differ
CONDA_TO_PYPI: Mapping[str, str] = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "py-opencv": "opencv-python",
    "opencv": "opencv-python",
    "matplotlib-base": "matplotlib",
    "tensorflow-gpu": "tensorflow",
    "pytables": "tables",
    "py-xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "msgpack-python": "msgpack",
    "python-graphviz": "graphviz",
}
# conda packages that are not Python distributions at all
_CONDA_SKIP = frozenset({"python", "pip"})


@dataclass
class Declared:
    origin: str  # project-relative path of the file (absolute when outside the project)
    requirements: list[Requirement] = field(default_factory=list)
    pip_options: list[str] = field(default_factory=list)
    ship: list[ShipFile] = field(default_factory=list)
    install_project: bool = False
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: every file read (absolute), for cache validation
    read: list[str] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    exact: bool = False  # a lock file: every line is already exact

    @property
    def names(self) -> frozenset[str]:
        return frozenset(r.name for r in self.requirements)

    def finish(self) -> Declared:
        seen: set[str] = set()
        unique: list[Requirement] = []
        for r in sorted(self.requirements, key=lambda r: (r.name, r.line)):
            if r.line not in seen:
                seen.add(r.line)
                unique.append(r)
        self.requirements = unique
        self.pip_options = sorted(set(self.pip_options))
        self.ship = sorted({s.target: s for s in self.ship}.values(), key=lambda s: s.target)
        return self


def find_declared(root: Path, files: Iterable[str], script: str = "") -> Path | None:
    """The nearest declared-dependencies file from ``script``'s folder up to the root (see :data:`DECLARED_FILES`).

    A per-folder ``requirements.txt`` in a monorepo is the one of that folder's scripts.
    """
    present = set(files)
    from runner.deps.lock import declared_folders

    for folder in declared_folders(script):
        for name in DECLARED_FILES:
            rel = f"{folder}/{name}" if folder else name
            if rel in present:
                if name == "pyproject.toml" and not _pyproject_declares(root / rel):
                    continue
                return root / rel
    return None


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise DependencyError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DependencyError(f"{path} is not valid TOML: {exc}", hint="fix the file or pass --requirements") from exc


def _pyproject_declares(path: Path) -> bool:
    try:
        data = _load_toml(path)
    except DependencyError:
        return False
    project = data.get("project")
    if isinstance(project, dict) and "dependencies" in project and "dependencies" not in project.get("dynamic", []):
        return True
    poetry = data.get("tool", {}).get("poetry", {})
    return isinstance(poetry, dict) and isinstance(poetry.get("dependencies"), dict)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def load_declared(path: Path, *, root: Path, marker_env: Mapping[str, str], installed: frozenset[str]) -> Declared:
    """Read one declared file (format by name).  ``installed`` helps map conda names."""
    if not path.is_file():
        raise UsageError(f"--requirements {path}: no such file")
    out = Declared(origin=_rel(path, root))
    name = path.name.lower()
    if name == "uv.lock":
        _uv_lock(path, root, marker_env, out)
    elif name == "poetry.lock":
        _poetry_lock(path, root, marker_env, out)
    elif name.endswith((".yml", ".yaml")):
        _environment_yml(path, root, installed, out)
    elif name == "pyproject.toml":
        _pyproject(path, root, out)
    else:
        _requirements_txt(path, root, out, depth=0)
    return out.finish()


def _drop(out: Declared, where: str, what: str, warning: str, reason: str) -> None:
    out.warnings.append(warning)
    out.dropped.append(Dropped(what=what, at=where, reason=reason))


# --------------------------------------------------------------------------- requirement lines


def _exact_version(spec: str) -> str | None:
    m = re.fullmatch(r"\s*===?\s*([^\s,;*]+)\s*", spec)
    return m.group(1) if m else None


def _add_line(text: str, *, base: Path, root: Path, out: Declared, where: str) -> None:
    """One requirement as written in a requirements file (or environment.yml pip list)."""
    body, _, _options = text.partition(" --")
    body = body.strip()
    if "://" in body or body.startswith((".", "/")) or _ARCHIVE.search(body.split(";")[0].strip()):
        _add_location(body, text, base=base, root=root, out=out, where=where)
        return
    from runner.deps.pin import parse_requirement  # packaging: only when a declared file is read

    req = parse_requirement(body)
    m = _NAME.match(text)
    if req is None or m is None:
        _drop(
            out,
            where,
            text.strip(),
            f"{where}: cannot read the requirement '{text.strip()}': skipped",
            "not a requirement pip can read",
        )
        return
    name = normalize(req.name)
    line = name + m.group(2).rstrip()
    if req.url:
        _add_location(req.url, line, base=base, root=root, out=out, where=where, name=name)
        return
    version = _exact_version(str(req.specifier)) if len(req.specifier) == 1 else None
    out.requirements.append(
        Requirement(
            name=name,
            version=version,
            line=line,
            source=PinSource.DECLARED,
            provenance=(Origin(PinSource.DECLARED, at=where, detail=text.strip()),),  # the line as written
        )
    )


def _add_location(
    location: str, line: str, *, base: Path, root: Path, out: Declared, where: str, name: str | None = None
) -> None:
    """A requirement given as a URL or a path."""
    egg = _EGG.search(location)
    if name is None:
        if egg:
            name = normalize(egg.group(1))
        else:
            base_name = location.split("#")[0].rstrip("/").rsplit("/", 1)[-1]
            w = _WHEEL_NAME.match(base_name)
            name = normalize(w.group(1)) if w and _ARCHIVE.search(base_name) else normalize(base_name.split(".")[0])
    parsed = urlparse(location)
    here = (Origin(PinSource.DECLARED, at=where),)
    if parsed.scheme in ("http", "https") or "+" in parsed.scheme:
        out.requirements.append(
            Requirement(name=name, version=None, line=line.strip(), source=PinSource.DECLARED, provenance=here)
        )
        return
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(location.split("#")[0].strip())
    if not path.is_absolute():
        path = (base / path).resolve()
    if path.resolve() == root.resolve():
        out.install_project = True
        return
    if path.is_file():
        out.ship.append(ShipFile(source=str(path), target=path.name))
        out.requirements.append(
            Requirement(
                name=name,
                version=None,
                line=f"{name} @ file://{SHIP_DIR}/{path.name}",
                source=PinSource.DECLARED,
                provenance=here,
            )
        )
        return
    _drop(
        out,
        where,
        location,
        f"{where}: {location} is a local folder or a missing file and cannot be installed in the image: skipped",
        "a local folder or a missing file",
    )


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    buffer = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        if raw.endswith("\\"):
            buffer += raw[:-1] + " "
            continue
        buffer += raw
        stripped = re.sub(r"(^|\s)#.*$", "", buffer).strip()
        buffer = ""
        if stripped:
            lines.append((start, stripped))
    return lines


def _requirements_txt(path: Path, root: Path, out: Declared, *, depth: int) -> None:
    if depth > 10:
        out.warnings.append(f"{_rel(path, root)}: -r nesting too deep: stopped")
        return
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        out.warnings.append(f"cannot read {_rel(path, root)}: {exc.strerror}")
        return
    out.read.append(str(path))
    for number, line in _logical_lines(text):
        where = f"{_rel(path, root)}:{number}"
        _requirement_or_option(line, base=path.parent, root=root, out=out, where=where, depth=depth)


def _editable_name(value: str) -> str:
    egg = _EGG.search(value)
    if egg:
        return normalize(egg.group(1))
    tail = value.split("#")[0].rstrip("/").rsplit("/", 1)[-1]
    return normalize(tail.split("@")[0].removesuffix(".git"))


def _requirement_or_option(line: str, *, base: Path, root: Path, out: Declared, where: str, depth: int) -> None:
    line = os.path.expandvars(line) if "${" in line else line
    if not line.startswith("-"):
        _add_line(line, base=base, root=root, out=out, where=where)
        return
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    option, value = words[0], " ".join(words[1:])
    if "=" in option and option.startswith("--"):
        option, _, value = option.partition("=")
    if option in ("-r", "--requirement"):
        _requirements_txt((base / value).resolve(), root, out, depth=depth + 1)
    elif option in ("-e", "--editable"):
        if "://" in value or value.startswith(("git+", "hg+", "svn+", "bzr+")):
            out.requirements.append(
                Requirement(
                    name=_editable_name(value),
                    version=None,
                    line=f"-e {value}",
                    source=PinSource.DECLARED,
                    provenance=(Origin(PinSource.DECLARED, at=where),),
                )
            )
        elif (base / value).resolve() == root.resolve():
            out.install_project = True
        else:
            _drop(
                out,
                where,
                line,
                f"{where}: editable folder {value} is not the project and cannot be installed in the image: skipped",
                "an editable folder outside the project",
            )
    elif option in _KEEP_OPTIONS:
        kept = _KEEP_OPTIONS[option]
        if kept == "--find-links" and "://" not in value:
            _drop(
                out,
                where,
                line,
                f"{where}: --find-links to the local folder {value} is not available in the image: dropped",
                "a local --find-links folder",
            )
        else:
            out.pip_options.append(kept if option in _FLAG_OPTIONS else f"{kept} {value}")
    elif option in ("-c", "--constraint"):
        _drop(
            out,
            where,
            line,
            f"{where}: constraints file {value} is not applied in the image: dropped",
            "a constraints file",
        )
    else:
        _drop(
            out,
            where,
            line,
            f"{where}: pip option {option} is not supported in a lock: dropped",
            "an unsupported pip option",
        )


# --------------------------------------------------------------------------- pyproject / environment.yml


def _poetry_constraint(spec: str) -> str:
    spec = spec.strip()
    if spec in ("*", ""):
        return ""
    parts: list[str] = []
    for piece in spec.split(","):
        piece = piece.strip()
        m = re.fullmatch(r"([\^~])\s*(\d+(?:\.\d+)*)", piece)
        if m:
            nums = [int(x) for x in m.group(2).split(".")]
            if m.group(1) == "^":
                idx = next((i for i, n in enumerate(nums) if n != 0), len(nums) - 1)
            else:
                idx = 0 if len(nums) == 1 else 1
            upper = nums[: idx + 1]
            upper[-1] += 1
            parts.append(f">={m.group(2)},<{'.'.join(map(str, upper))}")
        elif re.fullmatch(r"\d+(\.\d+)*(\.\*)?", piece):
            parts.append(f"=={piece}")
        else:
            parts.append(piece.replace(" ", ""))
    return ",".join(parts)


def _pyproject(path: Path, root: Path, out: Declared) -> None:
    data = _load_toml(path)
    out.read.append(str(path))
    where = _rel(path, root)
    project = data.get("project", {})
    if isinstance(project, dict) and "dependencies" in project and "dependencies" not in project.get("dynamic", []):
        for text in project.get("dependencies") or []:
            _add_line(str(text), base=path.parent, root=root, out=out, where=where)
        return
    poetry = data.get("tool", {}).get("poetry", {}).get("dependencies", {})
    for raw_name, spec in sorted(poetry.items()):
        if raw_name.lower() == "python":
            continue
        name = normalize(raw_name)
        if isinstance(spec, str):
            _add_line(f"{name}{_poetry_constraint(spec)}", base=path.parent, root=root, out=out, where=where)
        elif isinstance(spec, dict):
            extras = f"[{','.join(spec['extras'])}]" if spec.get("extras") else ""
            marker = f"; {spec['markers']}" if spec.get("markers") else ""
            if spec.get("git"):
                ref = spec.get("rev") or spec.get("tag") or spec.get("branch")
                line = f"{name}{extras} @ git+{spec['git']}" + (f"@{ref}" if ref else "")
                out.requirements.append(
                    Requirement(name=name, version=None, line=line + marker, source=PinSource.DECLARED)
                )
            elif spec.get("path") or spec.get("url"):
                _add_location(
                    str(spec.get("url") or spec.get("path")),
                    name,
                    base=path.parent,
                    root=root,
                    out=out,
                    where=where,
                    name=name,
                )
            else:
                _add_line(
                    f"{name}{extras}{_poetry_constraint(str(spec.get('version', '')))}{marker}",
                    base=path.parent,
                    root=root,
                    out=out,
                    where=where,
                )


def _conda_spec(spec: str) -> tuple[str, str]:
    spec = spec.split("::", 1)[-1].strip()
    m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$", spec)
    if not m:
        return spec, ""
    name, rest = m.group(1), m.group(2).strip()
    if not rest:
        return name, ""
    if rest.startswith("==") or rest[0] in "<>!~":
        return name, rest.replace(" ", "")
    if rest.startswith("="):
        version = rest[1:].split("=", 1)[0].strip()
    else:
        version = rest.split()[0]
    version = version.rstrip("*").rstrip(".")
    return name, f"=={version}.*" if version else ""


def _environment_yml(path: Path, root: Path, installed: frozenset[str], out: Declared) -> None:
    import yaml  # runner dependency; only needed for this format

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, yaml.YAMLError) as exc:
        raise DependencyError(f"cannot read {path}: {exc}", hint="fix the file or pass --requirements") from exc
    out.read.append(str(path))
    where = _rel(path, root)
    deps = data.get("dependencies", []) if isinstance(data, dict) else []
    skipped: list[str] = []
    for dep in deps or []:
        if isinstance(dep, dict):
            for line in dep.get("pip", []) or []:
                _requirement_or_option(
                    str(line).strip(), base=path.parent, root=root, out=out, where=f"{where} (pip)", depth=0
                )
            continue
        conda_name, spec = _conda_spec(str(dep))
        key = normalize(conda_name)
        if key in _CONDA_SKIP:
            continue
        pip_name = normalize(CONDA_TO_PYPI.get(key, key))
        if pip_name in installed or key in CONDA_TO_PYPI:
            out.requirements.append(
                Requirement(
                    name=pip_name,
                    version=_exact_version(spec) if spec.startswith("==") and not spec.endswith("*") else None,
                    line=f"{pip_name}{spec}",
                    source=PinSource.DECLARED,
                )
            )
        else:
            skipped.append(key)
    if skipped:
        out.notes.append(
            f"{where}: conda packages with no installed pip distribution left out: {', '.join(sorted(skipped))}"
        )


# --------------------------------------------------------------------------- lock files


def _marker_ok(marker: str | None, env: Mapping[str, str], extras: Iterable[str] = ()) -> bool:
    if not marker:
        return True
    from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName

    try:
        m = Marker(marker)
        return any(m.evaluate({**env, "extra": e}) for e in ("", *extras))
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return True


def _pinned(name: str, version: str) -> Requirement:
    return Requirement(name=name, version=version, line=f"{name}=={version}", source=PinSource.DECLARED)


def _uv_lock(path: Path, root: Path, env: Mapping[str, str], out: Declared) -> None:
    data = _load_toml(path)
    out.read.append(str(path))
    out.exact = True
    packages = [p for p in data.get("package", []) if isinstance(p, dict)]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for p in packages:
        by_name.setdefault(normalize(str(p.get("name", ""))), []).append(p)

    def is_root(p: dict[str, Any]) -> bool:
        src = p.get("source", {})
        return isinstance(src, dict) and (src.get("editable") == "." or src.get("virtual") == ".")

    def pick(name: str, version: str | None) -> dict[str, Any] | None:
        options = by_name.get(name, [])
        if version:
            options = [p for p in options if p.get("version") == version] or options
        for p in options:
            markers = p.get("resolution-markers")
            if not markers or any(_marker_ok(m, env) for m in markers):
                return p
        return options[0] if options else None

    roots = [p for p in packages if is_root(p)]
    if not roots:
        out.warnings.append(f"{out.origin}: no project package (source '.') found: nothing to install")
    queue: list[tuple[dict[str, Any], frozenset[str]]] = [(p, frozenset()) for p in roots]
    done: dict[int, frozenset[str]] = {}
    chosen: dict[str, dict[str, Any]] = {}
    while queue:
        pkg, extras = queue.pop()
        key = id(pkg)
        if key in done and extras <= done[key]:
            continue
        done[key] = done.get(key, frozenset()) | extras
        chosen[normalize(str(pkg.get("name", "")))] = pkg
        deps = list(pkg.get("dependencies", []))
        for extra in sorted(done[key]):
            deps += pkg.get("optional-dependencies", {}).get(extra, [])
        for dep in deps:
            if not isinstance(dep, dict) or not _marker_ok(dep.get("marker"), env):
                continue
            target = pick(normalize(str(dep.get("name", ""))), dep.get("version"))
            if target is not None:
                queue.append((target, frozenset(dep.get("extra", []))))
    for name, pkg in sorted(chosen.items()):
        src = pkg.get("source", {}) if isinstance(pkg.get("source"), dict) else {}
        version = str(pkg.get("version", ""))
        if is_root(pkg):
            if src.get("editable") == ".":
                out.install_project = True
            continue
        if "git" in src:
            url, _, commit = str(src["git"]).partition("#")
            url = url.split("?", 1)[0]
            out.requirements.append(
                Requirement(name=name, version=None, line=f"{name} @ git+{url}@{commit}", source=PinSource.DECLARED)
            )
        elif "url" in src:
            out.requirements.append(
                Requirement(name=name, version=None, line=f"{name} @ {src['url']}", source=PinSource.DECLARED)
            )
        elif "path" in src or "directory" in src or "editable" in src:
            local = str(src.get("path") or src.get("directory") or src.get("editable"))
            _add_location(local, name, base=path.parent, root=root, out=out, where=out.origin, name=name)
        else:
            registry = src.get("registry")
            if registry and "pypi.org" not in str(registry):
                out.pip_options.append(f"--extra-index-url {registry}")
            out.requirements.append(_pinned(name, version))


def _poetry_lock(path: Path, root: Path, env: Mapping[str, str], out: Declared) -> None:
    data = _load_toml(path)
    out.read.append(str(path))
    out.exact = True
    packages = {normalize(str(p.get("name", ""))): p for p in data.get("package", []) if isinstance(p, dict)}
    roots: dict[str, frozenset[str]] = {}
    pyproject = path.parent / "pyproject.toml"
    if pyproject.is_file():
        pp = _load_toml(pyproject)
        out.read.append(str(pyproject))
        for raw_name, spec in (pp.get("tool", {}).get("poetry", {}).get("dependencies", {}) or {}).items():
            if raw_name.lower() == "python":
                continue
            if isinstance(spec, dict) and (spec.get("optional") or not _marker_ok(spec.get("markers"), env)):
                continue
            extras = frozenset(spec.get("extras", [])) if isinstance(spec, dict) else frozenset()
            roots[normalize(raw_name)] = extras
        from runner.deps.pin import parse_requirement

        for text in (pp.get("project", {}) or {}).get("dependencies", []) or []:
            req = parse_requirement(str(text))
            if req is not None and _marker_ok(str(req.marker) if req.marker else None, env):
                roots[normalize(req.name)] = frozenset(req.extras)
    if not roots:
        for name, p in packages.items():
            groups = p.get("groups") or [p.get("category", "main")]
            if "main" in groups and not p.get("optional"):
                roots[name] = frozenset()
    queue = sorted(roots.items())
    chosen: dict[str, frozenset[str]] = {}
    while queue:
        name, extras = queue.pop()
        if name in chosen and extras <= chosen[name]:
            continue
        chosen[name] = chosen.get(name, frozenset()) | extras
        pkg = packages.get(name)
        if pkg is None:
            out.warnings.append(f"{out.origin}: {name} is required but not in the lock file: skipped")
            continue
        wanted_optional: set[str] = set()
        for extra in chosen[name]:
            for item in pkg.get("extras", {}).get(extra, []):
                wanted_optional.add(normalize(re.split(r"[\s(\[<>=!~;]", str(item), maxsplit=1)[0]))
        for dep_name, spec in (pkg.get("dependencies") or {}).items():
            dep = normalize(dep_name)
            specs = spec if isinstance(spec, list) else [spec]
            for s in specs:
                if isinstance(s, dict):
                    if s.get("optional") and dep not in wanted_optional:
                        continue
                    if not _marker_ok(s.get("markers"), env):
                        continue
                    queue.append((dep, frozenset(s.get("extras", []))))
                else:
                    queue.append((dep, frozenset()))
                break
    for name in sorted(chosen):
        pkg = packages.get(name)
        if pkg is None:
            continue
        src = pkg.get("source", {}) or {}
        version = str(pkg.get("version", ""))
        kind = src.get("type")
        if kind == "git":
            ref = src.get("resolved_reference") or src.get("reference")
            out.requirements.append(
                Requirement(
                    name=name, version=None, line=f"{name} @ git+{src.get('url')}@{ref}", source=PinSource.DECLARED
                )
            )
        elif kind == "url":
            out.requirements.append(
                Requirement(name=name, version=None, line=f"{name} @ {src.get('url')}", source=PinSource.DECLARED)
            )
        elif kind in ("file", "directory"):
            _add_location(str(src.get("url")), name, base=path.parent, root=root, out=out, where=out.origin, name=name)
        else:
            if kind == "legacy" and src.get("url"):
                out.pip_options.append(f"--extra-index-url {src['url']}")
            out.requirements.append(_pinned(name, version))
