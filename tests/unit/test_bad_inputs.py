"""The bad-input catalogue: every case is one clear line with the right exit code, and nothing is recorded.

Table-driven over the three ways in: the command line, runner.yaml and the Python API.
Each case fails before any engine or cluster is asked (none is needed here), and
leaves no history behind.  Messages never echo unbounded input.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import runner
from runner.cli import main
from runner.errors import RunnerError

HUGE = "x" * 100_000
#: the longest message a case may print: input is clipped, never echoed whole
LONGEST = 600


class Case(NamedTuple):
    id: str
    argv: list[str]  # "{script}", "{home}", "{config}" and "{tmp}" are filled in
    code: int
    message: str


def _run(*args: str) -> list[str]:
    return ["run", "--local", *args, "{script}"]


CLI = [
    Case("cpus-nan", _run("--cpus", "nan"), 2, "--cpus nan is not a number of CPUs"),
    Case("cpus-inf", _run("--cpus", "inf"), 2, "--cpus inf is not a number of CPUs"),
    Case("cpus-negative", _run("--cpus", "-1"), 2, "--cpus -1 must be more than zero"),
    Case("cpus-zero", _run("--cpus", "0"), 2, "--cpus 0 must be more than zero"),
    Case("cpus-huge", _run("--cpus", "1e9"), 2, "is more than any machine has"),
    Case("cpus-tiny", _run("--cpus", "0.00001"), 2, "less than the smallest share"),
    Case("cpus-text", _run("--cpus", "many"), 2, "Invalid value for '--cpus'"),
    Case("cpus-huge-text", _run("--cpus", HUGE), 2, "(100,"),
    Case("memory-one-byte", _run("--memory", "1"), 2, "--memory '1' is too little to start a container"),
    Case("memory-3mi", _run("--memory", "3Mi"), 2, "too little to start a container"),
    Case("memory-words", _run("--memory", "lots"), 2, "--memory 'lots' is not a size"),
    Case("memory-petabytes", _run("--memory", "5000Ti"), 2, "more than any machine has"),
    Case("memory-negative", _run("--memory", "-1G"), 2, "is not a size"),
    Case("memory-huge-input", _run("--memory", HUGE), 2, "(100,000 characters) is not a size"),
    Case("gpus-negative", _run("--gpus", "-1"), 2, "--gpus -1 cannot be negative"),
    Case("gpus-huge", _run("--gpus", "1000"), 2, "--gpus 1000 is more than any machine has"),
    Case("gpus-text", _run("--gpus", "one"), 2, "Invalid value for '--gpus'"),
    Case("env-no-equals", _run("--env", "NOEQUALS"), 2, "--env 'NOEQUALS' is not KEY=VALUE"),
    Case("env-bad-key", _run("--env", "1A=2"), 2, "--env '1A=2' is not KEY=VALUE"),
    Case("env-huge", _run("--env", HUGE), 2, "(100,000 characters) is not KEY=VALUE"),
    Case("timeout-words", ["run", "--timeout", "soon", "{script}"], 2, "--timeout 'soon' is not a duration"),
    Case("timeout-zero", ["run", "--timeout", "0", "{script}"], 2, "must be more than zero"),
    Case("timeout-years", ["run", "--timeout", "999d", "{script}"], 2, "is more than a year"),
    Case("timeout-huge", ["run", "--timeout", HUGE, "{script}"], 2, "(100,000 characters) is not a duration"),
    Case("retries-negative", ["run", "--retries", "-1", "{script}"], 2, "--retries cannot be negative"),
    Case("max-parallel-zero", _run("--max-parallel", "0"), 2, "--max-parallel must be 1 or more"),
    Case("strategy-unknown", _run("--strategy", "bayes"), 2, "--strategy 'bayes' is not a strategy"),
    Case(
        "trials-with-grid",
        ["run", "--local", "--sweep", "--trials", "5", "{script}", "--x", "[1, 2]"],
        2,
        "--trials applies only to random search",
    ),
    Case(
        "trials-over-limit",
        _run("--strategy", "random_search", "--trials", "20000"),
        2,
        "--trials 20000 is more than the limit of 10,000 experiments",
    ),
    Case(
        "sweep-unclosed",
        ["run", "--local", "--sweep", "{script}", "--x", "[1, 2"],
        2,
        "argument --x: '[1, 2' is not a sweep value",
    ),
    Case(
        "sweep-over-limit",
        ["run", "--local", "--sweep", "{script}", "--x", "range(0, 20000)"],
        2,
        "the sweep makes 20,000 experiments, more than the limit of 10,000",
    ),
    Case("datastore-dotdot", ["run", "--datastore", "../../etc", "{script}"], 2, "is not a datastore name"),
    Case("datastore-slash", ["run", "--datastore", "a/b", "{script}"], 2, "is not a datastore name"),
    Case("datastore-upper", ["run", "--datastore", "MyData", "{script}"], 2, "is not a datastore name"),
    Case("datastore-long", ["run", "--datastore", "a" * 300, "{script}"], 2, "(300 characters): name"),
    Case("datastore-empty", ["run", "--datastore", ":2", "{script}"], 2, "has no name"),
    Case("datastore-on-project", ["run", "--datastore", "data:/project", "{script}"], 2, "would hide /project"),
    Case("datastore-on-etc", ["run", "--datastore", "data:/etc/x", "{script}"], 2, "would hide /etc"),
    Case("datastore-on-root", ["run", "--datastore", "data:/", "{script}"], 2, "must be a plain absolute path"),
    Case(
        "datastore-dotdot-mount",
        ["run", "--datastore", "data:/data/../etc", "{script}"],
        2,
        "must be a plain absolute path",
    ),
    Case(
        "datastore-relative-mount",
        ["run", "--datastore", "data:mnt", "{script}"],
        2,
        "is not NAME[:VERSION][:MOUNTDIR]",
    ),
    Case(
        "namespace-bad",
        ["run", "--namespace", "Bad_NS!", "{script}"],
        2,
        "--namespace 'Bad_NS!' is not a Kubernetes namespace name",
    ),
    Case("namespace-long", ["run", "--namespace", "a" * 100, "{script}"], 2, "is not a Kubernetes namespace name"),
    Case("context-blank", ["run", "--context", " ", "{script}"], 2, "--context ' ' is not a kubeconfig context name"),
    Case("secret-bad", ["run", "--secret", "Not_Ok", "{script}"], 2, "--secret 'Not_Ok' is not a Kubernetes Secret"),
    Case("secret-locally", _run("--secret", "ok"), 2, "only for the Kubernetes target"),
    Case("dry-run-locally", _run("--dry-run"), 2, "--dry-run: only for the Kubernetes target"),
    Case("script-missing", ["run", "--local", "{tmp}/absent.py"], 2, "absent.py"),
    Case("script-folder", ["run", "--local", "{tmp}"], 2, "is a directory, not a script"),
    Case("no-script", ["run", "--local"], 2, "Missing argument 'script'"),
    Case("config-missing", ["run", "--local", "--config", "{tmp}/nope.yaml", "{script}"], 2, "nope.yaml not found"),
    Case("requirements-missing", _run("--requirements", "{tmp}/nope.txt"), 2, "nope.txt: no such file"),
    Case("tail-negative", ["logs", "some-run", "--tail", "-1"], 2, "--tail must be zero or more"),
    Case("status-unknown", ["status", "no-such-run-123"], 2, "no run or experiment named 'no-such-run-123'"),
    Case("status-huge-name", ["status", HUGE], 2, "(100,000 characters)"),
    Case("artifacts-unknown", ["artifacts", "no-such-run-123"], 2, "no run or experiment named 'no-such-run-123'"),
    Case("status-bad-namespace", ["status", "--namespace", "Bad_NS"], 2, "is not a Kubernetes namespace name"),
    Case(
        "datastore-create-bad-name",
        ["datastore", "create", "--name", "MyData", "--source", "{tmp}"],
        2,
        "--name: name 'MyData' is not a datastore name",
    ),
    Case(
        "datastore-create-no-source",
        ["datastore", "create", "--name", "ok", "--source", "{tmp}/nope"],
        2,
        "is not a folder",
    ),
    Case("history-limit-text", ["history", "--limit", "many"], 2, "Invalid value for '--limit'"),
    Case("unknown-command", ["frobnicate"], 2, "No such command 'frobnicate'"),
]

#: runner.yaml cases: (id, file text or bytes, message); each is read by `runner run --local --config FILE`
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9)
)
YAML: list[tuple[str, str | bytes, str]] = [
    ("billion-laughs", LAUGHS + "cpus: *j\n", "more than 64 aliases"),
    ("too-big", "# " + "x" * 300_000 + "\n", "is too big for a settings file"),
    ("nested-deeply", "cpus: " + "[" * 5000 + "]" * 5000 + "\n", "cannot read"),
    ("not-a-mapping", "- cpus\n- 2\n", "expected a mapping of settings, got list"),
    ("unknown-key", "cpu: 2\n", "unknown key 'cpu' (did you mean 'cpus'?)"),
    ("cpus-nan", "cpus: .nan\n", "'cpus' must be a finite number"),
    ("cpus-huge", "cpus: 100000\n", "'cpus' 100000 is more than any machine has"),
    ("memory-one-byte", "memory: 1\n", "'memory' '1' is too little to start a container"),
    ("datastore-dotdot", "datastore: ['../../etc']\n", "'datastore' items must be NAME[:VERSION][:MOUNTDIR]"),
    ("namespace-bad", "namespace: Bad_NS\n", "'namespace' 'Bad_NS' is not a Kubernetes namespace name"),
    ("timeout-words", "timeout: soon\n", "'timeout' 'soon' is not a duration"),
    ("not-utf8", b"cpus: \xff\xfe\n", "cannot read"),
    ("syntax", "cpus: [1\n", "cannot read"),
    ("huge-value", "target: " + HUGE + "\n", "(100,000 characters)"),
    (
        "huge-list",
        "secret: [" + ", ".join(["Bad_Name"] * 5000) + "]\n",
        "'secret' items must be Kubernetes secret names",
    ),
    ("huge-int", "retries: " + "9" * 40 + "\n", "'retries' is out of range"),
]

#: Python API cases: (id, keywords for runner.submit, message)
API: list[tuple[str, dict[str, Any], str]] = [
    ("args-one-string", {"args": "--lr 0.1"}, "args must be a list of arguments, not one string"),
    ("args-number", {"args": 5}, "args must be a list of arguments, not int"),
    ("cpus-text", {"cpus": "2"}, "cpus must be a whole number or a number, not str"),
    ("cpus-nan", {"cpus": float("nan")}, "--cpus nan is not a number of CPUs"),
    ("gpus-bool", {"gpus": True}, "gpus must be a whole number, not bool"),
    ("memory-one-byte", {"memory": 1}, "--memory '1' is too little to start a container"),
    ("env-not-pairs", {"env": ["NOEQ"]}, "--env 'NOEQ' is not KEY=VALUE"),
    ("env-one-string", {"env": "A=1"}, "env must be a mapping or a list of KEY=VALUE strings"),
    ("env-number-key", {"env": {1: "x"}}, "env keys must be text"),
    ("sweep-number", {"sweep": 1}, "sweep must be True/False or text, not int"),
    ("trials-float", {"sweep": "random_search", "trials": 1.5}, "trials must be a whole number, not float"),
    ("datastore-numbers", {"datastore": [1]}, "datastore must be a list of names"),
    ("datastore-dotdot", {"datastore": ["../../etc"], "local": False}, "is not a datastore name"),
    ("namespace-bad", {"namespace": "Bad_NS", "local": False}, "is not a Kubernetes namespace name"),
    ("timeout-list", {"timeout": [1]}, "timeout must be a whole number or text, not list"),
    ("script-number", {"script": 5}, "script must be text or a path, not int"),
    ("max-parallel-zero", {"max_parallel": 0}, "--max-parallel must be 1 or more"),
]


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("RUNNER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    for var in ("RUNNER_NAMESPACE", "RUNNER_CONTEXT", "RUNNER_REGISTRY"):
        monkeypatch.delenv(var, raising=False)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "q.py").write_text("print(1)\n")
    return {"script": str(proj / "q.py"), "home": str(tmp_path / "home"), "tmp": str(tmp_path)}


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    return int(e.value.code or 0), err


def _nothing_recorded(home: str) -> None:
    db = Path(home) / "runner.db"
    if db.exists():  # a history command may open it; it must hold no run
        import sqlite3

        assert sqlite3.connect(db).execute("SELECT count(*) FROM runs").fetchone() == (0,)
    assert not (Path(home) / "runs").exists()


@pytest.mark.parametrize("case", CLI, ids=[c.id for c in CLI])
def test_cli(case: Case, where: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(**where) if "{" in a and len(a) < 200 else a for a in case.argv]
    code, err = _cli(argv, capsys)
    assert code == case.code, err
    assert case.message in err
    assert "Traceback" not in err and "internal error" not in err
    assert len(err) < LONGEST + 400, err[:300]  # typer's usage errors add a usage block
    _nothing_recorded(where["home"])


@pytest.mark.parametrize(("text", "message"), [(t, m) for _, t, m in YAML], ids=[i for i, _, _ in YAML])
def test_runner_yaml(
    text: str | bytes, message: str, where: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "runner.yaml"
    cfg.write_bytes(text if isinstance(text, bytes) else text.encode())
    start = time.monotonic()
    code, err = _cli(["run", "--local", "--config", str(cfg), where["script"]], capsys)
    assert time.monotonic() - start < 5  # a billion laughs fails fast
    assert code == 2, err
    assert message in err
    assert err.count("\n") == 1 and len(err) < LONGEST, err[:300]  # one line
    _nothing_recorded(where["home"])


@pytest.mark.parametrize(("kwargs", "message"), [(k, m) for _, k, m in API], ids=[i for i, _, _ in API])
def test_api(kwargs: dict[str, Any], message: str, where: dict[str, str]) -> None:
    call: Callable[..., Any] = runner.submit
    kw = {"script": where["script"], "local": True, **kwargs}
    with pytest.raises(RunnerError) as e:
        call(**kw)
    assert e.value.exit_code == 2
    assert message in str(e.value)
    assert len(str(e.value)) < LONGEST
    _nothing_recorded(where["home"])


def test_runner_home_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "file"
    f.write_text("")
    for home in (f, f / "below"):
        monkeypatch.setenv("RUNNER_HOME", str(home))
        code, err = _cli(["history"], capsys)
        assert code == 2 and f"{f}' is not a folder" in err and err.count("\n") == 1


def test_the_catalogue_is_big_enough() -> None:
    assert len(CLI) + len(YAML) + len(API) + 1 >= 60


def test_an_unreadable_project_file_is_named(tmp_path: Path) -> None:
    """A file the user cannot read: a clear error naming it, for inspect and run, and nothing recorded.

    The tests run as root, who reads anything: runner runs here without the capabilities
    that let root ignore permissions, as any user would.
    """
    import shutil
    import subprocess
    import sys

    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop root's permission override"
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "q.py").write_text("print(1)\n")
    (proj / "secret.csv").write_text("1,2\n")
    (proj / "secret.csv").chmod(0)
    drop = "-dac_override,-dac_read_search"
    env = {**os.environ, "RUNNER_HOME": str(tmp_path / "home")}
    for argv in (["inspect", str(proj / "q.py")], ["run", "--local", str(proj / "q.py")]):
        p = subprocess.run(
            [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}", sys.executable, "-m", "runner", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert p.returncode == 2, p.stderr
        assert f"cannot read '{proj / 'secret.csv'}' in the project: permission denied" in p.stderr
        assert p.stderr.count("\n") == 1
    _nothing_recorded(str(tmp_path / "home"))


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            OSError(28, "No space left on device", "/home/u/.runner/x"),
            "runner: error: No space left on device (/home/u/.runner/x)\n",
        ),
        (OSError(5, "Input/output error"), "runner: internal error: OSError: [Errno 5] Input/output error"),
    ],
)
def test_errors_of_the_machine_are_one_line(
    error: OSError, line: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import runner.cli

    def broken(*_: object) -> None:
        raise error

    monkeypatch.setattr(runner.cli, "_app", broken)
    code, err = _cli(["history"], capsys)
    assert code == 1 and err.startswith(line) and err.count("\n") == 1
