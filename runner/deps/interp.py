"""Ask the person's own interpreter what is installed: one subprocess, JSON back.

runner may live in a different environment (pipx, its own venv) from the code it
runs, so nothing here looks at runner's own ``sys.path``: the mapping from import
names to distributions, their versions and requirements all come from the probe
script below, run by the user's ``python``.

Why no ``-I``: isolated mode also drops the user site-packages (``pip install
--user``) and ``PYTHONPATH``, both of which the person's ``python train.py`` sees.
Instead the probe runs with the user's environment and drops only the current
folder from ``sys.path`` (the project's own modules are not installed packages).

Markers (``Requires-Dist: x; sys_platform == "win32"``) are *not* evaluated in the
probe: the user's interpreter may lack ``packaging``, and a home-made evaluator
would drift from the standard.  The probe returns the raw requirement strings and
its own marker environment (python_version, implementation...); runner evaluates
them with ``packaging`` against that environment.  That is the target's answer,
not runner's: marker evaluation is a pure function of (marker, environment, extra).
The platform keys are then set to Linux, because the image is Linux whatever the
person's machine is (a ``pywin32`` requirement of a Windows install must not reach
the image).

The probe's Python is kept to a syntax old interpreters can parse, so that a
Python 2 or 3.7 ``python`` gets a clear "unsupported" message rather than a
traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import DependencyError, UsageError

__all__ = [
    "PROBE_SCRIPT",
    "Distribution",
    "Environment",
    "resolve_python",
    "fingerprint",
    "stamps_valid",
    "run_probe",
    "parse_probe",
    "normalize",
]

# Environment variables that change what ``python`` is or what it can import.
FINGERPRINT_VARS = (
    "PYENV_VERSION",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "PYTHONSAFEPATH",
)

PROBE_SCRIPT = r"""
import sys, os, json
if sys.version_info < (3, 8):
    sys.stdout.write(json.dumps({"error": "Python %d.%d is too old: runner needs Python 3.8 or newer" % sys.version_info[:2]}))
    sys.exit(0)
while sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]
import platform, re, sysconfig, site
import importlib.metadata as md

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MOD_SUFFIX = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z0-9_-]+)*\.(py|pyc|so|pyd)$")

def mtime(p):
    try:
        return os.stat(p).st_mtime_ns
    except OSError:
        return None

def stdlib_names():
    names = getattr(sys, "stdlib_module_names", None)
    if names is not None:
        return sorted(names)
    found = set(sys.builtin_module_names)
    paths = sysconfig.get_paths()
    for d in (paths.get("stdlib"), paths.get("platstdlib"), os.path.join(paths.get("stdlib") or "", "lib-dynload")):
        if not d or not os.path.isdir(d):
            continue
        for n in os.listdir(d):
            if n in ("site-packages", "dist-packages"):
                continue
            m = MOD_SUFFIX.match(n)
            if m:
                found.add(m.group(1))
            elif IDENT.match(n) and os.path.isdir(os.path.join(d, n)):
                found.add(n)
    return sorted(found)

def marker_env():
    impl = sys.implementation
    iv = impl.version
    ver = "%d.%d.%d" % (iv.major, iv.minor, iv.micro)
    if iv.releaselevel != "final":
        ver += iv.releaselevel[0] + str(iv.serial)
    return {
        "implementation_name": impl.name,
        "implementation_version": ver,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }

def record_paths(dist):
    text = None
    try:
        text = dist.read_text("RECORD")
    except Exception:
        text = None
    if text:
        return [line.rsplit(",", 2)[0] for line in text.splitlines() if line]
    try:
        files = dist.files or []
    except Exception:
        files = []
    return [str(f).replace(os.sep, "/") for f in files]

def module_parts(path):
    # "google/protobuf/message.py" -> ["google", "protobuf", "message"]; None when not importable
    if path.startswith(("..", "/")) or ".dist-info/" in path or ".egg-info/" in path or ".data/" in path:
        return None
    parts = path.split("/")
    last = parts[-1]
    if parts[0] == "__pycache__" or "__pycache__" in parts:
        return None
    m = MOD_SUFFIX.match(last)
    if m:
        stem = m.group(1)
        parts = parts[:-1] + ([] if stem == "__init__" else [stem])
    else:
        parts = parts[:-1]
    if not parts or not all(IDENT.match(p) for p in parts):
        return None
    return parts

def pth_modules(location, paths):
    # legacy editable installs / hatch: a .pth file adding a source folder
    out = set()
    for p in paths:
        if not p.endswith(".pth") or "/" in p:
            continue
        try:
            with open(os.path.join(location, p)) as fh:
                lines = fh.read().splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.strip()
            if not line or line.startswith(("#", "import ", "import\t")) or not os.path.isdir(line):
                continue
            if os.path.realpath(line) in SITE_DIRS:
                continue
            for n in os.listdir(line):
                full = os.path.join(line, n)
                m = MOD_SUFFIX.match(n)
                if m and os.path.isfile(full):
                    out.add(m.group(1))
                elif IDENT.match(n) and os.path.isfile(os.path.join(full, "__init__.py")):
                    out.add(n)
    return out

