"""The plan: everything decided before any engine is touched (inspect -> pin -> render).

``make_plan`` reads the project and asks the user's interpreter (through the
dependency stage's cache); it builds nothing and writes nothing but caches.
``image_ref`` adds the one fact that needs an engine: the base image's id.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from runner.deps import lock_project, project_closure
from runner.deps.model import Lock
from runner.errors import UsageError
from runner.image import ContextEntry, DigestCache, FileDigest, TagInputs, digest_entries, image_tag, normal_mode
from runner.layers import split_layers, uv_refusal
from runner.names import image_repository
from runner.project import ProjectFiles, RootChoice, base_root, choose_root, list_files
from runner.render import (
    INSTALL_SCRIPT,
    PROJECT_DIR,
    DockerfileSpec,
    Installer,
    container_command,
    render_dockerfile,
    uv_image,
)
from runner.uvbin import find_uv, recorded_sha256

SCRIPT_TYPES = (".py", ".sh")
#: runner's in-container runtime: one stdlib-only file, the ``runner`` module of an image whose project imports runner
RUNTIME_SOURCE = Path(__file__).parent / "runtime" / "__init__.py"
RUNTIME_ENTRY = ".runner/runtime/runner/__init__.py"


@dataclass(frozen=True)
class PlanRequest:
    script: Path
    args: tuple[str, ...] = ()
    base_image: str | None = None
    python: str | None = None
    requirements: Path | None = None
    #: the launch folder (default: the current directory): the working directory inside mirrors it
    cwd: Path | None = None


@dataclass(frozen=True)
class ToolImage:
    """A one-file image (``/NAME``, from ``source``) that an install step mounts: uv's binary."""

    ref: str
    name: str
    source: Path


@dataclass(frozen=True)
class Plan:
    root: Path
    project: str
    script: str  # relative to root, POSIX
    args: tuple[str, ...]
    command: tuple[str, ...]  # runs in ``workdir``: its script is sys.argv[0] as the local launch gives it
    files: ProjectFiles
    lock: Lock
    base_image: str
    dockerfile: str
    entries: tuple[ContextEntry, ...]  # hashed build-context entries
    digests: tuple[FileDigest, ...]
    spec: DockerfileSpec  # what ``dockerfile`` was rendered from (the classic builder renders it again)
    #: the launch folder relative to root (POSIX, "" = the root)
    workdir: str = ""
    #: sys.argv[0]: the script as ``python SCRIPT`` from the launch folder names it
    argv0: str = ""
    #: the script's import closure, relative to root (what was scanned)
    closure: tuple[str, ...] = ()
    #: one-line notices (what widened the root...)
    notices: tuple[str, ...] = ()
    #: images an install step mounts a file from, made on the engine before the build
    tools: tuple[ToolImage, ...] = ()

    @property
    def container_workdir(self) -> str:
        return f"{PROJECT_DIR}/{self.workdir}" if self.workdir else PROJECT_DIR

    def image_ref(self, base_image_id: str) -> str:
        tag = image_tag(
            TagInputs(
                base_image_id=base_image_id, dockerfile=self.dockerfile, lock=self.lock.text(), files=self.digests
            )
        )
        return f"{image_repository(self.project)}:{tag}"


def check_script(script: Path) -> Path:
    """The script as an absolute path, or a UsageError saying what is wrong with it."""
    if not script.exists():
        raise UsageError(f"script not found: {script}", hint="give the path of a .py or .sh file")
    if script.is_dir():
        raise UsageError(f"{script} is a directory, not a script", hint="give the path of a .py or .sh file in it")
    if script.suffix not in SCRIPT_TYPES:
        raise UsageError(f"cannot run {script.name}: only .py and .sh scripts are supported")
    return script.resolve()


def check_request(req: PlanRequest) -> Path:
    """What is told wrong with a request at a glance (its script, its requirements file); the script's absolute path."""
    script = check_script(req.script)
    if req.requirements is not None and not req.requirements.is_file():
        raise UsageError(f"--requirements {req.requirements}: no such file")
    return script


def default_base_image(python_version: str) -> str:
    major_minor = ".".join((python_version or platform.python_version()).split(".")[:2])
    return f"python:{major_minor}-slim"


