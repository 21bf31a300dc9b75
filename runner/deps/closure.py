"""The import closure of an entry script: the project's own files it can import.

Starting from the script, every import that Python would resolve to a local file is
followed: absolute imports against the folders on the script's ``sys.path`` (the
script's folder, the folders it adds to ``sys.path`` with a literal or an
``os.path``/``pathlib`` built path, then the project root and its ``src/``, the
way ``python -m`` and editable layouts see them) and, as a last resort, the
importing file's own folder; relative imports against the importing file's package.  A
package's ``__init__.py`` comes along with any of its modules.  Files that are not
reached (a ``docs/conf.py``, sibling projects, tools) are not scanned at all.

The walk also collects the folders added to ``sys.path`` and the relative paths the
code names that exist locally (``../data/train.txt``): what the build context must
hold for the script to run as it does locally (``runner.project.choose_root``).

Reads only folder listings (each folder once) and, through ``scan``, the per-file
scan results (which the caller caches by stat).  A file that does not parse is the
caller's warning; its imports are simply not followed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Closure", "FileFacts", "Origin", "import_closure"]

_SOURCE_SUFFIXES = (".py", ".pyw")


@dataclass(frozen=True)
class FileFacts:
    """What the closure needs of one scanned file (built from ``runner.deps.scan.FileScan``
    or from the scan cache, without importing the parser)."""

    #: absolute imports: (dotted module, names of ``from X import names``)
    imports: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: relative imports: (level, dotted module or "", names)
    relative: tuple[tuple[int, str, tuple[str, ...]], ...] = ()
    #: ``sys.path`` additions and paths named, as ``runner.deps.scan.PathRef``
    path_adds: tuple[tuple[str, str, int], ...] = ()
    paths: tuple[tuple[str, str, int], ...] = ()


#: (absolute path, absolute file that names it, line)
Origin = tuple[str, str, int]


@dataclass(frozen=True)
class Closure:
    #: absolute paths of the local source files the script can import (the script first, then sorted)
    files: tuple[str, ...]
    #: folders added to ``sys.path`` that exist: (absolute folder, file that adds it, line)
    path_dirs: tuple[Origin, ...] = ()
    #: paths the code names that leave their folder and exist: (absolute path, file, line)
    reached: tuple[Origin, ...] = ()
    #: folders searched for absolute imports, in order (absolute)
    search: tuple[str, ...] = ()
    #: what the result depends on besides the files' content: every folder listed and every
    #: path whose existence was tested (a cache of the closure checks them for changes)
    listed: tuple[tuple[str, int | None], ...] = ()  # (folder, its mtime in ns before it was listed)
    tested: tuple[str, ...] = ()


@dataclass
class _Walk:
    scan: Callable[[str], FileFacts | None]
    cwd: str
    listings: dict[str, frozenset[str] | None] = field(default_factory=dict)
    files: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    queue: list[str] = field(default_factory=list)
    memo: dict[tuple[str, tuple[str, ...], tuple[str, ...]], tuple[bool, tuple[str, ...]]] = field(default_factory=dict)
    tested: dict[str, None] = field(default_factory=dict)
    stamps: dict[str, int | None] = field(default_factory=dict)

    def entries(self, folder: str) -> frozenset[str] | None:
        """Names in ``folder`` (None: not a readable folder), each folder listed once."""
        if folder not in self.listings:
            try:
                self.stamps[folder] = os.stat(folder).st_mtime_ns  # before the listing: see Closure.listed
                self.listings[folder] = frozenset(os.listdir(folder))
            except OSError:
                self.stamps[folder] = None  # not a folder (or unreadable)
                self.listings[folder] = None
        return self.listings[folder]

    def add(self, path: str) -> None:
        if path not in self.files:
            self.files[path] = None
            self.queue.append(path)

    def module_in(self, folder: str, name: str) -> tuple[str, str | None] | None:
        """``name`` in ``folder``: ("module", file), ("package", __init__), ("namespace", None), or None."""
        entries = self.entries(folder)
        if entries is None:
            return None
        for suffix in _SOURCE_SUFFIXES:
            if name + suffix in entries:
                return "module", f"{folder}/{name}{suffix}"
        if name in entries:
            sub = self.entries(f"{folder}/{name}")
            if sub is not None:
                if "__init__.py" in sub:
                    return "package", f"{folder}/{name}/__init__.py"
                return "namespace", None
        return None

    def follow(self, folder: str, dotted: tuple[str, ...], names: tuple[str, ...]) -> bool:
        """Add what ``import a.b.c`` (then ``from a.b.c import names``) runs, starting in ``folder``.

        True when the first part is found there as a module or regular package.  Memoised:
        the same import from another file costs a lookup.
        """
        key = (folder, dotted, names)
        hit = self.memo.get(key)
        if hit is None:
            added: list[str] = []
            found = self._follow(folder, dotted, names, added)
            hit = self.memo[key] = (found, tuple(added))
        for path in hit[1]:
            self.add(path)
        return hit[0]

    def _follow(self, folder: str, dotted: tuple[str, ...], names: tuple[str, ...], added: list[str]) -> bool:
        found_regular = False
        here = folder
        for depth, part in enumerate(dotted):
            if not part.isidentifier():
                return found_regular
            hit = self.module_in(here, part)
            if hit is None:
                return found_regular
            kind, path = hit
            if depth == 0:
                found_regular = kind != "namespace"
            if path is not None:
                added.append(path)
            if kind == "module":
                return found_regular  # anything further is an attribute of the module
            here = f"{here}/{part}"
        for name in names:  # ``from pkg import sub``: sub may be a submodule
            hit = self.module_in(here, name)
            if hit is not None and hit[1] is not None:
                added.append(hit[1])
        return found_regular or not dotted


def import_closure(
    script: str,
    *,
    cwd: str,
    roots: Sequence[str],
    scan: Callable[[str], FileFacts | None],
) -> Closure:
    """The closure of ``script`` (absolute).  ``roots``: folders imports also resolve against
    (the project root); ``cwd``: the launch folder (relative paths in the code are relative to it).
    ``scan(path)`` gives a file's facts (None when it cannot be read)."""
    walk = _Walk(scan=scan, cwd=cwd)
    script = os.path.normpath(script)
    script_dir = os.path.dirname(script)
    path_dirs: dict[str, tuple[str, int]] = {}
    reached: dict[str, tuple[str, int]] = {}
    given_roots = list(roots)
    # a src/ layout's packages import as top-level names (editable installs, PYTHONPATH=src)
    roots = [*roots, *(os.path.join(r, "src") for r in roots)]
    # (module parts, names, importing file) not found yet: a later sys.path addition may provide them
    pending: list[tuple[tuple[str, ...], tuple[str, ...], str]] = []

    searches: dict[tuple[str, int], tuple[str, ...]] = {}

    def search(importer: str) -> tuple[str, ...]:
        key = (os.path.dirname(importer), len(path_dirs))
        if key not in searches:
            searches[key] = tuple(dict.fromkeys((script_dir, *path_dirs, *roots, key[0])))
        return searches[key]

    def resolve(parts: tuple[str, ...], names: tuple[str, ...], importer: str) -> bool:
        namespace_hit = False
        for folder in search(importer):
            if walk.follow(folder, parts, names):
                return True
            entries = walk.entries(folder)
            namespace_hit = namespace_hit or (entries is not None and parts[0] in entries)
        return namespace_hit

    def base_dir(base: str, importer: str) -> str:
        return os.path.dirname(importer) if base == "F" else cwd if base == "C" else "/"

    walk.add(script)
    seen_dirs = 0
    while True:
        while walk.queue:
            path = walk.queue.pop()
            facts = walk.scan(path)
            if facts is None:
                continue
            folder = os.path.dirname(path)
            for base, rel, line in facts.path_adds:
                if base == "A":
                    # an absolute folder (/opt/ros/...) is not part of the project and would not be
                    # at that path in the image: what it provides is the environment's, not ours
                    continue
                target = os.path.normpath(os.path.join(base_dir(base, path), rel))
                if target not in path_dirs and walk.entries(target) is not None:
                    path_dirs[target] = (path, line)
            for base, rel, line in facts.paths:
                target = os.path.normpath(os.path.join(base_dir(base, path), rel))
                walk.tested[target] = None
                if target not in reached and os.path.lexists(target):
                    reached[target] = (path, line)
            for module, names in facts.imports:
                parts = tuple(module.split("."))
                if not resolve(parts, names, path):
                    pending.append((parts, names, path))
            for level, module, names in facts.relative:
                package = folder
                for _ in range(level - 1):
                    package = os.path.dirname(package)
                init = os.path.join(package, "__init__.py")
                entries = walk.entries(package)
                if entries is not None and "__init__.py" in entries:
                    walk.add(init)
                walk.follow(package, tuple(module.split(".")) if module else (), names)
        if len(path_dirs) == seen_dirs:
            break
        # new sys.path folders: retry what was not found before
        seen_dirs = len(path_dirs)
        retry, pending = pending, []
        for parts, names, importer in retry:
            if not resolve(parts, names, importer):
                pending.append((parts, names, importer))
    files = list(walk.files)
    return Closure(
        files=(files[0], *sorted(files[1:])),
        path_dirs=tuple((d, f, n) for d, (f, n) in path_dirs.items()),
        reached=tuple((p, f, n) for p, (f, n) in sorted(reached.items())),
        search=tuple(dict.fromkeys((script_dir, *path_dirs, *given_roots))),
        listed=tuple(sorted(walk.stamps.items())),
        tested=tuple(sorted(walk.tested)),
    )