SITE_DIRS = set(os.path.realpath(p) for p in sys.path if p)
stamps = []
seen_paths = set()
user_site = None
try:
    if site.ENABLE_USER_SITE:
        user_site = site.getusersitepackages()
except Exception:
    user_site = None
for p in list(sys.path) + ([user_site] if user_site else []):
    if p and p not in seen_paths:
        seen_paths.add(p)
        stamps.append([os.path.abspath(p), mtime(p)])

dists = []
seen = set()
for dist in md.distributions():
    try:
        name = dist.metadata["Name"]
    except Exception:
        name = None
    if not name:
        continue
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        continue  # shadowed by an earlier sys.path entry
    seen.add(key)
    paths = record_paths(dist)
    tops = set()
    dotted = {}
    for p in paths:
        parts = module_parts(p)
        if parts:
            tops.add(parts[0])
            for depth in (2, 3):
                if len(parts) >= depth:
                    dotted[".".join(parts[:depth])] = 1
    try:
        top_txt = dist.read_text("top_level.txt")
    except Exception:
        top_txt = None
    for line in (top_txt or "").split():
        line = line.strip().replace("/", ".")
        if line and all(IDENT.match(x) for x in line.split(".")):
            tops.add(line.split(".")[0])
    location = ""
    try:
        location = str(dist.locate_file(""))
    except Exception:
        pass
    if location:
        tops.update(pth_modules(location, paths))
    def read(n):
        try:
            return dist.read_text(n)
        except Exception:
            return None
    meta = getattr(dist, "_path", None)  # the .dist-info folder (PathDistribution)
    record = os.path.join(str(meta), "RECORD") if meta is not None else ""
    try:
        extras = dist.metadata.get_all("Provides-Extra") or []
    except Exception:
        extras = []
    try:
        requires_python = dist.metadata["Requires-Python"]
    except Exception:
        requires_python = None
    dists.append({
        "name": name,
        "record": record if record and os.path.isfile(record) else "",
        "extras": sorted(set(extras)),
        "version": dist.version or "",
        "requires_python": requires_python or None,
        "requires": list(dist.requires or []),
        "top": sorted(tops),
        "dotted": sorted(dotted),
        "direct_url": read("direct_url.json"),
        "installer": (read("INSTALLER") or "").strip() or None,
        "location": location,
    })

# Dotted names are only needed where a top-level name is shared (google, azure...).
owners = {}
for d in dists:
    for t in d["top"]:
        owners[t] = owners.get(t, 0) + 1
for d in dists:
    d["dotted"] = [x for x in d["dotted"] if owners.get(x.split(".")[0], 0) > 1]

sys.stdout.write(json.dumps({
    "executable": os.path.realpath(sys.executable),
    "version": platform.python_version(),
    "env": marker_env(),
    "stdlib": stdlib_names(),
    "builtin": sorted(sys.builtin_module_names),
    "stamps": stamps,
    "dists": dists,
}, sort_keys=True))
"""


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name."""
    out = []
    prev_sep = False
    for ch in name.strip().lower():
        if ch in "-_.":
            if not prev_sep:
                out.append("-")
            prev_sep = True
        else:
            out.append(ch)
            prev_sep = False
    return "".join(out)


@dataclass(frozen=True)
class Distribution:
    name: str  # normalised
    display_name: str
    version: str
    requires: tuple[str, ...]
    top: tuple[str, ...]
    dotted: tuple[str, ...]
    direct_url: str | None = None
    installer: str | None = None
    location: str = ""
    #: absolute path of its RECORD ("" when it has none): the files whose imports ``optional`` scans
    record: str = ""
    extras: tuple[str, ...] = ()  # Provides-Extra
    requires_python: str | None = None  # the installed version's Requires-Python, as written


@dataclass(frozen=True)
class Environment:
    """What the user's interpreter reported, plus the derived import-name index."""

    python: str  # the command that was probed (as given / found on PATH)
    executable: str  # the real interpreter behind it
    version: str
    marker_env: Mapping[str, str]
    stdlib: frozenset[str]
    builtin: frozenset[str]
    stamps: tuple[tuple[str, int | None], ...]
    dists: Mapping[str, Distribution]
    by_top: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    by_dotted: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def resolve_python(python: str | None) -> str:
    """The interpreter command to probe: ``--python`` if given, else ``python`` on PATH."""
    if python:
        if os.sep in python or (os.altsep and os.altsep in python):
            if not os.path.exists(python):
                raise UsageError(f"--python {python}: no such file", hint="give the path of a Python interpreter")
            return os.path.abspath(python)
        found = shutil.which(python)
        if found is None:
            raise UsageError(f"--python {python}: not found on PATH", hint="give the path of a Python interpreter")
        return found
    found = shutil.which("python") or shutil.which("python3")
    if found is None:
        raise DependencyError(
            "no python on PATH to read the installed packages from",
            hint="activate the project's environment or pass --python PATH",
        )
    return found


