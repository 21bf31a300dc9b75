"""The project: its root and the files that make up the build context.

The root (``choose_root``): the git work tree holding the script, else the launch
folder, widened to the nearest folder that holds everything the script reaches (its
import closure, folders it adds to ``sys.path``, relative paths it names); the
working directory inside mirrors the launch folder.

Shared by the dependency stage (which files to scan) and the image build (which
files to copy).  On the hot path of every ``runner run``: the walk only reads
directories (``os.scandir``, whose entry types come free from ``readdir`` on
Linux) and the ignore files; it never opens or stats a regular file.

Rules, in the order they apply to every path:

1. Always skipped (build noise, never wanted in an image): ``.git``/``.hg``/``.svn``,
   virtual environments (``.venv``, ``venv``, any folder holding ``pyvenv.cfg``,
   conda environments holding ``conda-meta``), runner's own home (a folder holding
   ``runner.db`` and ``runs``), ``__pycache__``, ``*.pyc``/``*.pyo``,
   tool caches (``.mypy_cache``, ``.pytest_cache``, ``.ruff_cache``, ``.tox``, ``.nox``,
   ``.hypothesis``, ``.eggs``, ``.ipynb_checkpoints``), ``*.egg-info``, ``node_modules``,
   and ``build``/``dist`` folders unless they are Python packages (``__init__.py``
   inside: a subpackage may be called ``build``).
2. Ignore files: ``.gitignore`` (root and nested, plus ``.git/info/exclude``) with git
   semantics; ``.dockerignore`` (root) with Docker semantics (patterns anchored at the
   root, a match covers everything below, ``!`` can re-include below an excluded
   folder); ``.runnerignore`` (root) with git semantics.  A path is left out when git
   or Docker rules leave it out; ``.runnerignore`` has the last word: its ``!`` lines
   re-include what the other two (or rule 3) left out.
3. Sensitive files are left out and listed in :attr:`ProjectFiles.excluded` so the
   CLI can say so: credentials folders (``.ssh``, ``.aws``, ``.kube``...), ``.env``
   files, private keys, ``.netrc``...  Only paths the ignore files did not already
   leave out are listed (those were never going to be shipped).
4. Symlinks: a link to a regular file inside the root is listed like a file (the
   build copies what it points to); links to folders are not followed (no loops, no
   double copies) and links leaving the root or dangling are skipped.  Both kinds are
   listed in :attr:`ProjectFiles.skipped_links`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ProjectFiles",
    "RootChoice",
    "base_root",
    "choose_root",
    "find_root",
    "git_root",
    "list_files",
    "IgnoreRules",
    "compile_gitignore",
]

# Folders never part of a build context, whatever the ignore files say.
_SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".hypothesis",
        ".eggs",
        ".ipynb_checkpoints",
        "node_modules",
    }
)
_SKIP_FILE_SUFFIXES = (".pyc", ".pyo")
# Markers inside a folder that make it an environment rather than project code.
_ENV_MARKERS = ("pyvenv.cfg", "conda-meta")
# What runner's own home holds (``~/.runner`` or RUNNER_HOME): its history, logs and build contexts,
# never part of a project, even a project in the home folder.
_HOME_MARKERS = frozenset({"runner.db", "runs"})
_BUILD_DIRS = frozenset({"build", "dist"})

# Sensitive names: (regex on the file/folder name, is it a folder).  Matched at any depth.
_SENSITIVE_DIRS = frozenset({".ssh", ".aws", ".gcp", "gcloud", ".azure", ".kube", ".gnupg"})
_SENSITIVE_FILE_RE = re.compile(
    r"""^(?:
        \.env(?:\..+)?              # .env, .env.local, .env.production
      | id_(?:rsa|dsa|ecdsa|ed25519)(?:\..*)?   # ssh keys (and their .pub: no reason to ship them)
      | .+\.(?:pem|key|p12|pfx|jks|keystore|ppk)
      | \.netrc | _netrc | \.pypirc | \.npmrc | \.git-credentials | \.htpasswd
      | \.pgpass | \.boto | \.s3cfg
    )$""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class ProjectFiles:
    root: Path
    #: regular files of the build context, relative POSIX paths, sorted
    files: tuple[str, ...]
    #: sensitive paths left out (folders end with ``/``), sorted: the CLI lists them
    excluded: tuple[str, ...] = ()
    #: symlinks not followed: to a folder, leaving the root, or dangling (sorted)
    skipped_links: tuple[str, ...] = ()
    #: virtual/conda environments found in the tree and skipped (folders, ``/``-terminated)
    environments: tuple[str, ...] = ()
    #: ignore files that were read (relative paths), part of what decides ``files``
    ignore_files: tuple[str, ...] = ()


