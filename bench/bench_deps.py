"""Benchmark: runner's dependency lock against the ``pipreqs`` command.

    .venv/bin/python bench/bench_deps.py [--files 2000] [--no-pypi]

Both tools look at the same projects and the same environment:

* the environment is a real venv holding the fake distributions of the test
  fixtures (``tests/fixtures/deps/fakeenv.py``: numpy/scipy/scikit-learn without
  ``top_level.txt``, cv2, PIL, yaml, google.* namespace packages, a ``+cpu`` torch...);
* pipreqs runs in that venv's interpreter, importing its own code from a folder of
  links to runner's dev venv that holds no ``*.dist-info`` (so ``--use-local`` sees
  the same installed set runner sees, and nothing else);
* the projects are the scan fixtures (``tests/fixtures/deps/*``, expected sets from
  their ``expected.lock``) and a generated tree of ~2,000 files (``gen_tree.py``),
  once with two Python 2 files and a project-local ``.venv`` ("tree") and once
  without the Python 2 files ("tree-clean"), so pipreqs' accuracy can be measured
  where it does not crash.

Figures per project and tool: recall and precision of the distribution set against
the expected lock (``direct`` = distributions of imports, ``lock`` = with the
transitive closure), share of pins equal to the locally installed version, crash,
wall time (each tool as a fresh process; runner cold = empty cache, warm = cached, best of 5).
pipreqs without ``--use-local`` asks PyPI (network); ``--no-pypi`` leaves it out.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURES = REPO / "tests" / "fixtures" / "deps"
DEV_SITE = next((REPO / ".venv" / "lib").glob("python3*/site-packages"))
SCAN_CASES = (
    "aliases",
    "data_folders",
    "fallbacks",
    "latin1",
    "local_venv",
    "namespace",
    "notebook",
    "pins",
    "py2_syntax",
    "shadow",
    "single_file",
)
SCRIPTS = {"notebook": "run.py"}

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _load(name: str, path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fakeenv = _load("bench_fakeenv", FIXTURES / "fakeenv.py")
gen_tree = _load("bench_gen_tree", HERE / "gen_tree.py")


def parse_lock(text: str) -> dict[str, str | None]:
    """name -> version (None for URL lines) of a requirements text."""
    out: dict[str, str | None] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("-", "#")):
            continue
        m = _NAME.match(line)
        if not m:
            continue
        version = None
        v = re.search(r"===?\s*([^\s;,]+)", line)
        if v and "@" not in line.split("==")[0]:
            version = v.group(1)
        out[normalize(m.group(1))] = version
    return out


@dataclass
class Result:
    tool: str
    project: str
    found: dict[str, str | None]
    seconds: float
    crashed: bool
    detail: str = ""


def shim_folder(where: Path) -> Path:
    """pipreqs' own code (links to runner's dev venv) invisible to ``--use-local``.

    Package folders are symlinks (``os.walk`` does not follow them) and the metadata
    folders are copied without ``top_level.txt`` (what ``--use-local`` reads), so
    nbconvert still finds its packages' versions but pipreqs sees no extra install.
    """
    where.mkdir(parents=True, exist_ok=True)
    for entry in DEV_SITE.iterdir():
        if entry.name.endswith(".pth") or entry.name == "__pycache__":
            continue
        link = where / entry.name
        if entry.name.endswith((".dist-info", ".egg-info")) and entry.is_dir():
            link.mkdir(exist_ok=True)
            for f in entry.iterdir():
                if f.name != "top_level.txt" and not (link / f.name).exists():
                    os.symlink(f, link / f.name)
        elif not link.exists():
            os.symlink(entry, link)
    return where


def run_pipreqs(python: Path, shim: Path, project: Path, *, use_local: bool) -> Result:
    out = project.parent / f"pipreqs-{project.name}-{'local' if use_local else 'pypi'}.txt"
    args = [
        str(python),
        "-c",
        "import sys; from pipreqs.pipreqs import main; sys.exit(main())",
        "--savepath",
        str(out),
        "--scan-notebooks",
    ]
    # pipreqs' default server (pypi.python.org) is a redirect; ask pypi.org directly
    args += ["--use-local"] if use_local else ["--pypi-server", "https://pypi.org/pypi/"]
    args.append(str(project))
    env = dict(
        os.environ,
        PYTHONPATH=str(shim),
        JUPYTER_PATH=str(REPO / ".venv" / "share" / "jupyter"),  # nbconvert templates of the linked code
        REQUESTS_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt",
    )
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    seconds = time.perf_counter() - start
    tool = "pipreqs --use-local" if use_local else "pipreqs (PyPI)"
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return Result(tool, project.name, {}, seconds, True, tail[:60])
    found = parse_lock(out.read_text())
    out.unlink()
    return Result(tool, project.name, found, seconds, False)


# What `runner inspect SCRIPT` does for the lock, launched from the project folder: the
# script's import closure, the root, the build-context walk, the lock (offline: the fixtures'
# missing imports are not looked up).
RUNNER_DRIVER = """
import sys, json
from pathlib import Path
from runner.deps import lock_project
from runner.plan import _root
from runner.project import list_files
root, script, python, cache = sys.argv[1:5]
path = Path(root).resolve() / script
choice, closure, search = _root(path, path.parent, Path(cache))
files = sorted({*list_files(choice.root).files, *closure})
lock = lock_project(choice.root, files, path.relative_to(choice.root).as_posix(), python=python,
                    cache_dir=Path(cache), offline=True, scan=closure, search=search)
