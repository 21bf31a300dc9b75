"""Render the Dockerfile for a build plan.  Pure: same plan, same text.

Layout of the build context (made by :mod:`runner.plan`, written by :mod:`runner.build`)::

    Dockerfile
    .runner/install.sh               INSTALL_SCRIPT: runs each install step
    .runner/deps/requirements.lock   the lock, exactly as pinned
    .runner/deps/...                 local wheel files the lock refers to
    .runner/deps/ca.pem              classic builder only: the host's CA bundle (possibly empty)
    .runner/layers/N-FAMILY.txt      exact pins of a heavy family, installed as a layer of its own
    .runner/runtime/runner/...       runner's in-container runtime, when the project imports runner
    project/...                      the project's files

BuildKit (the default): one stage.  One ``RUN`` per heavy family (:mod:`runner.layers`),
then one for the whole lock (the first makes the virtual environment), then the code.
Every input of an install step is mounted for that step only: the script (a bind
mount from the context), uv's binary (a bind mount from a one-file tools image,
``runner-uv:<digest>``, made once per engine from runner's own ``uv``, so no build
context carries its 40 MB), the index settings and the CA bundle
(secret mounts), the installer's download cache (a cache mount that outlives
the build).  None of them is in a layer, the history or the config; a changed
lock downloads only what changed.  Each step mounts only its own file, so a
family layer is reused while its pins stay the same.

Classic builder (no BuildKit: ``classic=True``): two stages as before; ``deps``
installs the lock with pip (it alone sees the index settings, as build arguments,
and the CA bundle, as ``.runner/deps/ca.pem``) and the final stage copies the
environment.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from enum import Enum

from runner.deps import SHIP_DIR
from runner.errors import UsageError

PROJECT_DIR = "/project"
VENV_DIR = "/opt/runner/venv"
#: on PYTHONPATH after the project's folders: ``import runner`` finds the runtime, a project's own runner wins
RUNTIME_DIR = "/opt/runner/runtime"
DEPS_DIR = SHIP_DIR  # lock lines for shipped wheels refer to files here
#: pip settings forwarded as build arguments to the deps stage only (classic builder)
INDEX_ARGS = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST")
#: BuildKit secret ids: shell ``export`` lines of the index settings, and the CA bundle
SECRET_INDEX = "runner-index"
SECRET_CA = "runner-ca"
#: where an install step finds its tools and family file (mounted, never in a layer)
TOOLS_DIR = "/run/runner"
#: cache mounts shared by every build on the engine: a changed lock downloads only what changed
UV_CACHE = "/root/.cache/uv"
PIP_CACHE = "/root/.cache/pip"


def uv_image(sha256: str) -> str:
    """The tools image that holds a uv binary (named by the binary's digest: the same bytes, the same image)."""
    return f"runner-uv:{sha256[:16]}"


class Installer(str, Enum):
    UV = "uv"
    PIP = "pip"


@dataclass(frozen=True)
class DockerfileSpec:
    base_image: str
    has_requirements: bool
    install_project: bool = False
    runtime: bool = False  # ship runner's in-container runtime (runner/runtime) as the ``runner`` module
    #: heavy families installed as layers of their own, in order (file names under .runner/layers/)
    layers: tuple[str, ...] = ()
    installer: Installer = Installer.UV
    #: why pip, not uv, installs the lock (shown in the build log)
    pip_reason: str = ""
    #: the classic builder (no BuildKit): two stages, pip, the environment copied
    classic: bool = False
    #: the image holding uv's binary as ``/uv`` (see :func:`uv_image`); None when pip installs
    uv_image: str | None = None


#: Runs one install step in the image build: ``install.sh INSTALLER REASON FILE [--no-deps]``
#: installs a requirements file into the environment, which the first step makes.
#: uv's binary comes from runner's machine: where it cannot run (another CPU, a musl base) pip does
#: the work and the log says why.  uv ignores --pre and --trusted-host in a requirements file: they
#: become its own options here.
INSTALL_SCRIPT = f"""\
# runner's install step for the image build (mounted for the step, never in a layer)
set -eu
installer=$1 reason=$2 file=$3
shift 3
venv={VENV_DIR}
uv={TOOLS_DIR}/uv
if [ "$installer" = uv ] && ! "$uv" --version >/dev/null 2>&1; then
  installer=pip reason="uv from runner's machine does not run in this base image ($(uname -m))"
fi
if [ -s /run/secrets/{SECRET_INDEX} ]; then . /run/secrets/{SECRET_INDEX}; fi
if [ -s /run/secrets/{SECRET_CA} ]; then export PIP_CERT=/run/secrets/{SECRET_CA} SSL_CERT_FILE=/run/secrets/{SECRET_CA}; fi
if [ "$installer" = pip ]; then echo "runner: installing with pip, not uv: $reason"; fi
if [ ! -x "$venv/bin/python" ] && [ "$installer" = uv ]; then
  "$uv" venv --no-python-downloads --python "$(command -v python3)" "$venv"
elif [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ "$installer" = pip ]; then
  exec "$venv/bin/python" -m pip install --cache-dir {PIP_CACHE} --disable-pip-version-check --no-input \\
    --progress-bar off -r "$file" "$@"
fi
if [ -n "${{PIP_INDEX_URL:-}}" ]; then export UV_INDEX_URL="$PIP_INDEX_URL"; fi
if [ -n "${{PIP_EXTRA_INDEX_URL:-}}" ]; then export UV_EXTRA_INDEX_URL="$PIP_EXTRA_INDEX_URL"; fi
if [ -n "${{PIP_TRUSTED_HOST:-}}" ]; then export UV_INSECURE_HOST="$PIP_TRUSTED_HOST"; fi
if grep -qx -- --pre "$file"; then set -- "$@" --prerelease allow; fi
for host in $(sed -n 's/^--trusted-host //p' "$file"); do set -- "$@" --allow-insecure-host "$host"; done
stamp=$(mktemp)
"$uv" pip install --python "$venv/bin/python" --cache-dir {UV_CACHE} --link-mode copy \\
  --index-strategy unsafe-best-match --no-python-downloads -r "$file" "$@"
# Bytecode for what runs, not for the packages' own test suites (often 40% of their files):
# a run imports the compiled modules without compiling them again (the image never writes .pyc).
# Only what this step installed (an earlier layer's files are compiled there); one process per
# share of the files, as a worker pool costs more than a small package's whole compile.
# A file that does not compile (another Python's syntax) stays as it is, as with pip.
site=$(echo "$venv"/lib/python*/site-packages)
find "$site" -name '*.py' -cnewer "$stamp" ! -path '*/tests/*' ! -path '*/test/*' -print0 > "$stamp.new"
share=$(( $(tr -cd '\\000' < "$stamp.new" | wc -c) / $(nproc 2>/dev/null || echo 1) + 1 ))
xargs -0 -r -n "$(( share > 100 ? share : 100 ))" -P 0 "$venv/bin/python" -m compileall -qq < "$stamp.new" ||
  echo "runner: some installed files do not compile for this Python; they were left as they are"
rm -f "$stamp" "$stamp.new"
"""


def render_dockerfile(spec: DockerfileSpec) -> str:
    lines = ["# Generated by runner: do not edit. Same plan, same text."]
    if spec.has_requirements and spec.classic:
        args = "\n".join(f"ARG {name}" for name in INDEX_ARGS)
        lines += [
            f"FROM {spec.base_image} AS deps",
            args,
            f"COPY .runner/deps/ {DEPS_DIR}/",
            # The CA bundle is used for this one command and never copied further.
            f"RUN if [ -s {DEPS_DIR}/ca.pem ]; then export PIP_CERT={DEPS_DIR}/ca.pem; fi \\",
            f" && python3 -m venv {VENV_DIR} \\",
            f" && cd {DEPS_DIR} && {VENV_DIR}/bin/python -m pip install --no-cache-dir"
            " --disable-pip-version-check --no-input --progress-bar off -r requirements.lock",
            "",
            f"FROM {spec.base_image}",
            f"COPY --from=deps {VENV_DIR} {VENV_DIR}",
            f"ENV PATH={VENV_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
    elif spec.has_requirements:
        lines += [
            f"FROM {spec.base_image}",
            f"ENV PATH={VENV_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            *_install_steps(spec),
        ]
    else:
        lines.append(f"FROM {spec.base_image}")
    if spec.runtime:  # before the code: it changes with runner, not with the project
        lines += [f"COPY .runner/runtime/ {RUNTIME_DIR}/", "ENV RUNNER_RUNTIME=1"]
    # No bytecode files: they would show up as artifacts the script "created".
    lines += [
        "ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1",
        f"WORKDIR {PROJECT_DIR}",
        f"COPY project/ {PROJECT_DIR}/",
    ]
    if spec.install_project:
        # The project is an editable install locally.  Installing it here would need
        # the package index (and its CA) in the final stage; putting its source on
        # the path gives the same imports without that.
        lines.append(f"ENV PYTHONPATH={PROJECT_DIR}/src:{PROJECT_DIR}")
    if spec.runtime:  # last on the path (after the base image's and the project's own entries)
        lines.append(f"ENV PYTHONPATH=${{PYTHONPATH:+$PYTHONPATH:}}{RUNTIME_DIR}")
    return "\n".join(lines) + "\n"


def _install_steps(spec: DockerfileSpec) -> list[str]:
    """BuildKit: one layer per heavy family, then the whole lock (the first makes the venv); inputs mounted, not copied."""
    tools = [f"--mount=type=bind,source=.runner/install.sh,target={TOOLS_DIR}/install.sh"]
    if spec.installer is Installer.UV and spec.uv_image:
        tools.append(f"--mount=type=bind,from={spec.uv_image},source=/uv,target={TOOLS_DIR}/uv")
    caches = [
        f"--mount=type=cache,target={UV_CACHE},id=runner-uv",
        f"--mount=type=cache,target={PIP_CACHE},id=runner-pip",
    ]
    secrets = [f"--mount=type=secret,id={SECRET_INDEX}", f"--mount=type=secret,id={SECRET_CA}"]
    who = f"sh {TOOLS_DIR}/install.sh {spec.installer.value} {shlex.quote(spec.pip_reason or '-')}"

    def run(mounts: list[str], command: str) -> str:
        return "RUN " + " \\\n    ".join([*mounts, command])

    steps = []
    for name in spec.layers:
        own = f"--mount=type=bind,source=.runner/layers/{name},target={TOOLS_DIR}/{name}"
        steps.append(run([*tools, own, *secrets, *caches], f"{who} {TOOLS_DIR}/{name} --no-deps"))
    lock = f"--mount=type=bind,source=.runner/deps,target={DEPS_DIR}"
    steps.append(run([*tools, lock, *secrets, *caches], f"{who} {DEPS_DIR}/requirements.lock"))
    return steps


def container_command(script: str, args: tuple[str, ...]) -> list[str]:
    """The command that runs ``script`` (relative to the project root) with ``args`` untouched."""
    interpreter = "bash" if script.endswith(".sh") else "python3"
    return [interpreter, script, *args]


#: Linux refuses to exec a single argument longer than this (MAX_ARG_STRLEN), and all of them together past ARG_MAX.
MAX_ARG_BYTES = 128 * 1024 - 1
MAX_ARGS_TOTAL = 1024 * 1024
ARGV_FILE = "/runner/argv.json"
#: Sets sys.argv (and sys.path[0], as `python SCRIPT` would) from ARGV_FILE and runs the script as __main__.
ARGV_BOOTSTRAP = (
    "import json, os, runpy, sys\n"
    f"sys.argv = json.load(open({ARGV_FILE!r}, encoding='utf-8'))\n"
    "sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def exec_too_long(command: list[str] | tuple[str, ...]) -> bool:
    sizes = [len(a.encode("utf-8", "surrogateescape")) + 1 for a in command]
    return max(sizes, default=0) > MAX_ARG_BYTES or sum(sizes) > MAX_ARGS_TOTAL


def argv_through_file(command: list[str] | tuple[str, ...]) -> tuple[list[str], str]:
    """For arguments too long to exec: a command that reads them from ARGV_FILE, and that file's content.

    Only Python scripts: the bootstrap is Python.  ``sys.argv`` is the same list the script
    would get from ``python3 SCRIPT ARGS...``.
    """
    if command[0] != "python3":
        raise UsageError(
            "arguments too long to pass to a shell script", hint="pass them in a file, or use a .py script"
        )
    return ["python3", "-c", ARGV_BOOTSTRAP], json.dumps(list(command[1:]), ensure_ascii=False)