def find_root(script: Path) -> Path:
    """The git work tree holding ``script`` (``.git`` folder or file), else its folder.

    A repository at the home folder or at ``/`` (a dotfiles repository) is not a
    project root: shipping a whole home folder is never what was meant.
    """
    script = script.absolute()
    return git_root(script) or (script if script.is_dir() else script.parent)


def git_root(script: Path) -> Path | None:
    """The git work tree holding ``script``, or None (none, or one at the home folder or ``/``)."""
    script = script.absolute()
    start = script if script.is_dir() else script.parent
    home = _home()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            if folder == home or folder == Path(folder.anchor):
                return None
            return folder
    return None


@dataclass(frozen=True)
class RootChoice:
    root: Path
    #: the launch folder relative to ``root`` (POSIX, "" = the root): the working directory inside
    workdir: str
    #: ``sys.argv[0]`` as ``python SCRIPT`` from the launch folder gives it (relative to ``workdir``)
    argv0: str
    #: one-line notices for the person (what widened the root, a launch folder not mirrored)
    notices: tuple[str, ...] = ()


def _too_wide(folder: Path) -> bool:
    """``/``, the home folder or a folder above it: never a build context by accident."""
    home = _home()
    return folder == Path(folder.anchor) or (home is not None and (folder == home or folder in home.parents))


def _common(paths: Sequence[Path]) -> Path:
    return Path(os.path.commonpath([os.fspath(p) for p in paths]))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def base_root(script: Path, *, cwd: Path) -> Path:
    """The root before widening: the git work tree, else the launch folder -- unless that is
    the home folder or ``/`` (or would take one in with the script, or a top-level folder such
    as ``/tmp`` when the launch folder does not hold the script): then the script's folder."""
    git = git_root(script)
    if git is not None:
        return git
    if not _inside(script, cwd):
        common = _common([cwd, script.parent])
        if _too_wide(common) or len(common.parts) <= 2:  # /tmp/x and /tmp/y have only /tmp in common
            return script.parent
    if _too_wide(cwd):
        return script.parent
    return cwd