sys.stdout.write(lock.text())
"""


def run_runner(project: Path, script: str, python: Path, cache: Path, label: str, *, repeat: int = 1) -> Result:
    """``repeat`` > 1 (warm): the best of that many runs, so a busy machine measures runner, not its neighbours."""
    seconds = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER_DRIVER, str(project), script, str(python), str(cache)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        seconds = min(seconds, time.perf_counter() - start)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return Result(label, project.name, {}, seconds, True, tail[:60])
    return Result(label, project.name, parse_lock(proc.stdout), seconds, False)


def score(result: Result, direct: set[str], full: set[str], local: dict[str, str]) -> dict[str, str]:
    found = set(result.found)
    if result.crashed:
        return {"direct recall": "-", "lock recall": "-", "precision": "-", "local pins": "-"}

    def ratio(a: int, b: int) -> str:
        return f"{a}/{b}"

    pinned = [n for n, v in result.found.items() if n in local and v is not None]
    same = [n for n in pinned if result.found[n] == local[n] or result.found[n] == local[n].split("+")[0]]
    return {
        "direct recall": ratio(len(found & direct), len(direct)),
        "lock recall": ratio(len(found & full), len(full)),
        "precision": ratio(len(found & full), len(found)),
        "local pins": ratio(len(same), len(pinned)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=2000, help="size of the generated tree")
    parser.add_argument("--no-pypi", action="store_true", help="skip pipreqs without --use-local (it asks PyPI)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-deps-"))
    python = fakeenv.build(work / "env")
    local = {normalize(d.name): d.version for d in fakeenv.DISTS}
    shim = shim_folder(work / "pipreqs-code")

    projects: list[tuple[str, Path, str, set[str], set[str]]] = []
    for case in SCAN_CASES:
        dest = fakeenv.copy_fixture(FIXTURES / case / "project", work / "projects" / case)
        # the fixtures' expected sets assume the index answers wandb/requests; the bench is offline for runner
        expected = parse_lock((FIXTURES / case / "expected.lock").read_text())
        expected_json = json.loads((FIXTURES / case / "expected.json").read_text())
        index_pins = {
            normalize(w.split("pinned ")[1].split("==")[0]) for w in expected_json["warnings"] if " pinned " in w
        }
        full = set(expected) - index_pins
        direct = {n for n in full if n in _direct_names(expected_json, local)}
        projects.append((case, dest, SCRIPTS.get(case, "train.py"), direct, full))
    for name, py2 in (("tree", True), ("tree-clean", False)):
        dest = work / "projects" / name
        spec = gen_tree.generate(dest, files=args.files, seed=7, python2_files=py2)
        projects.append((name, dest, spec.script, spec.direct, spec.full))

    rows: list[tuple[str, Result, dict[str, str]]] = []
    totals: dict[str, float] = {}
    for case, dest, script, direct, full in projects:
        cache = work / "cache" / case
        results = [
            run_runner(dest, script, python, cache, "runner (cold)"),
            run_runner(dest, script, python, cache, "runner (warm)", repeat=5),
            run_pipreqs(python, shim, dest, use_local=True),
        ]
        if not args.no_pypi:
            results.append(run_pipreqs(python, shim, dest, use_local=False))
        for r in results:
            rows.append((case, r, score(r, direct, full, local)))
            totals[r.tool] = totals.get(r.tool, 0.0) + r.seconds
    print_table(rows)
    print()
    print("total wall time per tool:")
    for tool, seconds in totals.items():
        print(f"  {tool:22s} {seconds:8.2f} s")
    base = totals.get("pipreqs --use-local")
    if base:
        for tool in ("runner (cold)", "runner (warm)"):
            print(f"  pipreqs --use-local / {tool}: {base / totals[tool]:.1f}x")
    if "pipreqs (PyPI)" in totals:
        for tool in ("runner (cold)", "runner (warm)"):
            print(f"  pipreqs (PyPI) / {tool}: {totals['pipreqs (PyPI)'] / totals[tool]:.1f}x")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _direct_names(expected_json: dict[str, object], local: dict[str, str]) -> set[str]:
    """Distributions of the imports of a fixture (from its expected import kinds and the fake env)."""
    imports = expected_json["imports"]
    assert isinstance(imports, dict)
    tops = {name for name, kind in imports.items() if kind == "third_party"}
    out: set[str] = set()
    for d in fakeenv.DISTS:
        owned = {m.split("/")[0].removesuffix(".py") for m in d.modules}
        dotted = {".".join(m.rstrip("/").split("/")[:2]) for m in d.modules}
        if owned & tops or dotted & tops:
            out.add(normalize(d.name))
    return out


def print_table(rows: list[tuple[str, Result, dict[str, str]]]) -> None:
    header = ("project", "tool", "direct recall", "lock recall", "precision", "local pins", "crash", "seconds")
    lines = [header]
    for case, r, s in rows:
        lines.append(
            (
                case,
                r.tool,
                s["direct recall"],
                s["lock recall"],
                s["precision"],
                s["local pins"],
                f"yes: {r.detail}" if r.crashed else "no",
                f"{r.seconds:.2f}",
            )
        )
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header) - 1)]
    for row in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(row[:-1], widths)) + "  " + str(row[-1]).rjust(7))


if __name__ == "__main__":
    raise SystemExit(main())
