"""`runner run --local` end to end on the real Docker engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import ARGECHO, TRICKY, Runner, run_name
from test_build import build_steps

Project = Callable[[dict[str, str]], Path]


def argv_line(out: str) -> list[str]:
    line = next(ln for ln in out.splitlines() if ln.startswith("ARGV "))
    return list(json.loads(line[5:]))


def test_arguments_reach_the_script_byte_for_byte(runner: Runner, project: Project) -> None:
    root = project({"argecho.py": ARGECHO})
    local = subprocess.run([sys.executable, "argecho.py", *TRICKY], cwd=root, capture_output=True, text=True)
    r = runner("run", "--local", str(root / "argecho.py"), *TRICKY)
    assert r.code == 0, r.err
    assert argv_line(r.out) == argv_line(local.stdout) == ["argecho.py", *TRICKY]
    assert "CWD /project" in r.out
    assert "to stderr" in r.err


def test_second_identical_run_is_cached_and_builds_nothing(runner: Runner, project: Project, docker_api: Any) -> None:
    root = project({"hello.py": "print('hello')\n"})
    first = runner("run", "--local", str(root / "hello.py"))
    assert first.code == 0, first.err
    images_before = {i.id for i in docker_api.images.list(all=True)}
    second = runner("run", "--local", str(root / "hello.py"))
    assert second.code == 0 and second.out == "hello\n"
    assert "(cached)" in second.err and "build |" not in second.err
    assert {i.id for i in docker_api.images.list(all=True)} == images_before
    run = run_name(second.err)
    assert runner("logs", run, "--build").out == ""  # nothing was built for it


def test_code_change_rebuilds_only_the_code_layer(runner: Runner, project: Project) -> None:
    # yaml is installed in the user's interpreter (PyYAML), so the lock pins it and the image installs it
    # a marker unique to this test run, so the code layer cannot be in the engine's cache already
    marker = f"# {uuid.uuid4()}\n"
    root = project({"app.py": marker + "import yaml\nprint(yaml.safe_dump({'v': 1}).strip())\n"})
    first = runner("run", "--local", str(root / "app.py"))
    assert first.code == 0, first.err
    assert first.out == "v: 1\n"
    (root / "app.py").write_text(marker + "import yaml\nprint(yaml.safe_dump({'v': 2}).strip())\n")
    second = runner("run", "--local", str(root / "app.py"))
    assert second.code == 0, second.err
    assert second.out == "v: 2\n"
    steps = build_steps(runner("logs", run_name(second.err), "--build").out)
    lock_step = next(lines for title, lines in steps.items() if "requirements.lock" in title)
    code_step = next(lines for title, lines in steps.items() if "COPY project/" in title)
    assert "CACHED" in lock_step, steps
    assert "CACHED" not in code_step


def test_failure_exit_code_logs_and_status(runner: Runner, project: Project) -> None:
    root = project({"fail.py": "import sys\nprint('out line')\nprint('err line', file=sys.stderr)\nsys.exit(3)\n"})
    r = runner("run", "--local", str(root / "fail.py"))
    assert r.code == 3
    run = run_name(r.err)
    logs = runner("logs", f"{run}-exp0").out.splitlines()
    out = [ln for ln in logs if ln.startswith("[stdout]")]
    err = [ln for ln in logs if ln.startswith("[stderr]")]
    assert len(out) == 1 and out[0].endswith("] out line")
    assert len(err) == 1 and err[0].endswith("] err line")
    assert out[0][len("[stdout] [") :].split("]")[0].endswith("+00:00")
    doc: Any = runner.json("status", run)
    assert doc["status"] == "failed"
    assert doc["experiment_list"][0]["exit_code"] == 3
    hist: Any = runner.json("history")
    assert [(h["run"], h["failed"]) for h in hist] == [(run, 1)]


def test_artifacts_are_collected_and_laid_out(runner: Runner, project: Project, tmp_path: Path) -> None:
    root = project({"argecho.py": ARGECHO, "data/keep.txt": "unchanged\n"})
    r = runner("run", "--local", str(root / "argecho.py"), "--arg1", "1")
    assert r.code == 0, r.err
    run = run_name(r.err)
    dest = tmp_path / "dl"
    a = runner("artifacts", run, "--download-dir", str(dest))
    assert a.code == 0, a.err
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == [f"{run}/{run}-exp0/logs/out.json"]
    assert json.loads((dest / run / f"{run}-exp0/logs/out.json").read_text()) == ["argecho.py", "--arg1", "1"]


def test_shell_scripts_run(runner: Runner, project: Project) -> None:
    root = project({"job.sh": 'echo "sh: $0 $# [$1] [$2]"\n'})
    r = runner("run", "--local", str(root / "job.sh"), "a b", "")
    assert r.code == 0, r.err
    assert r.out == "sh: job.sh 2 [a b] []\n"


def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("timed out")


SLOW = """\
import os, sys, time
os.makedirs("out", exist_ok=True)
open("out/started.txt", "w").write("yes")
print("started", flush=True)
time.sleep(float(sys.argv[1]))
print("finished", flush=True)
"""


def test_detach_then_follow_logs(runner: Runner, project: Project) -> None:
    root = project({"slow.py": SLOW})
    r = runner("run", "--local", "--detach", str(root / "slow.py"), "2")
    assert r.code == 0, r.err
    run = run_name(r.err)
    follow = runner("logs", f"{run}-exp0", "--follow", timeout=60)
    texts = [ln.split("] ", 2)[-1] for ln in follow.out.splitlines()]
    assert texts == ["started", "finished"]
    doc: Any = runner.json("status", run)
    assert doc["status"] == "completed"
    assert runner("logs", run, "--tail", "1").out.splitlines()[-1].endswith("] finished")


def test_stop_keeps_artifacts(runner: Runner, project: Project, tmp_path: Path) -> None:
    root = project({"slow.py": SLOW})
    run = run_name(runner("run", "--local", "--detach", str(root / "slow.py"), "300").err)
    wait_for(lambda: "started" in runner("logs", f"{run}-exp0").out)
    s = runner("stop", run)
    assert s.code == 0 and f"{run}-exp0" in s.out
    wait_for(lambda: runner.json("status", run)["status"] == "stopped")  # type: ignore[index]
    runner("artifacts", run, "--download-dir", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / run / f"{run}-exp0" / "out/started.txt").read_text() == "yes"


def test_killed_cli_leaves_history_consistent_and_logs_complete(runner: Runner, project: Project) -> None:
    root = project({"slow.py": SLOW})
    p = runner.popen("run", "--local", str(root / "slow.py"), "3")
    assert p.stderr is not None
    name = ""
    for line in p.stderr:  # wait until it is running
        if line.startswith("run "):
            name = line.split()[1]
        if line.startswith("resources"):
            break
    wait_for(lambda: "started" in runner("logs", f"{name}-exp0").out)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    hist: Any = runner.json("history")
    assert [h["run"] for h in hist] == [name]
    # someone takes the orphan over: it ends as completed with its whole log
    wait_for(lambda: runner.json("status", name)["status"] == "completed")  # type: ignore[index]
    texts = [ln.split("] ", 2)[-1] for ln in runner("logs", f"{name}-exp0").out.splitlines()]
    assert texts == ["started", "finished"]


def test_parallel_runs_get_distinct_names(runner: Runner, project: Project) -> None:
    root = project({"hello.py": "print('hi')\n"})
    assert runner("run", "--local", str(root / "hello.py")).code == 0  # build once
    procs = [runner.popen("run", "--local", str(root / "hello.py")) for _ in range(3)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    names = {run_name(err) for _, err in results}
    assert len(names) == 3
    hist: Any = runner.json("history")
    assert len(hist) == 4 and all(h["completed"] == 1 for h in hist)


def test_bad_input_is_one_line_exit_2_and_records_nothing(runner: Runner, project: Project) -> None:
    root = project({"notes.txt": "x", "pkg/__init__.py": ""})
    for target, words in [
        (root / "missing.py", "script not found"),
        (root / "pkg", "is a directory"),
        (root / "notes.txt", "only .py and .sh"),
    ]:
        r = runner("run", "--local", str(target))
        assert r.code == 2, r.err
        assert words in r.err and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert runner.json("history") == []


def test_engine_not_running_says_how_to_start_it(runner: Runner, project: Project) -> None:
    root = project({"hello.py": "print(1)\n"})
    r = runner("run", "--local", str(root / "hello.py"), env={"DOCKER_HOST": "unix:///tmp/no-such-docker.sock"})
    assert r.code == 1
    assert "Docker engine is not running" in r.err and "start it" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_missing_base_image_points_to_the_recipe(runner: Runner, project: Project) -> None:
    root = project({"hello.py": "print(1)\n"})
    r = runner("run", "--local", "--base-image", "runner-test-absent:0", str(root / "hello.py"))
    assert r.code == 1
    assert "runner-test-absent:0 is not present and cannot be pulled" in r.err
    assert "images/python/build.sh" in r.err


def test_build_failure_shows_step_and_tail_and_records_failure(runner: Runner, project: Project) -> None:
    root = project({"app.py": "import six\n", "req.txt": "six==0.0.999\n"})
    r = runner("run", "--local", "--requirements", str(root / "req.txt"), str(root / "app.py"))
    assert r.code == 1
    assert "image build failed at [" in r.err and "install.sh uv - /runner-deps/requirements.lock" in r.err
    assert "six==0.0.999" in r.err  # the log tail names what could not be installed
    hist: Any = runner.json("history")
    assert hist[0]["failed"] == 1 and hist[0]["status"] == "failed"


def test_no_secrets_in_image_or_history(runner: Runner, project: Project, docker_api: Any, tmp_path: Path) -> None:
    root = project({"app.py": "import yaml\nprint('ok')\n", ".env": "TOKEN=sekret\n", "id_rsa": "PRIVATE\n"})
    # the real CA bundle (the index is behind a TLS-intercepting proxy) with a marker line PEM readers skip
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes() + b"\n# runner-ca-marker-7731\n")
    env = {
        "PIP_TRUSTED_HOST": "sekret-marker-7731",
        "PIP_CERT": str(ca),
        "PIP_INDEX_URL": "https://runner:sekret-pass-7731@pypi.org/simple",
    }
    r = runner("run", "--local", str(root / "app.py"), env=env)
    assert r.code == 0, r.err
    assert ".env" in r.err and "id_rsa" in r.err  # the notice
    run = run_name(r.err)
    image = runner.json("status", run)["image"]  # type: ignore[index]
    history = json.dumps([h for h in docker_api.api.history(image)])
    config = json.dumps(docker_api.api.inspect_image(image)["Config"])
    for marker in ("sekret-marker-7731", "sekret-pass-7731", "runner-ca-marker-7731"):
        assert marker not in history and marker not in config
    assert "sekret-pass-7731" not in runner("logs", run, "--build").out  # the build log is redacted
    listing = docker_api.containers.run(image, ["ls", "-a", "/project"], remove=True).decode().split()
    assert ".env" not in listing and "id_rsa" not in listing and "app.py" in listing
    # every layer the build added, byte for byte: no credential, no index password, no CA bundle
    base_layers = docker_api.api.inspect_image(os.environ.get("RUNNER_BASE_IMAGE", "runner-python:3.11"))["RootFS"][
        "Layers"
    ]
    added = added_layer_bytes(docker_api, image, skip=len(base_layers))
    assert any(b"yaml/__init__.py" in blob for blob in added)  # the scan sees what the build installed
    for marker in (b"sekret-marker-7731", b"sekret-pass-7731", b"runner-ca-marker-7731"):
        assert not any(marker in blob for blob in added), marker
    # the mounted inputs left at most empty mount points behind
    probe = (
        "find /runner-deps /run/runner /run/secrets /root/.cache -type f 2>/dev/null; ls /opt/runner/venv/bin/python"
    )
    assert docker_api.containers.run(image, ["sh", "-c", probe], remove=True).decode().split() == [
        "/opt/runner/venv/bin/python"
    ]


def added_layer_bytes(docker_api: Any, image: str, *, skip: int) -> list[bytes]:
    """The uncompressed tar of each layer of ``image`` after the first ``skip`` (docker save)."""
    import io
    import tarfile

    saved = io.BytesIO(b"".join(docker_api.api.get_image(image)))
    with tarfile.open(fileobj=saved) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        layers = manifest[0]["Layers"][skip:]
        config = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
        return [config, *(tar.extractfile(name).read() for name in layers)]  # type: ignore[union-attr]


def _user_venv(where: Path, dists: dict[str, tuple[str, str]]) -> Path:
    """A virtual environment made from the user's `python`, holding given distributions (name: (version, module)).

    Each is installed as its metadata plus a one-line module, so no index is needed to make it;
    what the image then gets is the real release of that version.
    """
    subprocess.run(["python", "-m", "venv", "--without-pip", str(where)], check=True)
    site = next(where.glob("lib/python3*/site-packages"))
    for name, (version, module) in dists.items():
        (site / f"{module}.py").write_text(f"__version__ = {version!r}\n")
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "top_level.txt").write_text(module + "\n")
        (info / "RECORD").write_text(f"{module}.py,,\n")
        (info / "INSTALLER").write_text("test\n")
    return where / "bin" / "python"


def test_the_users_interpreter_decides_the_versions_not_runners_own(
    runner: Runner, project: Project, tmp_path: Path
) -> None:
    # six is not in runner's venv at all, and `python` on PATH may have another version: --python's wins
    python = _user_venv(tmp_path / "uservenv", {"six": ("1.15.0", "six")})
    root = project({"app.py": "import six\nprint('SIX', six.__version__)\n"})
    doc: Any = json.loads(runner("inspect", "--json", "--python", str(python), str(root / "app.py")).out)
    assert "six==1.15.0\n" in doc["lock"]
    r = runner("run", "--local", "--python", str(python), str(root / "app.py"))
    assert r.code == 0, r.err
    assert "SIX 1.15.0" in r.out  # the real release of the user's version, installed in the image


def test_inspect_shows_the_plan_without_side_effects(runner: Runner, project: Project) -> None:
    # what must be pinned is the version in the user's interpreter (`python` on PATH), not in runner's venv
    user_yaml = subprocess.run(
        ["python", "-c", "import yaml; print(yaml.__version__)"], capture_output=True, text=True, check=True
    ).stdout.strip()
    marker = f"# {uuid.uuid4()}\n"
    root = project(
        {
            "train.py": marker + "import os, yaml\nimport helpers\n",
            "helpers.py": "import json\n",
            ".env": "TOKEN=x\n",
            "data/big.csv": "1,2\n",
            ".runnerignore": "data/\n",
        }
    )
    r = runner("inspect", "--json", str(root / "train.py"), "--lr", "0.1")
    assert r.code == 0, r.err
    doc: Any = json.loads(r.out)
    assert doc["root"] == str(root)
    assert doc["command"] == ["python3", "train.py", "--lr", "0.1"]
    assert doc["files"] == [".runnerignore", "helpers.py", "train.py"]
    assert ".env" in doc["excluded"]
    kinds = {i["name"]: (i["kind"], i["distributions"]) for i in doc["imports"]}
    assert kinds["yaml"] == ("third_party", ["pyyaml"])
    assert kinds["helpers"][0] == "local" and kinds["os"][0] == "stdlib"
    assert f"pyyaml=={user_yaml}\n" in doc["lock"]
    assert "COPY project/ /project/" in doc["dockerfile"]
    assert doc["image"].startswith("runner/proj:")
    # nothing recorded, nothing built
    assert runner.json("history") == []
    assert not (runner.home / "runs").exists()
    r = runner("run", "--local", str(root / "train.py"), "--lr", "0.1")
    assert r.code == 0, r.err
    assert f"image      {doc['image']} (building)" in r.err


TIMED = """\
import json, sys, time
start = time.time()
time.sleep(0.8)
print("SPAN " + json.dumps([sys.argv[1:], start, time.time()]), flush=True)
"""


def test_sweep_with_max_parallel(runner: Runner, project: Project) -> None:
    root = project({"timed.py": TIMED})
    r = runner(
        "run",
        "--local",
        "--sweep",
        "--max-parallel",
        "2",
        str(root / "timed.py"),
        "--lr",
        "[0.1, 0.01]",
        "--layers=range(1, 3)",
        "plain",
    )
    assert r.code == 0, r.err
    run = run_name(r.err)
    assert "sweep      4 experiments (grid_search, at most 2 at once)" in r.err
    spans = {}
    for i in range(4):
        line = next(ln for ln in runner("logs", f"{run}-exp{i}").out.splitlines() if "] SPAN " in ln)
        args, start, end = json.loads(line.split("] SPAN ", 1)[1])
        spans[i] = (args, start, end)
    assert [spans[i][0] for i in range(4)] == [
        ["--lr", "0.1", "--layers=1", "plain"],
        ["--lr", "0.1", "--layers=2", "plain"],
        ["--lr", "0.01", "--layers=1", "plain"],
        ["--lr", "0.01", "--layers=2", "plain"],
    ]
    # never more than two at once: at no experiment's start were two others already running
    for _, start, _ in spans.values():
        assert sum(1 for _, s, e in spans.values() if s < start < e) <= 1
    doc: Any = runner.json("status", run)
    assert [e["params"] for e in doc["experiment_list"]] == [
        {"--lr": "0.1", "--layers": "1"},
        {"--lr": "0.1", "--layers": "2"},
        {"--lr": "0.01", "--layers": "1"},
        {"--lr": "0.01", "--layers": "2"},
    ]
    table = runner("status", run).out
    assert "--lr" in table and "--layers" in table


def test_malformed_sweep_value_names_the_argument_and_records_nothing(runner: Runner, project: Project) -> None:
    root = project({"timed.py": TIMED})
    r = runner("run", "--local", "--sweep", str(root / "timed.py"), "--lr", "uniform(1, 0, 3)")
    assert r.code == 2
    assert "argument --lr" in r.err and "Traceback" not in r.err
    assert runner.json("history") == []
    # without a sweep option the same text reaches the script literally
    r = runner("run", "--local", str(root / "timed.py"), "--lr", "[1,2]")
    assert r.code == 0 and '["--lr", "[1,2]"]' in r.out


def test_gpus_without_a_gpu_runtime_is_one_line_and_leaves_no_container(
    runner: Runner, project: Project, docker_api: Any
) -> None:
    root = project({"hello.py": "print(1)\n"})
    r = runner("run", "--local", "--gpus", "1", str(root / "hello.py"))
    assert r.code == 1
    assert "--gpus 1: this Docker engine has no GPU runtime" in r.err and "NVIDIA Container Toolkit" in r.err
    run = run_name(r.err)
    assert docker_api.containers.list(all=True, filters={"label": f"runner/run={run}"}) == []
    assert runner.json("status", run)["status"] == "failed"  # type: ignore[index]


NOISY = """\
import sys
line = "y" * 1000
for i in range(40_000):  # about 40 MB: more than the disk under RUNNER_HOME holds
    print(i, line)