def choose_root(script: Path, *, cwd: Path, needs: Sequence[tuple[Path, str]] = ()) -> RootChoice:
    """The build context's root, and where the script runs inside it (issue 9).

    ``script`` and ``cwd`` (the launch folder) are absolute; ``needs`` are what the
    script reaches (its import closure's files, folders it adds to ``sys.path``,
    relative paths it names that exist), each with why (shown when it widens the root).

    Inside a git repository the root is the work tree; outside, the launch folder.
    Either widens to the nearest folder holding the script and everything it reaches.
    The working directory inside mirrors the launch folder -- unless the launch folder
    is outside a git root, or is the home folder or ``/`` (then it is the root, as
    before, and a notice says so).  A root that would be the home folder or ``/`` is a
    UsageError, unless a ``.runnerignore`` there says what to leave out.
    """
    from runner.errors import UsageError

    base = base_root(script, cwd=cwd)
    notices: list[str] = []
    items = [(script, "the script"), *needs]
    mirror = _inside(cwd, base)
    root = _common([base, *(p for p, _ in items)])
    if root != base:
        outside = [(p, why) for p, why in items if not _inside(p, base)]
        # a module inside a folder already named (a sys.path folder) is no news
        outside = [(p, why) for p, why in outside if not any(q != p and _inside(p, q) for q, _ in outside)]
        shown = ", ".join(f"{os.path.relpath(p, base)} ({why})" for p, why in outside[:3])
        more = f" and {len(outside) - 3} more" if len(outside) > 3 else ""
        notices.append(f"build context widened from {base} to {root} to include {shown}{more}")
    if _too_wide(root) and not (root / ".runnerignore").is_file():
        raise UsageError(
            f"the build context would be {root}, {'your home folder' if root == _home() else 'too wide to ship'}"
            f" (it must hold {os.path.relpath(script, root)} and what it reaches)",
            hint=f"run from a narrower folder, keep what the script reaches inside one project folder,"
            f" or add a .runnerignore in {root} that leaves out what is not needed",
        )
    if mirror and not _inside(cwd, root):
        mirror = False
    if mirror:
        workdir = "" if cwd == root else cwd.relative_to(root).as_posix()
        argv0 = Path(os.path.relpath(script, cwd)).as_posix()
    else:
        workdir, argv0 = "", script.relative_to(root).as_posix()
        notices.append(f"launched from {cwd}, outside the build context {root}: the script runs in its root")
    return RootChoice(root=root, workdir=workdir, argv0=argv0, notices=tuple(notices))


def _home() -> Path | None:
    try:
        return Path.home()
    except RuntimeError:  # no HOME and no passwd entry
        return None


# --------------------------------------------------------------------------- patterns