def _python_version_file() -> list[Any]:
    # pyenv (and uv) pick the interpreter from the nearest .python-version upwards.
    here = Path.cwd()
    for folder in (here, *here.parents):
        candidate = folder / ".python-version"
        try:
            return [str(candidate), candidate.stat().st_mtime_ns]
        except OSError:
            continue
    return []


def fingerprint(python: str) -> dict[str, Any]:
    """Cheap identity of "which interpreter and environment ``python`` means right now"."""
    try:
        python_mtime: int | None = os.stat(python).st_mtime_ns
    except OSError:
        python_mtime = None
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    try:
        pyenv_global: int | None = os.stat(os.path.join(pyenv_root, "version")).st_mtime_ns
    except OSError:
        pyenv_global = None
    return {
        "python": python,
        "python_mtime": python_mtime,
        "vars": {k: os.environ[k] for k in FINGERPRINT_VARS if k in os.environ},
        "python_version_file": _python_version_file(),
        "pyenv_global": pyenv_global,
    }


def stamps_valid(stamps: tuple[tuple[str, int | None], ...] | list[list[Any]]) -> bool:
    """Every sys.path folder the probe saw is unchanged (installs change a folder's mtime)."""
    for path, mtime in stamps:
        try:
            now: int | None = os.stat(path).st_mtime_ns
        except OSError:
            now = None
        if now != mtime:
            return False
    return True


def run_probe(python: str, *, timeout: float = 60.0) -> dict[str, Any]:
    """Run the probe in ``python`` and return its JSON (the only subprocess of the stage)."""
    try:
        proc = subprocess.run(
            [python, "-c", PROBE_SCRIPT],
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        raise DependencyError(f"cannot run {python}: {exc.strerror}", hint="pass --python PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise DependencyError(f"{python} did not answer within {timeout:.0f}s while listing its packages") from exc
    except OSError as exc:
        raise DependencyError(f"cannot run {python}: {exc}", hint="pass --python PATH") from exc
    try:
        data = json.loads(proc.stdout.decode("utf-8", errors="replace"))
    except ValueError:
        tail = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
        reason = tail[-1] if tail else f"exit code {proc.returncode}"
        raise DependencyError(
            f"{python} could not list its installed packages: {reason}",
            hint="check that it is a working Python 3.8+ or pass --python PATH",
            detail="\n".join(tail[-20:]) or None,
        ) from None
    if not isinstance(data, dict):
        raise DependencyError(f"{python} returned an unexpected answer while listing its packages")
    if "error" in data:
        raise DependencyError(f"{python}: {data['error']}", hint="pass --python PATH to a newer interpreter")
    return data


def parse_probe(python: str, data: Mapping[str, Any]) -> Environment:
    """Build the :class:`Environment` (and its import-name index) from probe JSON."""
    dists: dict[str, Distribution] = {}
    for raw in data.get("dists", []):
        dist = Distribution(
            name=normalize(str(raw["name"])),
            display_name=str(raw["name"]),
            version=str(raw.get("version") or ""),
            requires=tuple(str(r) for r in raw.get("requires") or ()),
            top=tuple(str(t) for t in raw.get("top") or ()),
            dotted=tuple(str(t) for t in raw.get("dotted") or ()),
            direct_url=raw.get("direct_url"),
            installer=raw.get("installer"),
            location=str(raw.get("location") or ""),
            record=str(raw.get("record") or ""),
            extras=tuple(str(e) for e in raw.get("extras") or ()),
            requires_python=str(raw["requires_python"]).strip() or None if raw.get("requires_python") else None,
        )
        dists.setdefault(dist.name, dist)
    by_top: dict[str, set[str]] = {}
    by_dotted: dict[str, set[str]] = {}
    for dist in dists.values():
        for top in dist.top:
            by_top.setdefault(top, set()).add(dist.name)
        for dotted in dist.dotted:
            by_dotted.setdefault(dotted, set()).add(dist.name)
    return Environment(
        python=python,
        executable=str(data.get("executable", python)),
        version=str(data.get("version", "")),
        marker_env={str(k): str(v) for k, v in dict(data.get("env", {})).items()},
        stdlib=frozenset(str(s) for s in data.get("stdlib", ())),
        builtin=frozenset(str(s) for s in data.get("builtin", ())),
        stamps=tuple((str(p), None if m is None else int(m)) for p, m in data.get("stamps", ())),
        dists=dists,
        by_top={k: tuple(sorted(v)) for k, v in by_top.items()},
        by_dotted={k: tuple(sorted(v)) for k, v in by_dotted.items()},
    )