open("done.txt", "w").write("ok")
sys.exit(3)
"""


def test_a_full_disk_under_runner_home(runner: Runner, project: Project, tmp_path: Path, docker_api: Any) -> None:
    # a small filesystem of our own for RUNNER_HOME (root only; removed at the end)
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)], check=True)
    try:
        small = Runner(mnt / "home")
        root = project({"noisy.py": NOISY})
        r = small("run", "--local", str(root / "noisy.py"))
        assert r.code == 3, r.err[-2000:]  # the script's exit code, not 0
        assert "the log file" in r.err and "stops here" in r.err  # said once, in one line
        assert "Exception in thread" not in r.err and "Traceback" not in r.err
        assert r.out.count("\n") == 40_000  # the terminal still got every line
        run = run_name(r.err)
        assert docker_api.containers.list(all=True, filters={"label": f"runner/run={run}"}) == []
        status: Any = small.json("status", run)
        assert status["status"] == "failed" and status["experiment_list"][0]["exit_code"] == 3
        assert small.json("status", run)["experiment_list"][0]["message"] == "exit code 3"  # type: ignore[index]
        # now fill it to the last byte: read-only commands still work
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        assert small("history").code == 0
        r = small("run", "--local", str(root / "noisy.py"))
        assert r.code == 1 and "the disk under" in r.err and "is full" in r.err and r.err.count("\n") == 1, r.err
        s = small("status", run)
        assert s.code == 0 and run in s.out, s.err
        logs = small("logs", run)
        assert logs.code == 0 and "[stdout]" in logs.out
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


class EngineProxy:
    """A unix socket that forwards to the real engine, and can drop every connection and stop answering.

    To the runner behind it, that is the engine going away and coming back; the shared
    engine itself (and the container) never notice.
    """

    def __init__(self, path: Path, engine: str = "/var/run/docker.sock") -> None:
        self.path, self.engine = path, engine
        self.server: Any = None
        self.conns: list[Any] = []

    def start(self) -> None:
        import socket
        import threading

        self.path.unlink(missing_ok=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.path))
        self.server.listen(64)
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def _accept(self, server: Any) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.engine)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: Any, dst: Any) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def stop(self) -> None:
        import socket

        self.server.close()
        self.path.unlink(missing_ok=True)
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.conns.clear()


TICKING = """\
import sys, time
for i in range(30):
    print("tick", i, flush=True)
    time.sleep(0.25)
