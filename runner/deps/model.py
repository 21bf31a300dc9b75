"""Data returned by the dependency stage (inspect -> pin).  Pure data, no I/O.

The dependency stage turns a project into a :class:`Lock`: the exact set of
distributions the image installs, each pinned, plus what was seen on the way
(imports, their classification, warnings).  ``Lock.text()`` is the
``requirements.lock`` the image build installs, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


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
    INDEX = "index"  # imported, not installed locally: newest version on the package index
    DECLARED = "declared"  # from a requirements/pyproject/lock file in the project


@dataclass(frozen=True)
class Requirement:
    """One line of the lock."""

    name: str  # normalised distribution name (PEP 503)
    version: str | None  # None when the line is a URL/file without a version
    line: str  # exactly as written into requirements.lock
    source: PinSource
    imports: tuple[str, ...] = ()  # import names that brought it in (empty for transitive)


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
