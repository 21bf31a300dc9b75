"""Classify import sites: standard library, the project's own, installed, or missing.

Pure functions over (scanned sites, project file list, probed environment).

A name is the project's own only when Python would really import it from the
project: a module or regular package in a folder that is on ``sys.path`` when the
script runs (the script's folder, the project root, folders the script adds to
``sys.path``) or next to the importing file.
The order follows the import system: built-in modules, then those folders (a
``random.py`` next to the script shadows the standard library's), then the
standard library, then site-packages.  A folder without ``__init__.py`` (a namespace
package) loses to every regular module found later on the path, so a ``datasets/``
data folder never hides the installed ``datasets`` package; it counts as the
project's own only when nothing else provides the name and it holds Python code.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from runner.deps.interp import Environment
from runner.deps.model import ImportInfo, ImportKind, ImportSite

__all__ = ["LocalIndex", "Resolved", "build_local_index", "classify", "PY2_STDLIB", "RUNTIME_MODULE"]

_MODULE_SUFFIXES = (".py", ".pyw", ".so", ".pyd")
#: ``import runner`` (a starter/worker script): runner's in-container runtime provides it in
#: the image, so neither the installed runner nor an index project of that name is pinned
RUNTIME_MODULE = "runner"

# Standard-library modules of Python 2 that are gone (or renamed) in Python 3.  Imported
# without a guard they are dead code paths; never look them up on the index (the index
# has unrelated packages under several of these names).
PY2_STDLIB = frozenset(
    """
    __builtin__ _winreg anydbm BaseHTTPServer Bastion CGIHTTPServer ConfigParser Cookie
    cookielib copy_reg cPickle cProfile cStringIO commands dbhash dircache dumbdbm
    dummy_thread dummy_threading exceptions fpformat gdbm htmlentitydefs HTMLParser
    httplib ihooks imputil markupbase md5 mhlib mimetools MimeWriter mimify multifile
    mutex new popen2 posixfile Queue repr rexec rfc822 robotparser ScrolledText sets sgmllib
    sha SimpleDialog SimpleHTTPServer SimpleXMLRPCServer SocketServer statvfs StringIO
    thread Tix Tkinter tkColorChooser tkCommonDialog tkFileDialog tkFont tkMessageBox
    tkSimpleDialog toaiff ttk urllib2 urlparse user UserDict UserList UserString
    whichdb xmlrpclib DocXMLRPCServer Dialog FileDialog Canvas
    """.split()
)


@dataclass(frozen=True)
class LocalIndex:
    #: folder ("" = root) -> names importable from it as a module or regular package
    regular: Mapping[str, frozenset[str]]
    #: folder -> names of sub-folders holding Python code only as namespace packages
    namespace: Mapping[str, frozenset[str]]


def build_local_index(files: Iterable[str]) -> LocalIndex:
    regular: dict[str, set[str]] = {}
    namespace: dict[str, set[str]] = {}
    for path in files:
        folder, _, base = path.rpartition("/")
        if not base.endswith(_MODULE_SUFFIXES):
            continue
        stem = base.split(".", 1)[0]
        if not stem.isidentifier():
            continue
        if stem == "__init__":
            if folder:
                parent, _, pkg = folder.rpartition("/")
                if pkg.isidentifier():
                    regular.setdefault(parent, set()).add(pkg)
        else:
            regular.setdefault(folder, set()).add(stem)
        # every chain of identifier-named folders leading to Python code is importable
        # as (namespace) packages from each folder above it
        if base.endswith((".py", ".pyw")):
            parts = folder.split("/") if folder else []
            for i in range(len(parts)):
                if not all(p.isidentifier() for p in parts[i:]):
                    continue
                namespace.setdefault("/".join(parts[:i]), set()).add(parts[i])
    return LocalIndex(
        regular={k: frozenset(v) for k, v in regular.items()},
        namespace={k: frozenset(v) for k, v in namespace.items()},
    )


@dataclass(frozen=True)
class Resolved:
    imports: tuple[ImportInfo, ...]  # sorted by (name, kind)
    #: distributions that go in, with the import names that brought them
    direct: Mapping[str, tuple[str, ...]]
    #: missing names imported at top level (index candidates), with their sites
    missing_top: tuple[ImportInfo, ...]
    #: missing names only imported guarded or lazily (left out)
    missing_guarded: tuple[ImportInfo, ...]
    #: Python 2 stdlib names (never looked up)
    py2: tuple[ImportInfo, ...]
    #: shared top-level names that no dotted import narrowed (all owners went in)
    ambiguous: tuple[ImportInfo, ...]


def _search_dirs(script: str, file: str, search: Sequence[str] | None) -> tuple[str, ...]:
    script_dir = posixpath.dirname(script)
    file_dir = posixpath.dirname(file)
    out: list[str] = []
    for d in (script_dir, *(("",) if search is None else search), file_dir):
        if d not in out:
            out.append(d)
    return tuple(out)


def _third_party(env: Environment, site: ImportSite) -> tuple[str, tuple[str, ...]] | None:
    top = site.module.split(".", 1)[0]
    owners = env.by_top.get(top)
    if not owners:
        return None
    if len(owners) == 1:
        return top, owners
    # Shared top-level name (google, azure...): the longest dotted prefix decides.
    candidates = [site.module, *(f"{site.module}.{n}" for n in site.names)]
    best: tuple[str, tuple[str, ...]] | None = None
    for cand in candidates:
        parts = cand.split(".")
        for depth in (3, 2):
            if len(parts) < depth:
                continue
            prefix = ".".join(parts[:depth])
            found = env.by_dotted.get(prefix)
            if found and (best is None or len(prefix) > len(best[0])):
                best = (prefix, found)
                break
    return best if best is not None else (top, owners)


def classify(
    sites: Sequence[ImportSite],
    *,
    script: str,
    local: LocalIndex,
    env: Environment,
    search: Sequence[str] | None = None,
) -> Resolved:
    """``search``: the folders on the script's ``sys.path`` besides its own (relative to the
    root: the project root, folders the script adds to ``sys.path``); default: the root."""
    groups: dict[tuple[str, ImportKind], tuple[list[ImportSite], set[str]]] = {}
    py2_names: set[str] = set()
    ambiguous_names: set[str] = set()
    for site in sites:
        top = site.module.split(".", 1)[0]
        name = top
        dists: tuple[str, ...] = ()
        dirs = _search_dirs(script, site.file, search)
        if top in env.builtin:
            kind = ImportKind.STDLIB
        elif any(top in local.regular.get(d, ()) for d in dirs):
            kind = ImportKind.LOCAL
        elif top == RUNTIME_MODULE:  # after the project's own: a local runner.py wins, as it does in Python
            kind = ImportKind.RUNNER
        elif top in env.stdlib:
            kind = ImportKind.STDLIB
        elif (mapped := _third_party(env, site)) is not None:
            kind = ImportKind.THIRD_PARTY
            name, dists = mapped
            if len(dists) > 1 and name == top:
                ambiguous_names.add(top)
        elif any(top in local.namespace.get(d, ()) for d in dirs):
            kind = ImportKind.LOCAL
        else:
            kind = ImportKind.MISSING
            if top in PY2_STDLIB:
                py2_names.add(top)
        entry = groups.setdefault((name, kind), ([], set()))
        entry[0].append(site)
        entry[1].update(dists)
    infos: list[ImportInfo] = []
    for (name, kind), (group_sites, dist_set) in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1].value)):
        infos.append(
            ImportInfo(
                name=name,
                kind=kind,
                distributions=tuple(sorted(dist_set)),
                sites=tuple(sorted(group_sites, key=lambda s: (s.file, s.cell, s.line, s.module))),
            )
        )
    direct: dict[str, set[str]] = {}
    missing_top: list[ImportInfo] = []
    missing_guarded: list[ImportInfo] = []
    py2: list[ImportInfo] = []
    for info in infos:
        if info.kind is ImportKind.THIRD_PARTY:
            for dist in info.distributions:
                direct.setdefault(dist, set()).add(info.name)
        elif info.kind is ImportKind.MISSING:
            if info.name in py2_names:
                py2.append(info)
            elif any(not s.guarded and not s.lazy for s in info.sites):
                missing_top.append(info)
            else:
                missing_guarded.append(info)
    return Resolved(
        imports=tuple(infos),
        direct={k: tuple(sorted(v)) for k, v in sorted(direct.items())},
        missing_top=tuple(missing_top),
        missing_guarded=tuple(missing_guarded),
        py2=tuple(py2),
        ambiguous=tuple(i for i in infos if i.name in ambiguous_names and i.kind is ImportKind.THIRD_PARTY),
    )
