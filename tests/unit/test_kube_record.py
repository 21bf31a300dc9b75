"""A run's record on Kubernetes never passes a ConfigMap's 1 MiB, and no end state is lost (issue 14, point 4).

The launcher is stdlib-only and runs in the pod: its recording is tested here against a
real HTTP endpoint on 127.0.0.1 that answers as an API server in trouble would.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runner.targets.kubernetes import launcher
from runner.targets.kubernetes import objects as kube

MIB = 1024 * 1024


def run_doc(n: int, *, arg_bytes: int = 40) -> dict[str, Any]:
    return {
        "name": "bold-otter-123",
        "project": "p",
        "root": "/home/u/p",
        "script": "train.py",
        "args": ["--lr=[0.1,0.01]", "x" * arg_bytes],
        "image": "reg/runner/p@sha256:" + "a" * 64,
        "cached": 1,
        "created_at": 1.5,
        "options": {"max_parallel": 8},
        "launched": True,
        "user": "u",
        "experiments": [
            {
                "name": f"bold-otter-123-exp{i}",
                "index": i,
                "params": {"lr": i / 7, "seed": i},
                "command": ["python3", "train.py", f"--lr={i / 7}", f"--seed={i}", "x" * arg_bytes],
            }
            for i in range(n)
        ],
    }


def worst_case_size(cm: dict[str, Any]) -> int:
    """The ConfigMap's size once every experiment in it has the longest end and a stop mark."""
    full = json.loads(json.dumps(cm))
    worst = {
        "state": "failed",
        "exit_code": 137,
        "signal": 9,
        "started_at": 1.7e9,
        "finished_at": 1.7e9,
        "artifacts": 10**6,
        "pod": "p" * 63,
        "reason": "DeadlineExceeded",
        "message": "\u2603" * 5000,
    }
    for e in json.loads(full["data"]["part.json"]):
        full["data"][f"{e['name']}.json"] = kube.end_value({**worst, "final": True})
        full["data"][f"{e['name']}.stop"] = "1"
    return len(json.dumps(full).encode())


@pytest.mark.parametrize(("n", "arg_bytes"), [(1, 40), (9000, 40), (10_000, 200), (8, 120_000), (3, 2_000_000)])
def test_no_run_configmap_can_pass_one_mib(n: int, arg_bytes: int) -> None:
    doc = run_doc(n, arg_bytes=arg_bytes)
    cms = kube.make_run_configmaps(doc)
    assert all(worst_case_size(cm) < MIB for cm in cms)
    assert cms[0]["metadata"]["name"] == "runner-run-bold-otter-123"
    assert len({cm["metadata"]["name"] for cm in cms}) == len(cms)
    back = kube.read_run_record(list(reversed(cms)))
    assert back is not None
    got, _, where = back
    assert [e["name"] for e in got["experiments"]] == [e["name"] for e in doc["experiments"]]
    assert set(where.values()) == {cm["metadata"]["name"] for cm in cms}
    assert kube.part_of(cms) == where
    short = [e for e in got["experiments"] if not e.get("command_omitted")]
    assert all(e["command"] == doc["experiments"][e["index"]]["command"] for e in short)
    assert bool(short) == (arg_bytes < kube.ENTRY_LIMIT)
    assert got["args"] == (doc["args"] if arg_bytes < kube.ARGS_LIMIT else [])


def test_a_small_run_is_one_configmap_and_old_records_still_read() -> None:
    doc = run_doc(3)
    assert len(kube.make_run_configmaps(doc)) == 1
    old = {
        "metadata": {"name": "runner-run-bold-otter-123"},
        "data": {"run.json": json.dumps(doc), "bold-otter-123-exp1.json": "{}"},
    }
    back = kube.read_run_record([old])
    assert back is not None
    assert [e["name"] for e in back[0]["experiments"]] == [e["name"] for e in doc["experiments"]]
    assert back[2]["bold-otter-123-exp2"] == "runner-run-bold-otter-123"