def make_plan(req: PlanRequest, *, cache_dir: Path | None) -> Plan:
    script = check_request(req)
    cwd = (req.cwd or Path.cwd()).resolve()
    choice, closure, search = _root(script, cwd, cache_dir)
    root = choice.root
    rel = script.relative_to(root).as_posix()
    files = list_files(root)
    names = set(files.files)
    # an ignored script still runs: it is the one file that must be there; so do the modules it imports
    names.update([rel, *closure])
    lock = lock_project(
        root,
        sorted(names),
        rel,
        python=req.python,
        requirements=req.requirements,
        cache_dir=cache_dir,
        scan=closure if script.suffix == ".py" else None,
        search=search if script.suffix == ".py" else None,
    )
    base = req.base_image or default_base_image(lock.python_version)
    has_requirements = bool(lock.requirements) or lock.install_project
    layers = split_layers(lock) if has_requirements else ()
    uv_bin, why_not_uv = (None, "") if not has_requirements else find_uv()
    why_not_uv = uv_refusal(lock.pip_options) or why_not_uv
    cache = DigestCache(cache_dir / "digests.json" if cache_dir else None)
    # uv's digest names its tools image, which the Dockerfile names: the installer's bytes decide the tag too
    uv = uv_image(recorded_sha256(uv_bin) or cache.digest(uv_bin)) if uv_bin is not None and not why_not_uv else None
    spec = DockerfileSpec(
        base_image=base,
        has_requirements=has_requirements,
        install_project=lock.install_project,
        runtime=lock.uses_runtime,
        layers=tuple(f.name for f in layers),
        installer=Installer.PIP if why_not_uv else Installer.UV,
        pip_reason=why_not_uv,
        uv_image=uv,
    )
    dockerfile = render_dockerfile(spec)
    entries: list[ContextEntry] = [ContextEntry("Dockerfile", 0o644, data=dockerfile.encode())]
    if lock.uses_runtime:
        entries.append(ContextEntry(RUNTIME_ENTRY, 0o644, source=RUNTIME_SOURCE))
    if has_requirements:
        entries.append(ContextEntry(".runner/install.sh", 0o644, data=INSTALL_SCRIPT.encode()))
        entries.append(ContextEntry(".runner/deps/requirements.lock", 0o644, data=lock.text().encode()))
        entries += [ContextEntry(f".runner/deps/{s.target}", 0o644, source=Path(s.source)) for s in lock.ship]
        entries += [ContextEntry(f".runner/layers/{f.name}", 0o644, data=f.text.encode()) for f in layers]
    for name in sorted(names):
        path = root / name
        entries.append(ContextEntry(f"project/{name}", normal_mode(path.stat().st_mode), source=path))
    digests = digest_entries(entries, cache)
    cache.save()
    return Plan(
        root=root,
        project=root.name,
        script=rel,
        args=req.args,
        command=tuple(container_command(choice.argv0, req.args)),
        files=files,
        lock=lock,
        base_image=base,
        dockerfile=dockerfile,
        entries=tuple(entries),
        digests=digests,
        spec=spec,
        workdir=choice.workdir,
        argv0=choice.argv0,
        closure=tuple(closure),
        notices=choice.notices,
        tools=(ToolImage(uv, "uv", uv_bin),) if uv is not None and uv_bin is not None else (),
    )


def _root(script: Path, cwd: Path, cache_dir: Path | None) -> tuple[RootChoice, list[str], list[str]]:
    """Where the build context is rooted, the script's import closure and its sys.path folders
    (both relative to that root)."""
    if script.suffix != ".py":
        choice = choose_root(script, cwd=cwd)
        return choice, [], []
    base = base_root(script, cwd=cwd)
    closure = project_closure(script, cwd=cwd, roots=[base], cache_dir=cache_dir)
    needs: list[tuple[Path, str]] = []
    inside = f"{base}{os.sep}"
    for folder, by, line in closure.path_dirs:
        # a sys.path folder the script imports nothing from (outside the root) is no reason to widen it
        if any(f.startswith(f"{folder}{os.sep}") and not f.startswith(inside) for f in closure.files):
            needs.append((Path(folder), f"added to sys.path at {_at(by, line, script.parent)}"))
    for reached, by, line in closure.reached:
        needs.append((Path(reached), f"named at {_at(by, line, script.parent)}"))
    needs += [(Path(f), "imported") for f in closure.files[1:] if not f.startswith(inside)]
    choice = choose_root(script, cwd=cwd, needs=needs)
    root = choice.root
    prefix = len(f"{root}{os.sep}") if root != Path(root.anchor) else len(root.anchor)
    files = [f[prefix:] for f in closure.files]  # all under root: it was widened to hold them
    search: list[str] = []
    for entry in closure.search[1:]:
        path = Path(entry)
        if path.is_relative_to(root):
            rel = path.relative_to(root).as_posix()
            search.append("" if rel == "." else rel)
    return choice, files, search


def _at(file: str, line: int, folder: Path) -> str:
    return f"{os.path.relpath(file, folder)}:{line}"