open("end.txt", "w").write("done")
sys.exit(3)
"""


@pytest.mark.parametrize("detach", [False, True], ids=["foreground", "detached"])
def test_following_rides_out_an_engine_that_goes_away(
    runner: Runner, project: Project, tmp_path: Path, docker_api: Any, detach: bool
) -> None:
    proxy = EngineProxy(tmp_path / "engine.sock")
    proxy.start()
    root = project({"tick.py": TICKING})
    away = Runner(runner.home, env={"DOCKER_HOST": f"unix://{proxy.path}"})
    p = away.popen("run", "--local", *(["--detach"] if detach else []), str(root / "tick.py"))
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # until the script is a few lines in
            logs = list((runner.home / "runs").glob("*/*-exp0.log")) if (runner.home / "runs").exists() else []
            if logs and logs[0].read_text().count("tick") >= 5:
                break
            time.sleep(0.1)
        proxy.stop()  # the engine "goes away" for 3 s
        time.sleep(3)
        proxy.start()
        out, err = p.communicate(timeout=120)
        run = run_name(err)
        if detach:  # the watcher follows: wait for its end
            while runner.json("status", run)["status"] == "running":  # type: ignore[index]
                time.sleep(0.2)
            log = runner("logs", run).out
            out = "\n".join(ln.split("] ", 2)[2] for ln in log.splitlines() if ln.startswith("[stdout]"))
            err = "\n".join(ln.split("] ", 2)[2] for ln in log.splitlines() if ln.startswith("[runner]"))
    finally:
        if p.poll() is None:
            p.kill()
        proxy.stop()
    assert p.returncode == (0 if detach else 3), err  # the script's exit code
    assert [ln for ln in out.splitlines()] == [f"tick {i}" for i in range(30)]  # every line, once
    assert "runner: lost the Docker engine" in err and "waiting up to 300 s" in err and "answers again" in err
    assert "Traceback" not in err and "Exception in thread" not in err
    exp: Any = runner.json("status", run)["experiment_list"][0]  # type: ignore[index]
    assert exp["exit_code"] == 3 and exp["status"] == "failed" and exp["message"] == "exit code 3"  # it lived through
    r = runner("artifacts", run, "--download-dir", str(tmp_path / "dl"))
    assert r.code == 0 and (tmp_path / "dl" / run / f"{run}-exp0" / "end.txt").read_text() == "done"
    assert docker_api.containers.list(all=True, filters={"label": f"runner/run={run}"}) == []


def test_a_truncated_history_names_the_problem_and_runner_repair_brings_it_back(
    runner: Runner, project: Project
) -> None:
    root = project({"argecho.py": ARGECHO})
    runs = [run_name(runner("run", "--local", str(root / "argecho.py"), str(i)).err) for i in range(2)]
    before: Any = runner.json("history")
    db = runner.home / "runner.db"
    with open(db, "r+b") as f:
        f.truncate(4096)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    for argv in (["history"], ["status", runs[0]], ["logs", runs[0]]):
        r = runner(*argv)
        assert r.code == 1 and r.err.count("\n") == 1, r.err
        assert "is damaged" in r.err and "`runner repair`" in r.err and "permission" not in r.err
    r = runner("repair")
    assert r.code == 0 and "2 from their records" in r.out, r.err
    after: Any = runner.json("history")
    assert [(h["run"], h["status"], h["created_at"]) for h in after] == [
        (h["run"], h["status"], h["created_at"]) for h in before
    ]
    assert "ARGV" in runner("logs", runs[0]).out
    assert runner("artifacts", runs[1], "--download-dir", str(runner.home.parent / "dl")).code == 0
    assert list(runner.home.glob("runner.db.damaged-*"))  # the damaged file is kept, not deleted