def test_every_job_records_its_end_in_the_part_that_holds_it() -> None:
    cms = kube.make_run_configmaps(run_doc(9000))
    where = kube.part_of(cms)
    assert len(cms) > 1
    spec = kube.JobSpec(
        run="bold-otter-123",
        experiment="bold-otter-123-exp8999",
        image="i",
        command=("python3", "t.py"),
        record=where["bold-otter-123-exp8999"],
    )
    env = {e["name"]: e["value"] for e in kube.make_job(spec)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RUNNER_CONFIGMAP"] == cms[-1]["metadata"]["name"] != cms[0]["metadata"]["name"]


# -- the launcher against an API server in trouble ---------------------------------------------


class FakeApi:
    """Answers PATCHes with the next code of ``codes`` (then 200), and keeps what it was sent."""

    def __init__(self, codes: list[int]) -> None:
        self.codes = codes
        self.patches: list[tuple[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_PATCH(self) -> None:  # noqa: N802 - the stdlib's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.patches.append((self.path, body))
                code = api.codes.pop(0) if api.codes else 200
                payload = json.dumps({"kind": "Status", "code": code} if code >= 300 else {"data": {}}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The launcher's view of a pod: a service-account folder, its part of the run's record, no sleeping."""
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("t0ken")
    (sa / "namespace").write_text("ns")
    monkeypatch.setattr(launcher, "SA_DIR", str(sa))
    monkeypatch.setattr(launcher, "tls_context", lambda: None)
    monkeypatch.setattr("runner.targets.kubernetes.launcher.time.sleep", lambda s: None)
    monkeypatch.setenv("RUNNER_CONFIGMAP", "runner-run-r-2")
    data = tmp_path / "data"
    data.mkdir()
    yield data


END = {"state": "completed", "exit_code": 0, "message": None, "artifacts": 2}


def test_launcher_retries_an_api_server_that_fails_then_records(pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeApi([503, 500, 429])
    monkeypatch.setattr(launcher, "api_base", lambda: api.url)
    assert launcher.record("r-exp7", dict(END), str(pod), patience=300) is True
    assert len(api.patches) == 4
    path, body = api.patches[-1]
    assert path == "/api/v1/namespaces/ns/configmaps/runner-run-r-2"
    assert json.loads(body["data"]["r-exp7.json"]) == END
    assert json.loads((pod / "end.json").read_text()) == END


def test_launcher_falls_back_to_the_volume_when_the_record_is_refused(
    pod: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi([422, 422, 422])
    monkeypatch.setattr(launcher, "api_base", lambda: api.url)
    assert launcher.record("r-exp7", dict(END), str(pod), patience=300) is False
    assert len(api.patches) == 1  # a refusal no retry can change is not retried
    assert json.loads((pod / "end.json").read_text()) == END
    assert "kept in end.json on the data volume" in capsys.readouterr().err


def test_launcher_gives_up_on_an_unreachable_api_server_after_its_patience(
    pod: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeApi([])
    api.server.shutdown()
    api.server.server_close()  # nothing listens there any more
    monkeypatch.setattr(launcher, "api_base", lambda: api.url)
    long = {**END, "state": "failed", "message": "m" * 5000}
    assert launcher.record("r-exp7", long, str(pod), patience=0.5) is False
    kept = json.loads((pod / "end.json").read_text())
    assert kept["state"] == "failed" and len(kept["message"]) == launcher.MAX_MESSAGE


def test_launcher_reads_arguments_of_any_length_from_the_volume(
    pod: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    argv = ["train.py", "y" * 2_000_000, "--", "ünï"]
    (pod / "argv.json").write_text(json.dumps(argv, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("RUNNER_ARGV_FILE", str(tmp_path / "runner" / "argv.json"))
    monkeypatch.setenv("RUNNER_ARGV_BOOTSTRAP", "pass")
    assert launcher.command_from_volume(str(pod)) == ["python3", "-c", "pass"]
    assert json.loads((tmp_path / "runner" / "argv.json").read_text(encoding="utf-8")) == argv


def test_a_pending_pod_whose_status_says_nothing_shows_its_newest_warning_event() -> None:
    # --memory 1: the pod's token volume cannot be written, and the pod waits in ContainerCreating for ever;
    # only its events say why
    pod = {
        "metadata": {"name": "r-exp0-abcde"},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}],
        },
    }
    job = {"spec": {"backoffLimit": 0}, "status": {}}
    assert kube.observe(end=None, stop=False, job=job, pods=[pod], launched=True).message is None
    events = [
        {
            "type": "Warning",
            "reason": "FailedMount",
            "message": "no space left on device (old)",
            "lastTimestamp": "2026-12-04T15:54:31Z",
            "involvedObject": {"kind": "Pod", "name": "r-exp0-abcde"},
        },
        {
            "type": "Warning",
            "reason": "FailedMount",
            "message": "MountVolume.SetUp failed: no space left on device",
            "lastTimestamp": "2026-12-04T15:54:46Z",
            "involvedObject": {"kind": "Pod", "name": "r-exp0-abcde"},
        },
        {
            "type": "Normal",
            "reason": "Scheduled",
            "message": "assigned",
            "lastTimestamp": "2026-12-04T15:54:50Z",
            "involvedObject": {"kind": "Pod", "name": "r-exp0-abcde"},
        },
        {
            "type": "Warning",
            "reason": "BackOff",
            "message": "someone else",
            "lastTimestamp": "2026-12-04T15:54:59Z",
            "involvedObject": {"kind": "Pod", "name": "other"},
        },
    ]
    kube.attach_warnings([pod], events)
    seen = kube.observe(end=None, stop=False, job=job, pods=[pod], launched=True)
    assert (seen.state, seen.message) == ("queued", "FailedMount: MountVolume.SetUp failed: no space left on device")


def test_launcher_tees_many_lines_and_one_long_line_completely(
    tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    import io

    tee = launcher.Tee(str(tmp_path / "log"))
    text = b"".join(b"l%d\n" % i for i in range(50_000)) + b"L" * (3 << 20) + b"\n" + b"no newline"

    class Pipe(io.BytesIO):
        def read1(self, n: int = -1) -> bytes:  # a pipe gives what is there: at most 64 KiB here
            return super().read1(min(n, 65536))

    tee.pump("stdout", Pipe(text))
    lines = (tmp_path / "log").read_bytes().split(b"\n")
    assert lines[-1] == b""
    texts = [ln.split(b"] ", 2)[2] for ln in lines[:-1]]
    assert all(ln.startswith(b"[stdout] [") for ln in lines[:-1])
    assert texts == [b"l%d" % i for i in range(50_000)] + [b"L" * (3 << 20), b"no newline"]
    assert capfdbinary.readouterr().out == (tmp_path / "log").read_bytes()


# -- attempts: the script runs at most once per attempt, however many pods the Job makes --------


def launch(pod: Path, monkeypatch: pytest.MonkeyPatch, *, hostname: str, attempts: int, code: int = 0) -> int:
    """One pod's launcher, to its end: a real child that prints a line and exits with ``code``."""
    api = FakeApi([])
    monkeypatch.setattr(launcher, "api_base", lambda: api.url)
    monkeypatch.setenv("HOSTNAME", hostname)
    monkeypatch.setenv("RUNNER_EXPERIMENT", "r-exp0")
    monkeypatch.setenv("RUNNER_DATA", str(pod))
    monkeypatch.setenv("RUNNER_ATTEMPTS", str(attempts))
    monkeypatch.delenv("RUNNER_RELEASE", raising=False)
    monkeypatch.delenv("RUNNER_QUEUED", raising=False)
    work = pod.parent / "project"  # artifacts are collected from the working folder
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)
    script = f"print('ran in {hostname}'); raise SystemExit({code})"
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}  # main installs its own
    try:
        return launcher.main(["--", "python3", "-c", script])
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)


def test_a_second_pod_for_an_ended_experiment_runs_nothing_and_leaves_the_volume_alone(
    pod: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert launch(pod, monkeypatch, hostname="pod-a", attempts=1, code=3) == 3
    log = (pod / "log").read_bytes()
    assert log.count(b"ran in pod-a") == 1
    end = json.loads((pod / "end.json").read_text())
    assert (end["state"], end["attempt"]) == ("failed", 1)
    capsys.readouterr()
    # the Job controller, its cache stale, starts the experiment again: the duplicate runs nothing
    assert launch(pod, monkeypatch, hostname="pod-b", attempts=1) == 3  # the experiment's outcome, not a new one
    assert (pod / "log").read_bytes() == log
    assert json.loads((pod / "end.json").read_text()) == end
    assert sorted(p.name for p in (pod / "attempts").iterdir()) == ["1"]
    out = capsys.readouterr().out
    assert "ran in pod-b" not in out and "has ended (failed: exit code 3)" in out and "runs nothing" in out


def test_a_completed_experiment_is_not_run_again_even_with_attempts_left(
    pod: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert launch(pod, monkeypatch, hostname="pod-a", attempts=3) == 0
    log = (pod / "log").read_bytes()
    assert launch(pod, monkeypatch, hostname="pod-b", attempts=3) == 0  # exit 0: the Job completes, never fails
    assert (pod / "log").read_bytes() == log
    assert sorted(p.name for p in (pod / "attempts").iterdir()) == ["1"]


def test_retries_claim_the_next_attempt_until_none_is_left(pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert launch(pod, monkeypatch, hostname="pod-a", attempts=2, code=1) == 1
    assert launch(pod, monkeypatch, hostname="pod-b", attempts=2, code=1) == 1  # --retries 1: runs again
    assert json.loads((pod / "end.json").read_text())["attempt"] == 2
    assert launch(pod, monkeypatch, hostname="pod-c", attempts=2) == 1  # no attempt left
    text = (pod / "log").read_text()
    assert text.count("ran in pod-a") == text.count("ran in pod-b") == 1 and "pod-c" not in text


def test_a_second_pod_waits_while_the_attempt_runs_elsewhere(pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exiting at once would make the Job controller delete the pod that runs the script (a Job past its
    completions or its backoff limit ends its active pods): the duplicate waits for that attempt's end."""
    assert launcher.claim(str(pod), 1)
    waited: list[float] = []

    def other_pod_ends(seconds: float) -> None:
        waited.append(seconds)
        if len(waited) == 3:
            (pod / "end.json").write_text(json.dumps({"state": "completed", "exit_code": 0, "attempt": 1}))

    monkeypatch.setattr("runner.targets.kubernetes.launcher.time.sleep", other_pod_ends)
    monkeypatch.setenv("HOSTNAME", "pod-b")
    attempt, end = launcher.claim_turn(str(pod), 1)
    assert attempt is None and end is not None and end["state"] == "completed" and len(waited) == 3
    assert launcher.outcome(end) == 0


def test_an_attempt_whose_pod_died_without_an_end_is_given_up_after_its_claim_goes_stale(
    pod: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTNAME", "pod-a")
    assert launcher.claim(str(pod), 1)
    monkeypatch.setenv("HOSTNAME", "pod-b")
    monkeypatch.setattr(launcher, "STALE", 0.0)
    assert launcher.claim_turn(str(pod), 2) == (2, None)  # a retry: the next attempt
    assert launcher.claim_turn(str(pod), 2) == (None, None)  # killed hard again: nothing left
    assert launcher.outcome(None) == 1


def test_a_restarted_container_of_the_same_pod_does_not_wait_for_itself(
    pod: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTNAME", "pod-a")
    assert launcher.claim(str(pod), 1)
    monkeypatch.setattr("runner.targets.kubernetes.launcher.time.sleep", lambda s: pytest.fail("waited for itself"))
    assert launcher.claim_turn(str(pod), 2) == (2, None)


def test_jobs_tell_the_launcher_how_many_attempts_it_has() -> None:
    spec = kube.JobSpec(run="r", experiment="r-exp0", image="i", command=("python3", "t.py"), retries=2)
    env = {e["name"]: e["value"] for e in kube.make_job(spec)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RUNNER_ATTEMPTS"] == "3"


def test_a_waiting_pod_that_is_deleted_ends_at_once_and_runs_nothing(
    pod: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Job controller deletes a Job's surplus pod. The launcher is PID 1, which no signal's default action
    ends: it must end by itself, without waiting for the running attempt and without touching the volume."""
    assert launcher.claim(str(pod), 1)
    monkeypatch.setattr("runner.targets.kubernetes.launcher.time.sleep", lambda s: signal.raise_signal(signal.SIGTERM))
    monkeypatch.setattr(launcher, "TERMINATED", threading.Event())
    monkeypatch.setenv("HOSTNAME", "pod-b")
    monkeypatch.setenv("RUNNER_EXPERIMENT", "r-exp0")
    monkeypatch.setenv("RUNNER_DATA", str(pod))
    monkeypatch.setenv("RUNNER_ATTEMPTS", "1")
    monkeypatch.delenv("RUNNER_QUEUED", raising=False)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert launcher.main(["--", "python3", "-c", "print('ran')"]) == 128 + signal.SIGTERM
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    assert sorted(p.name for p in pod.iterdir()) == ["attempts"]
