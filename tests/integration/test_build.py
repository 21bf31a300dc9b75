"""Image builds on the real engine: uv through BuildKit, the pip fallback, the installer cache, no BuildKit."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

from support import Runner, run_name

Project = Callable[[dict[str, str]], Path]


def build_steps(log: str) -> dict[str, list[str]]:
    """A BuildKit plain-progress log (``runner logs RUN --build``): each step's title -> its lines."""
    titles: dict[str, str] = {}
    steps: dict[str, list[str]] = {}
    for line in log.splitlines():
        m = re.match(r"^(?:\[build\] )?(#\d+) (.*)$", line)
        if not m:
            continue
        sid, rest = m.groups()
        if sid not in titles and rest.startswith("["):
            titles[sid] = rest
            steps[rest] = []
        elif sid in titles:
            steps[titles[sid]].append(rest)
    return steps


def step(steps: dict[str, list[str]], needle: str) -> list[str]:
    return next(lines for title, lines in steps.items() if needle in title and "RUN" in title)


def probe_wheel(folder: Path, marker: str) -> Path:
    """A tiny pure-Python wheel whose bytes are unique to this test run: the lock step cannot come from an old build."""
    name, version = "runnerprobe", "0.0.1"
    files = {
        "runnerprobe/__init__.py": f"MARKER = {marker!r}\n".encode(),
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: runner-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = (
        "".join(
            f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
            for path, data in files.items()
        )
        + f"{name}-{version}.dist-info/RECORD,,\n"
    )
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for arc, data in [*files.items(), (f"{name}-{version}.dist-info/RECORD", record.encode())]:
            zf.writestr(arc, data)
    return path


def assert_compiled(image: str) -> None:
    """Each install step compiled what it installed (numpy in its family layer, the rest in the lock's), not tests."""
    site = "/opt/runner/venv/lib/python3.11/site-packages"
    script = (
        f"cd {site} && ls numpy/__pycache__ tqdm/__pycache__ runnerprobe/__pycache__ numpy/core/tests/__pycache__ 2>&1;"
        " find numpy tqdm runnerprobe -name '*.py' ! -path '*/tests/*' | while read f; do"
        ' pyc="$(dirname $f)/__pycache__/$(basename $f .py).cpython-311.pyc"; [ -f "$pyc" ] || echo "MISSING $pyc"; done'
    )
    out = subprocess.run(["docker", "run", "--rm", image, "sh", "-c", script], capture_output=True, text=True).stdout
    assert "MISSING" not in out and "core/tests/__pycache__': No such file" in out, out
    assert "__init__.cpython-311.pyc" in out and "std.cpython-311.pyc" in out, out


APP = (
    "import runnerprobe, six, tqdm, numpy\nprint('versions', tqdm.__version__, numpy.__version__, runnerprobe.MARKER)\n"
)


def test_uv_installs_and_a_bump_downloads_only_the_bumped_package(runner: Runner, project: Project) -> None:
    marker = str(uuid.uuid4())
    root = project({"app.py": APP})
    probe_wheel(root, marker)
    req = root / "req.txt"
    req.write_text("six==1.16.0\ntqdm==4.66.4\nnumpy==1.26.4\n./runnerprobe-0.0.1-py3-none-any.whl\n")
    first = runner("run", "--local", "--requirements", str(req), str(root / "app.py"))
    assert first.code == 0, first.err
    assert f"versions 4.66.4 1.26.4 {marker}" in first.out
    log = runner("logs", run_name(first.err), "--build").out
    assert "installing with pip" not in log and "BuildKit is not available" not in log
    steps = build_steps(log)
    assert any(
        "Using Python 3" in ln and "/opt/runner/venv" in ln for ln in step(steps, "requirements.lock")
    )  # uv's words
    assert any(ln.endswith("+ numpy==1.26.4") or "CACHED" in ln for ln in step(steps, "5-arrays.txt"))
    # uv comes from its tools image, not the build context; bytecode for the packages, not for their tests
    assert "from=runner-uv:" in (runner.home / "runs" / run_name(first.err) / "Dockerfile").read_text()
    image = next(ln.split()[1] for ln in first.err.splitlines() if ln.startswith("image "))
    assert_compiled(image)

    req.write_text("six==1.16.0\ntqdm==4.66.5\nnumpy==1.26.4\n./runnerprobe-0.0.1-py3-none-any.whl\n")
    bumped = runner("run", "--local", "--requirements", str(req), str(root / "app.py"))
    assert bumped.code == 0, bumped.err
    assert f"versions 4.66.5 1.26.4 {marker}" in bumped.out
    steps = build_steps(runner("logs", run_name(bumped.err), "--build").out)
    assert step(steps, "5-arrays.txt") == ["CACHED"]  # numpy's layer is reused as it is
    lock = step(steps, "requirements.lock")
    # uv says "Prepared N" for what it had to fetch or unpack, and nothing when the cache held it all
    prepared = next((int(m.group(1)) for ln in lock if (m := re.search(r"Prepared (\d+) packages?", ln))), 0)
    installed = next(int(m.group(1)) for ln in lock if (m := re.search(r"Installed (\d+) packages?", ln)))
    # six, tqdm and the probe are installed; the cache served all but the bumped tqdm (and the local wheel)
    assert installed == 3 and prepared <= 2, lock
    assert any(ln.endswith("+ tqdm==4.66.5") for ln in lock) and not any("numpy" in ln for ln in lock)
    assert_compiled(next(ln.split()[1] for ln in bumped.err.splitlines() if ln.startswith("image ")))


def test_pip_installs_a_lock_uv_cannot_take_and_the_log_says_why(runner: Runner, project: Project) -> None:
    marker = str(uuid.uuid4())
    root = project(
        {
            "app.py": "import runnerprobe, six\nprint('six', six.__version__, runnerprobe.MARKER)\n",
            "req.txt": "--prefer-binary\nsix==1.16.0\n./runnerprobe-0.0.1-py3-none-any.whl\n",
        }
    )
    probe_wheel(root, marker)
    r = runner("run", "--local", "--requirements", str(root / "req.txt"), str(root / "app.py"))
    assert r.code == 0, r.err
    assert r.out == f"six 1.16.0 {marker}\n"
    log = runner("logs", run_name(r.err), "--build").out
    lock = step(build_steps(log), "requirements.lock")
    assert (
        "runner: installing with pip, not uv: the lock asks for --prefer-binary, which uv has no equivalent of"
        in "\n".join(lock)
    )
    assert any("Successfully installed" in ln and "six-1.16.0" in ln for ln in lock), lock


def test_without_buildkit_the_classic_builder_builds_and_says_why(
    runner: Runner, project: Project, tmp_path: Path
) -> None:
    # the adapter's seam: a Docker CLI that cannot build with BuildKit (here: none at that path)
    root = project(
        {"app.py": f"# {uuid.uuid4()}\nimport six\nprint('six', six.__version__)\n", "req.txt": "six==1.16.0\n"}
    )
    missing = tmp_path / "no-such-docker"
    r = runner(
        "run",
        "--local",
        "--requirements",
        str(root / "req.txt"),
        str(root / "app.py"),
        env={"RUNNER_DOCKER_CLI": str(missing)},
    )
    assert r.code == 0, r.err
    assert r.out == "six 1.16.0\n"
    log = runner("logs", run_name(r.err), "--build").out.splitlines()
    assert log[0] == (
        f"[build] runner: BuildKit is not available ({missing} does not run ([Errno 2] No such file or directory: "
        f"'{missing}')): building with the classic builder instead (pip, no installer cache, the whole environment "
        "in one layer). For fast builds use a Docker CLI that builds with BuildKit: Docker's own client up to 22.10, "
        "or 23 and later with the buildx plugin (RUNNER_DOCKER_CLI=PATH picks one)."
    )
    assert any(ln.startswith("[build] Step 1/") for ln in log)  # the classic builder's own log
