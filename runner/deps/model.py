"""Data returned by the dependency stage (inspect -> pin).  Pure data, no I/O.

The dependency stage turns a project into a :class:`Lock`: the exact set of
distributions the image installs, each pinned, plus what was seen on the way
(imports, their classification, warnings).  ``Lock.text()`` is the
``requirements.lock`` the image build installs, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

#: where shipped wheel files are in the image (the build copies ``Lock.ship`` there)
SHIP_DIR = "/runner-deps"


class ImportKind(str, Enum):
    STDLIB = "stdlib"
    LOCAL = "local"  # resolves to a module/package of the project on the script's sys.path
    THIRD_PARTY = "third_party"  # mapped to an installed distribution
    MISSING = "missing"  # third-party name not installed locally
    #: ``import runner`` with no ``runner`` of the project's own: runner's in-container runtime
    #: (``runner/runtime``) provides it; never pinned (runner and its dependencies stay out)
    RUNNER = "runner"


@dataclass(frozen=True)
class ImportSite:
    """One import statement: which module, where, and whether it is guarded."""

    module: str  # full dotted name as written (``google.protobuf.message``)
    file: str  # path relative to the project root, POSIX separators
    line: int
    guarded: bool = False  # under try/except ImportError (or a broader except)
    lazy: bool = False  # inside a function/class body or an ``if`` block
    #: ``from X import a, b``: the imported names (``X.a`` may be a submodule: ``from google import protobuf``)
    names: tuple[str, ...] = ()
    #: notebook cell number (1-based) for ``.ipynb`` files, 0 for Python files
    cell: int = 0


@dataclass(frozen=True)
class ImportInfo:
    """A top-level import name with every place it is imported and what it maps to."""

    name: str  # top-level name (``yaml``), or dotted where the mapping needed it (``google.protobuf``)
    kind: ImportKind
    distributions: tuple[str, ...] = ()  # normalised distribution names it maps to
    sites: tuple[ImportSite, ...] = ()


class PinSource(str, Enum):
    IMPORT = "import"  # directly imported, version from the local install
    TRANSITIVE = "transitive"  # needed by an imported distribution, version from the local install
    DECLARED = "declared"  # from a requirements/pyproject/lock file in the project
    #: not required by anything, but installed locally and imported by (or named in an extra of) an imported distribution
    OPTIONAL = "optional"


@dataclass(frozen=True)
class Origin:
    """One reason a lock line is there (a line may have several: imported *and* declared)."""

    kind: PinSource
    at: str = ""  # ``file:line`` of the import or the declared line ("" for transitive/optional)
    via: str = ""  # the distribution that brought it (transitive via X, optional of X)
    detail: str = ""  # the import name, the extra, or where X's code imports it

    def text(self) -> str:
        """Short human form: ``import yaml at train.py:3``, ``transitive via scipy``..."""
        if self.kind is PinSource.IMPORT:
            return f"import {self.detail} at {self.at}" if self.at else f"import {self.detail}"
        if self.kind is PinSource.DECLARED:
            return f"declared at {self.at}"
        if self.kind is PinSource.TRANSITIVE:
            return f"transitive via {self.via}"
        return f"optional of {self.via} ({self.detail})" if self.detail else f"optional of {self.via}"


@dataclass(frozen=True)
class Dropped:
    """A declared line or an import that is *not* in the lock, and why."""

    what: str  # the declared line as written, or the import name
    at: str  # ``file:line``
    reason: str
    kind: str = "declared"  # "declared" or "import"


@dataclass(frozen=True)
class Requirement:
    """One line of the lock."""

    name: str  # normalised distribution name (PEP 503)
    version: str | None  # None when the line is a URL/file without a version
    line: str  # exactly as written into requirements.lock
    source: PinSource
    imports: tuple[str, ...] = ()  # import names that brought it in (empty for transitive)
    provenance: tuple[Origin, ...] = ()  # every reason it is in the lock


@dataclass(frozen=True)
class ShipFile:
    """A local file the build needs (a wheel installed from disk), copied into the build context."""

    source: str  # absolute path on this machine
    target: str  # path inside the build context's dependency folder, referenced by ``Requirement.line``


@dataclass(frozen=True)
class Lock:
    requirements: tuple[Requirement, ...]  # sorted by name
    imports: tuple[ImportInfo, ...] = ()  # sorted by name
    warnings: tuple[str, ...] = ()  # one line each, for the user
    ship: tuple[ShipFile, ...] = ()
    #: where the set came from: "scan", or the declared file's project-relative path
    origin: str = "scan"
    #: the project itself is an editable install: ``pip install --no-deps -e .`` after the code is copied
    install_project: bool = False
    #: the interpreter whose environment was used for the mapping, and its version (``3.11.7``)
    python: str = ""
    python_version: str = ""
    notes: tuple[str, ...] = field(default=())  # informational (guarded import left out, ...)
    #: pip options the requirements need, written first in ``requirements.lock``
    #: (``--extra-index-url https://download.pytorch.org/whl/cpu`` for ``torch==2.3.0+cpu``)
    pip_options: tuple[str, ...] = ()
    #: declared lines and imports left out of the lock, each with its reason
    dropped: tuple[Dropped, ...] = ()
    #: (distribution, its Requires-Python) for locked distributions pinned from the local
    #: install, sorted: what the base image's Python is checked against before a build
    requires_python: tuple[tuple[str, str], ...] = ()

    @property
    def uses_runtime(self) -> bool:
        """The project imports ``runner`` and has no module of that name: ship the runtime."""
        return any(i.kind is ImportKind.RUNNER for i in self.imports)

    def text(self) -> str:
        """The ``requirements.lock`` content: deterministic, one requirement per line."""
        return "".join(f"{o}\n" for o in self.pip_options) + "".join(f"{r.line}\n" for r in self.requirements)
