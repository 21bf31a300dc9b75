"""The import closure (issue 9): what the script can import is scanned, the root covers
what it reaches, and the working directory mirrors the launch folder."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from runner.deps import project_closure
from runner.deps.scan import _cell_python, scan_notebook, scan_source
from runner.errors import UsageError
from runner.plan import PlanRequest, make_plan
from runner.project import choose_root
from runner.targets.kubernetes.objects import JobSpec, make_job

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _closure(root: Path, script: str, *, cwd: Path | None = None) -> list[str]:
    closure = project_closure(root / script, cwd=cwd or root, roots=[root])
    return [str(Path(f).relative_to(root)) for f in closure.files]


# --------------------------------------------------------------------------- scan facts


def test_path_expressions_are_evaluated() -> None:
    source = """
import os, sys
from pathlib import Path
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.path.join(HERE, "..", "shared"))
sys.path.append(str(ROOT / "libs"))
sys.path.extend(["../vendor", os.path.realpath(os.path.join(os.path.dirname(__file__), "x"))])
sys.path += [Path(__file__).parent.parent / "more"]
sys.path.insert(0, os.getcwd() + "/rel")
sys.path.append(unknown_function())
data = open("../data/train.txt").read()
folder = Path("..") / "data"
plain = os.path.join("..", "..")
note = "see ../README.md"
"""
    result = scan_source(source)
    assert [(b, r) for b, r, _ in result.path_adds] == [
        ("F", "../shared"),
        ("F", "../libs"),
        ("C", "../vendor"),
        ("F", "x"),
        ("F", "../more"),
        ("C", "rel"),
    ]
    reached = [(b, r) for b, r, _ in result.paths]
    assert ("C", "../data/train.txt") in reached
    assert ("C", "../data") in reached
    assert ("C", "..") not in reached and ("C", "../..") not in reached  # a bare parent is not a file
    assert ("F", "..") not in reached  # the parts of a path expression are not paths of their own


def test_relative_imports_are_kept_for_the_closure() -> None:
    result = scan_source("from . import a, b\nfrom ..pkg.mod import x\nfrom .c import *\n")
    assert [(r.level, r.module, r.names) for r in result.relative] == [
        (1, "", ("a", "b")),
        (2, "pkg.mod", ("x",)),
        (1, "c", ()),
    ]
    assert result.imports == ()


def test_notebook_magics_become_pass() -> None:
    cell = ["if fast:\n", "    %timeit f()\n", "else:\n", "    !ls\n", "import numpy\n"]
    assert _cell_python(cell) == "if fast:\n    pass\nelse:\n    pass\nimport numpy\n"
    nb = {"cells": [{"cell_type": "code", "source": cell}]}
    result = scan_notebook(json.dumps(nb).encode())
    assert result.errors == ()
    assert [i.module for i in result.imports] == ["numpy"]


# --------------------------------------------------------------------------- closure


def test_closure_follows_packages_relative_imports_and_stops_at_unreached_files(tmp_path: Path) -> None:
    root = _tree(
        tmp_path / "p",
        {
            "train.py": "import helpers\nfrom pkg.sub import thing\nimport numpy\n",
            "helpers.py": "from pkg import util\n",
            "pkg/__init__.py": "",
            "pkg/util.py": "from .sub.deep import f\nfrom . import helpers_of_pkg\n",
            "pkg/helpers_of_pkg.py": "import yaml\n",
            "pkg/sub/__init__.py": "from .. import util  # a cycle\n",
            "pkg/sub/thing.py": "",
            "pkg/sub/deep.py": "from .thing import x\n",
            "docs/conf.py": "import sphinx_theme\n",
            "unused.py": "import torch\n",
        },
    )
    assert _closure(root, "train.py") == [
        "train.py",
        "helpers.py",
        "pkg/__init__.py",
        "pkg/helpers_of_pkg.py",
        "pkg/sub/__init__.py",
        "pkg/sub/deep.py",
        "pkg/sub/thing.py",
        "pkg/util.py",
    ]


def test_closure_follows_sys_path_folders_in_any_order(tmp_path: Path) -> None:
    root = _tree(
        tmp_path / "p",
        {
            # `common` is imported before the helper that adds its folder is found
            "app/run.py": "import common\nimport setup_paths\n",
            "app/setup_paths.py": "import sys\nfrom pathlib import Path\nsys.path.append(str(Path(__file__).resolve().parents[1] / 'shared'))\n",
            "shared/common.py": "import extra\n",
            "shared/extra.py": "",
            "shared/unrelated.py": "import torch\n",
        },
    )
    closure = project_closure(root / "app/run.py", cwd=root / "app", roots=[root])
    assert [str(Path(f).relative_to(root)) for f in closure.files] == [
        "app/run.py",
        "app/setup_paths.py",
        "shared/common.py",
        "shared/extra.py",
    ]
    assert [Path(d) for d, _, _ in closure.path_dirs] == [root / "shared"]


def test_closure_goes_on_past_a_file_that_does_not_parse(tmp_path: Path) -> None:
    root = _tree(
        tmp_path / "p", {"run.py": "import broken\nimport fine\n", "broken.py": "def (:\n", "fine.py": "import yaml\n"}
    )
    assert _closure(root, "run.py") == ["run.py", "broken.py", "fine.py"]


def test_plan_warns_about_a_closure_file_that_does_not_parse(tmp_path: Path) -> None:
    root = _tree(tmp_path / "p", {"run.py": "import broken\n", "broken.py": "def (:\n", "other.py": "def (:\n"})
    plan = make_plan(PlanRequest(script=root / "run.py", cwd=root), cache_dir=tmp_path / "cache")
    assert plan.closure == ("run.py", "broken.py")
    assert [w.split(":")[0] for w in plan.lock.warnings] == ["broken.py"]  # other.py is not reached: not scanned


# --------------------------------------------------------------------------- root and working directory


def test_root_widens_outside_git_to_what_the_script_reaches(tmp_path: Path) -> None:
    ws = _tree(
        tmp_path / "ws",
        {
            "proj/s.py": "import sys\nsys.path.insert(0, '../shared')\nimport common\nprint(open('../data/train.txt').read())\n",
            "shared/common.py": "",
            "data/train.txt": "x\n",
        },
    )
    plan = make_plan(PlanRequest(script=ws / "proj/s.py", cwd=ws / "proj"), cache_dir=tmp_path / "cache")
    assert plan.root == ws
    assert plan.script == "proj/s.py"
    assert plan.workdir == "proj" and plan.container_workdir == "/project/proj"
    assert plan.command == ("python3", "s.py")
    assert plan.closure == ("proj/s.py", "shared/common.py")
    assert {i.name: i.kind.value for i in plan.lock.imports} == {"common": "local", "sys": "stdlib"}
    assert plan.notices == (
        f"build context widened from {ws / 'proj'} to {ws} to include ../shared (added to sys.path at s.py:2),"
        " ../data/train.txt (named at s.py:4)",
    )


def test_launch_folder_is_the_root_outside_git_and_argv0_is_relative(tmp_path: Path) -> None:
    ws = _tree(tmp_path / "ws", {"a/s.py": "print(1)\n", "b/x.txt": ""})
    plan = make_plan(PlanRequest(script=ws / "a/s.py", cwd=ws / "b"), cache_dir=None)
    assert plan.root == ws and plan.workdir == "b" and plan.command == ("python3", "../a/s.py")
    same = make_plan(PlanRequest(script=ws / "a/s.py", cwd=ws / "a"), cache_dir=None)
    assert same.root == ws / "a" and same.workdir == "" and same.command == ("python3", "s.py") and same.notices == ()


def test_git_root_stays_and_the_workdir_is_the_subfolder(tmp_path: Path) -> None:
    repo = _tree(tmp_path / "repo", {"sub/s.py": "open('config.yaml')\n", "sub/config.yaml": "", "other/x.py": ""})
    (repo / ".git").mkdir()
    plan = make_plan(PlanRequest(script=repo / "sub/s.py", cwd=repo / "sub"), cache_dir=None)
    assert plan.root == repo and plan.workdir == "sub" and plan.command == ("python3", "s.py") and plan.notices == ()
    from_root = make_plan(PlanRequest(script=repo / "sub/s.py", cwd=repo), cache_dir=None)
    assert from_root.workdir == "" and from_root.command == ("python3", "sub/s.py")
    outside = make_plan(PlanRequest(script=repo / "sub/s.py", cwd=tmp_path), cache_dir=None)
    assert outside.root == repo and outside.workdir == "" and outside.command == ("python3", "sub/s.py")
    assert outside.notices and "outside the build context" in outside.notices[0]


def test_a_root_that_would_swallow_the_home_folder_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _tree(tmp_path / "home", {"p/s.py": "", "data/x.txt": ""})
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(UsageError) as err:
        choose_root(home / "p/s.py", cwd=home / "p", needs=[(home / "data/x.txt", "named at s.py:1")])
    assert str(home) in err.value.message and "home folder" in err.value.message
    assert err.value.hint is not None and ".runnerignore" in err.value.hint
    (home / ".runnerignore").write_text("*\n!p/\n!data/\n")
    assert choose_root(home / "p/s.py", cwd=home / "p", needs=[(home / "data/x.txt", "named")]).root == home
    # launched from the home folder itself: the script's folder is the root, not the home folder
    choice = choose_root(home / "p/s.py", cwd=home)
    assert choice.root == home / "p" and choice.workdir == "" and choice.argv0 == "s.py"


def test_job_gets_the_launch_folder_as_working_dir() -> None:
    job = make_job(JobSpec(run="r", experiment="r-0", image="img", command=("python3", "s.py"), workdir="/project/sub"))
    assert job["spec"]["template"]["spec"]["containers"][0]["workingDir"] == "/project/sub"


# --------------------------------------------------------------------------- the monorepo fixture


def _load_fakeenv():  # type: ignore[no-untyped-def]
    name = "deps_fakeenv"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FIXTURES / "deps" / "fakeenv.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fake_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(_load_fakeenv().build(tmp_path_factory.mktemp("fakeenv") / "venv"))


def test_monorepo_script_gets_only_its_closure(fake_python: Path, tmp_path: Path) -> None:
    case = FIXTURES / "closure" / "monorepo"
    expected = json.loads((case / "expected.json").read_text())
    repo = Path(_load_fakeenv().copy_fixture(case / "project", tmp_path / "monorepo"))
    (repo / ".git").mkdir()  # a git work tree: the root is its top
    script = repo / expected["script"]
    req = PlanRequest(script=script, python=str(fake_python), cwd=script.parent)
    plan = make_plan(req, cache_dir=tmp_path / "cache")
    assert plan.root == repo
    assert list(plan.closure) == expected["closure"]
    assert plan.lock.text() == (case / "expected.lock").read_text()
    assert list(plan.lock.warnings) == expected["warnings"]
    assert {i.name: i.kind.value for i in plan.lock.imports} == expected["imports"]
    assert plan.workdir == "vision" and plan.command == ("python3", "train.py")
    assert "docs/conf.py" in plan.files.files  # the build context is still the whole repository
    # cached: same lock; a new module next to the script that train.py now imports is a miss
    assert make_plan(req, cache_dir=tmp_path / "cache").lock == plan.lock
    (repo / "vision/extra.py").write_text("import cv2\n")
    with open(script, "a") as fh:
        fh.write("import extra\n")
    again = make_plan(req, cache_dir=tmp_path / "cache")
    assert "opencv-python==4.8.1.78" in again.lock.text()


def test_a_cached_plan_parses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import runner.deps.scanstore as scanstore

    root = _tree(tmp_path / "p", {"run.py": "import helpers\n", "helpers.py": "import json\n"})
    req = PlanRequest(script=root / "run.py", cwd=root)
    first = make_plan(req, cache_dir=tmp_path / "cache")

    def no_parse(*args: object, **kwargs: object) -> object:
        raise AssertionError("parse on the hot path")

    monkeypatch.setattr(scanstore, "scan_file_bytes", no_parse)
    assert make_plan(req, cache_dir=tmp_path / "cache").lock == first.lock


def test_the_cached_closure_sees_a_new_module_and_a_new_data_folder(tmp_path: Path) -> None:
    root = _tree(
        tmp_path / "p", {"app/run.py": "import later\nimport sys\nsys.path.append('../libs')\nopen('../data/x')\n"}
    )
    cache = tmp_path / "cache"

    def closure() -> tuple[list[str], list[str], list[str]]:
        c = project_closure(root / "app/run.py", cwd=root / "app", roots=[root], cache_dir=cache)
        return (
            [str(Path(f).relative_to(root)) for f in c.files],
            [str(Path(d).relative_to(root)) for d, _, _ in c.path_dirs],
            [str(Path(p).relative_to(root)) for p, _, _ in c.reached],
        )

    assert closure() == (["app/run.py"], [], [])
    assert closure() == (["app/run.py"], [], [])  # cached
    _tree(root, {"app/later.py": "import helper\n", "app/helper.py": ""})
    assert closure() == (["app/run.py", "app/helper.py", "app/later.py"], [], [])
    _tree(root, {"libs/extra.py": "", "data/x": ""})
    assert closure() == (["app/run.py", "app/helper.py", "app/later.py"], ["libs"], ["data/x"])
    (root / "app/later.py").write_text("import extra\n")  # same folder listing, new content
    assert closure()[0] == ["app/run.py", "app/later.py", "libs/extra.py"]


def test_sys_path_folders_widen_the_root_only_when_something_is_imported_from_them(tmp_path: Path) -> None:
    ws = _tree(
        tmp_path / "ws",
        {
            "proj/s.py": "import os, sys\nsys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))\n"
            "sys.path.append('/usr/lib/python3/dist-packages')\nimport json\n",
            "other/big.bin": "",
        },
    )
    plan = make_plan(PlanRequest(script=ws / "proj/s.py", cwd=ws / "proj"), cache_dir=None)
    assert plan.root == ws / "proj" and plan.notices == ()


def test_m_style_layout_resolves_the_package_from_the_root(tmp_path: Path) -> None:
    root = _tree(
        tmp_path / "p",
        {
            "pkg/__init__.py": "",
            "pkg/core.py": "from .util import g\n",
            "pkg/util.py": "",
            "pkg/tools/__init__.py": "",
            "pkg/tools/run.py": "from pkg.core import f\nfrom . import sibling\n",
            "pkg/tools/sibling.py": "",
            "src/lib/__init__.py": "import json\n",
            "pkg/tools/uses_src.py": "import lib\n",
        },
    )
    assert _closure(root, "pkg/tools/run.py") == [
        "pkg/tools/run.py",
        "pkg/__init__.py",
        "pkg/core.py",
        "pkg/tools/__init__.py",
        "pkg/tools/sibling.py",
        "pkg/util.py",
    ]
    assert _closure(root, "pkg/tools/uses_src.py") == ["pkg/tools/uses_src.py", "src/lib/__init__.py"]
