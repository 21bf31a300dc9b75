"""runner's in-container runtime: one stdlib-only file, the same functions as the installed runner."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import runner
import runner.runtime as runtime
import runner.sweep as sweep
from runner.plan import RUNTIME_ENTRY, RUNTIME_SOURCE, PlanRequest, make_plan
from runner.render import DockerfileSpec, render_dockerfile


def test_one_source_of_truth_for_typecast() -> None:
    assert runner.typecast is runtime.typecast is sweep.typecast
    assert runner.params is runtime.params and runner.experiment_name is runtime.experiment_name


def test_the_runtime_imports_only_the_standard_library() -> None:
    tree = ast.parse(RUNTIME_SOURCE.read_text())
    imported = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in (n.names if isinstance(n, ast.Import) else [n.names[0]])
        if not (isinstance(n, ast.ImportFrom) and n.module is None)
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_params_and_names_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("RUNNER_RUN", "RUNNER_EXPERIMENT", "RUNNER_PARAMS"):
        monkeypatch.delenv(k, raising=False)
    assert (runtime.run_name(), runtime.experiment_name(), runtime.params()) == (None, None, {})
    env = runtime.env_for("brave-owl-1", "brave-owl-1-exp3", {"--lr": "0.01", "arg2": "[64, 32]", "--opt": "adam"})
    assert json.loads(env["RUNNER_PARAMS"]) == {"--lr": "0.01", "arg2": "[64, 32]", "--opt": "adam"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert runtime.run_name() == "brave-owl-1" and runtime.experiment_name() == "brave-owl-1-exp3"
    assert runtime.params() == {"--lr": 0.01, "arg2": [64, 32], "--opt": "adam"}
    monkeypatch.setenv("RUNNER_PARAMS", "not json")
    assert runtime.params() == {}


def test_the_shipped_file_alone_is_the_runner_module(tmp_path: Path) -> None:
    """As in the image: the file as runner/__init__.py on PYTHONPATH, nothing else of runner importable."""
    pkg = tmp_path / "rt" / "runner"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_bytes(RUNTIME_SOURCE.read_bytes())
    code = (
        "import sys, runner\n"
        "print(runner.__file__)\n"
        "print(runner.typecast(['0.5', '[1, 2]', 'x']), runner.params(), runner.in_container())\n"
        "try:\n    runner.submit\nexcept AttributeError as e:\n    print('ERR', e)\n"
    )
    env = {"PYTHONPATH": str(tmp_path / "rt"), "RUNNER_PARAMS": '{"--lr": "0.1"}', "RUNNER_RUNTIME": "1"}
    # runner is installed in this interpreter too: PYTHONPATH comes first, as in the image
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == str(pkg / "__init__.py")
    assert lines[1] == "[0.5, [1, 2], 'x'] {'--lr': 0.1} True"
    assert lines[2].startswith("ERR runner.submit is not available inside a runner container")


def test_dockerfile_ships_the_runtime_after_the_project_folders() -> None:
    text = render_dockerfile(DockerfileSpec(base_image="b", has_requirements=False, install_project=True, runtime=True))
    assert "COPY .runner/runtime/ /opt/runner/runtime/\n" in text
    assert text.index("COPY .runner/runtime/") < text.index("COPY project/")
    assert text.endswith(
        "ENV PYTHONPATH=/project/src:/project\nENV PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}/opt/runner/runtime\n"
    )
    assert "runtime" not in render_dockerfile(DockerfileSpec(base_image="b", has_requirements=False))


def test_plan_ships_the_runtime_only_when_the_project_imports_runner(tmp_path: Path) -> None:
    (tmp_path / "worker.py").write_text("import sys\nimport runner\nprint(runner.typecast(sys.argv[1:]))\n")
    (tmp_path / "plain.py").write_text("print('hi')\n")
    # the person's interpreter is the test's: whatever it has installed, `runner` is never pinned
    plan = make_plan(PlanRequest(script=tmp_path / "worker.py", python=sys.executable), cache_dir=None)
    entries = {e.arcname: e for e in plan.entries}
    assert entries[RUNTIME_ENTRY].source == RUNTIME_SOURCE
    assert "ENV PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}/opt/runner/runtime" in plan.dockerfile
    assert not [r for r in plan.lock.requirements if r.name in ("runner", "typer", "docker", "kubernetes")]
    (tmp_path / "worker.py").write_text("print('no runner')\n")
    plain = make_plan(PlanRequest(script=tmp_path / "plain.py", python=sys.executable), cache_dir=None)
    assert RUNTIME_ENTRY not in {e.arcname for e in plain.entries} and "runtime" not in plain.dockerfile


def test_a_declared_runner_line_stays_out_of_the_image(tmp_path: Path) -> None:
    """The seed's requirements.txt lists runner (the starter needs it locally): the image gets the runtime instead."""
    from test_deps_fixtures import FIXTURES, FakeIndex, fakeenv  # noqa: E402  (same folder)

    from runner.deps import lock_project
    from runner.project import list_files

    python = fakeenv.build(tmp_path / "venv")  # runner is installed there, with typer, docker...
    project = fakeenv.copy_fixture(FIXTURES / "runner_declared" / "project", tmp_path / "p")
    lock = lock_project(project, list_files(project).files, "worker.py", python=str(python), index=FakeIndex({}))
    assert lock.origin == "requirements.txt"
    assert lock.text() == "pyyaml==6.0.1\n"
    assert any(n.startswith("runner: listed at requirements.txt:") and "left out of the image" in n for n in lock.notes)
    assert lock.uses_runtime