@dataclass(frozen=True)
class IgnoreRules:
    """Compiled patterns of one ignore file, matched against paths relative to ``base``.

    ``files``/``dirs`` are single alternations of all patterns, last pattern first, so
    one regex call finds the pattern that decides (git: the last matching line wins).
    ``negated`` holds the group names of ``!`` patterns.
    """

    base: str  # folder of the ignore file relative to the root ("" for the root)
    files: re.Pattern[str] | None
    dirs: re.Pattern[str] | None
    negated: frozenset[str]
    has_negation: bool

    def decide(self, rel: str, *, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included by ``!``, None: no pattern matches."""
        pattern = self.dirs if is_dir else self.files
        if pattern is None:
            return None
        m = pattern.fullmatch(rel)
        if m is None:
            return None
        return m.lastgroup not in self.negated


def _translate_glob(pat: str) -> str:
    """Glob body (no leading/trailing slash handling) -> regex, ``*`` never crossing ``/``."""
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == "*":
            if pat.startswith("**", i):
                # "**" alone as a segment: any number of folders
                before = i == 0 or pat[i - 1] == "/"
                after = i + 2 == n or pat[i + 2] == "/"
                if before and after:
                    if i + 2 == n:
                        out.append(".*")
                        i += 2
                    else:
                        out.append("(?:[^/]*/)*")
                        i += 3
                    continue
                out.append("[^/]*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1
            if j < n and pat[j] in "!^":
                j += 1
            if j < n and pat[j] == "]":
                j += 1
            while j < n and pat[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))
            else:
                body = pat[i + 1 : j]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pat[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _parse_lines(text: str) -> list[tuple[str, bool]]:
    """Non-empty pattern lines with their negation flag, comments and blanks dropped."""
    lines: list[tuple[str, bool]] = []
    for raw in text.splitlines():
        line = raw
        # trailing spaces are ignored unless escaped
        while line.endswith(" ") and not line.endswith("\\ "):
            line = line[:-1]
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:]
        elif line.startswith("\\!") or line.startswith("\\#"):
            line = line[1:]
        if line:
            lines.append((line, negate))
    return lines


def compile_gitignore(text: str, base: str = "", *, docker: bool = False) -> IgnoreRules:
    """Compile an ignore file (git semantics, or Docker's with ``docker=True``)."""
    file_alts: list[str] = []
    dir_alts: list[str] = []
    negated: set[str] = set()
    parsed = _parse_lines(text)
    for index in range(len(parsed) - 1, -1, -1):  # last line first: it wins
        line, negate = parsed[index]
        group = f"p{index}"
        if docker:
            # Docker: cleaned path, always anchored at the context root, and a pattern
            # matching a folder matches everything below it.
            body = os.path.normpath(line.strip("/")) if line.strip("/") else ""
            if body in ("", "."):
                continue
            regex = _translate_glob(body) + "(?:/.*)?"
            file_alts.append(f"(?P<{group}>{regex})")
            dir_alts.append(f"(?P<{group}>{regex})")
        else:
            dir_only = line.endswith("/")
            body = line.rstrip("/")
            if not body:
                continue
            anchored = "/" in body
            body = body.lstrip("/")
            regex = _translate_glob(body)
            if not anchored and not body.startswith("**"):
                regex = "(?:[^/]*/)*" + regex
            alt = f"(?P<{group}>{regex})"
            dir_alts.append(alt)
            if not dir_only:
                file_alts.append(alt)
        if negate:
            negated.add(group)
    return IgnoreRules(
        base=base,
        files=re.compile("|".join(file_alts)) if file_alts else None,
        dirs=re.compile("|".join(dir_alts)) if dir_alts else None,
        negated=frozenset(negated),
        has_negation=bool(negated),
    )


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None


# --------------------------------------------------------------------------- walk


@dataclass
class _Walk:
    docker: IgnoreRules | None
    runner: IgnoreRules | None
    real_root: str
    files: list[str]
    excluded: list[str]
    links: list[str]
    envs: list[str]
    ignore_files: list[str]


def _git_ignored(stack: list[IgnoreRules], rel: str, *, is_dir: bool) -> bool:
    # Deepest .gitignore first: a nested file overrides its parents.
    for rules in reversed(stack):
        sub = rel[len(rules.base) + 1 :] if rules.base else rel
        verdict = rules.decide(sub, is_dir=is_dir)
        if verdict is not None:
            return verdict
    return False


def list_files(root: Path) -> ProjectFiles:
    """Walk ``root`` and return the build context (see the module doc for the rules)."""
    root_s = os.fspath(root)
    walk = _Walk(
        docker=None,
        runner=None,
        real_root=os.path.realpath(root_s),
        files=[],
        excluded=[],
        links=[],
        envs=[],
        ignore_files=[],
    )
    git_stack: list[IgnoreRules] = []
    exclude_text = _read_text(os.path.join(root_s, ".git", "info", "exclude"))
    if exclude_text:
        git_stack.append(compile_gitignore(exclude_text))
    docker_text = _read_text(os.path.join(root_s, ".dockerignore"))
    if docker_text is not None:
        walk.docker = compile_gitignore(docker_text, docker=True)
        walk.ignore_files.append(".dockerignore")
    runner_text = _read_text(os.path.join(root_s, ".runnerignore"))
    if runner_text is not None:
        walk.runner = compile_gitignore(runner_text)
        walk.ignore_files.append(".runnerignore")
    entries = _scan(root_s)
    if entries is not None:
        _walk_dir(walk, root_s, "", entries, git_stack, git_parent=False)
    walk.files.sort()
    return ProjectFiles(
        root=root,
        files=tuple(walk.files),
        excluded=tuple(sorted(walk.excluded)),
        skipped_links=tuple(sorted(walk.links)),
        environments=tuple(sorted(walk.envs)),
        ignore_files=tuple(sorted(walk.ignore_files)),
    )


def _scan(path: str) -> list[os.DirEntry[str]] | None:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return None


def _verdict(
    walk: _Walk, git_stack: list[IgnoreRules], rel: str, *, is_dir: bool, git_parent: bool
) -> tuple[bool, bool, bool | None]:
    """(left out, left out by git rules, .runnerignore verdict) for one path."""
    by_git = git_parent or _git_ignored(git_stack, rel, is_dir=is_dir)
    # Docker patterns match the full path (a folder pattern covers what is below it).
    by_docker = walk.docker is not None and walk.docker.decide(rel, is_dir=is_dir) is True
    runner = None if walk.runner is None else walk.runner.decide(rel, is_dir=is_dir)
    left_out = (by_git or by_docker) if runner is None else runner
    return left_out, by_git, runner


def _walk_dir(
    walk: _Walk,
    path: str,
    rel_dir: str,
    entries: list[os.DirEntry[str]],
    git_stack: list[IgnoreRules],
    *,
    git_parent: bool,
) -> None:
    for entry in entries:
        if entry.name == ".gitignore":
            text = _read_text(entry.path)
            if text:
                git_stack = [*git_stack, compile_gitignore(text, rel_dir)]
                walk.ignore_files.append(f"{rel_dir}/.gitignore" if rel_dir else ".gitignore")
            break
    for entry in entries:
        name = entry.name
        rel = f"{rel_dir}/{name}" if rel_dir else name
        try:
            if entry.is_symlink():
                _visit_link(walk, entry.path, rel, git_stack, git_parent=git_parent)
            elif entry.is_dir(follow_symlinks=False):
                _visit_dir(walk, entry.path, name, rel, git_stack, git_parent=git_parent)
            elif entry.is_file(follow_symlinks=False):
                _visit_file(walk, name, rel, git_stack, git_parent=git_parent)
        except OSError:
            continue


def _visit_dir(walk: _Walk, path: str, name: str, rel: str, git_stack: list[IgnoreRules], *, git_parent: bool) -> None:
    if name == ".git":
        walk.excluded.append(rel + "/")
        return
    if name in _SKIP_DIRS or name.endswith(".egg-info"):
        if name in (".venv", "venv"):
            walk.envs.append(rel + "/")
        return
    left_out, by_git, runner = _verdict(walk, git_stack, rel, is_dir=True, git_parent=git_parent)
    if left_out:
        # git never re-includes below an excluded folder; Docker and .runnerignore can
        # ("!" lines), so only then is it worth walking into it.
        may_reinclude = (walk.runner is not None and walk.runner.has_negation) or (
            not by_git and walk.docker is not None and walk.docker.has_negation
        )
        if not may_reinclude:
            return
    elif runner is None and name in _SENSITIVE_DIRS:
        walk.excluded.append(rel + "/")
        return
    entries = _scan(path)
    if entries is None:
        return
    if any(e.name in _ENV_MARKERS for e in entries):
        walk.envs.append(rel + "/")
        return
    if _HOME_MARKERS <= {e.name for e in entries}:
        return
    if name in _BUILD_DIRS and not any(e.name == "__init__.py" for e in entries):
        return
    # A folder re-included by .runnerignore clears the git exclusion of its parents.
    _walk_dir(walk, path, rel, entries, git_stack, git_parent=by_git and runner is not False)


def _visit_file(walk: _Walk, name: str, rel: str, git_stack: list[IgnoreRules], *, git_parent: bool) -> None:
    if name.endswith(_SKIP_FILE_SUFFIXES) or name == ".git":  # .git file: a worktree pointer
        return
    left_out, _, runner = _verdict(walk, git_stack, rel, is_dir=False, git_parent=git_parent)
    if left_out:
        return
    if runner is None and _is_sensitive(rel, name):
        walk.excluded.append(rel)
        return
    walk.files.append(rel)


def _is_sensitive(rel: str, name: str) -> bool:
    if _SENSITIVE_FILE_RE.match(name):
        return True
    return rel == ".docker/config.json" or rel.endswith("/.docker/config.json")


def _visit_link(walk: _Walk, path: str, rel: str, git_stack: list[IgnoreRules], *, git_parent: bool) -> None:
    left_out, _, _ = _verdict(walk, git_stack, rel, is_dir=False, git_parent=git_parent)
    if left_out:
        return
    target = os.path.realpath(path)
    inside = target.startswith(walk.real_root + os.sep)
    if inside and os.path.isfile(target):
        _visit_file(walk, rel.rsplit("/", 1)[-1], rel, git_stack, git_parent=git_parent)
    else:
        walk.links.append(rel)
