"""A new user's first contact (issue 11): an empty namespace sets itself up, a namespace the user may not
set up is one line naming what is missing and the admin's command, and an experiment that cannot start
says why (a quota of zero pods, an image that cannot be pulled) within 60 s, in `run`, `status` and `logs`."""

from __future__ import annotations

import json
import os
import queue
import select
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_cluster import (
    ADMIN_KUBECONFIG,
    KUBECTL,
    REGISTRY,
    KubeRunner,
    Namespace,
    delete_namespace,
    kubectl,
    make_namespace,
)
from support import run_name

Project = Callable[[dict[str, str]], Path]
#: the issue's promise: a reason the cluster reports is shown within this many seconds of the Job's creation
REPORTED_WITHIN = 60.0


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[KubeRunner]:
    """A user of a namespace of their own, just made (empty), with the `admin` ClusterRole there."""
    name, kubeconfig = make_namespace(tmp_path)
    try:
        yield KubeRunner(tmp_path / "home", Namespace(name, kubeconfig))
    finally:
        delete_namespace(name)


def test_an_empty_namespace_sets_itself_up_and_says_what_it_made(fresh: KubeRunner, project: Project) -> None:
    ns = fresh.ns.name
    root = project({"hello.py": "print('hello from a new namespace')\n"})
    r = fresh("run", str(root / "hello.py"))
    assert r.code == 0 and r.out == "hello from a new namespace\n", r.err
    made = [ln for ln in r.err.splitlines() if ln.startswith("set up ")]
    assert made == [
        f"set up     serviceaccount/runner in {ns}",
        f"set up     role/runner-experiment in {ns}",
        f"set up     rolebinding/runner-experiment in {ns}",
        f"set up     persistentvolumeclaim/runner-data in {ns}",
    ]
    assert made[0] in r.err.split("build |")[0]  # before anything was built
    again = fresh("run", str(root / "hello.py"))
    assert again.code == 0 and "set up " not in again.err, again.err


def test_a_namespace_the_user_may_not_set_up_is_one_line_before_building_naming_the_admins_command(
    tmp_path: Path, project: Project
) -> None:
    name, kubeconfig = make_namespace(tmp_path, rights="runner-user")
    try:
        user = KubeRunner(tmp_path / "home", Namespace(name, kubeconfig))
        root = project({"hello.py": "print('hello after the admin')\n"})
        r = user("run", str(root / "hello.py"))
        assert r.code == 1
        errors = [ln for ln in r.err.splitlines() if ln.startswith("runner: error:")]
        assert len(errors) == 1, r.err
        assert (
            f"namespace {name} is not set up for runner: serviceaccount/runner, role/runner-experiment, "
            "rolebinding/runner-experiment missing, and you may not create them" in errors[0]
        )
        assert "build |" not in r.err and not any(ln.startswith("run ") for ln in r.err.splitlines())
        # the command it names is the admin's whole job: run it as given (with the admin's kubectl)
        command = errors[0].split("an admin runs: ", 1)[1].removesuffix(")")
        assert f"kubectl -n {name} apply -f -" in command
        admin = subprocess.run(
            ["sh", "-c", command.replace("kubectl ", f"{shlex.quote(KUBECTL)} ")],
            env={**os.environ, "KUBECONFIG": ADMIN_KUBECONFIG},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert admin.returncode == 0, admin.stderr
        ok = user("run", str(root / "hello.py"))
        assert ok.code == 0 and ok.out == "hello after the admin\n", ok.err
        # the user may make the data volume: that much runner still does itself
        assert f"set up     persistentvolumeclaim/runner-data in {name}" in ok.err
    finally:
        delete_namespace(name)


def _waiting_line(proc: subprocess.Popen[str], want: Callable[[str], bool], *, log: list[str]) -> str:
    """Read the run's stderr until a `waiting` line ``want`` accepts; the clock starts when the Job exists
    (the line that says where the image is: `pushed` or `registry`)."""
    assert proc.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    stream = proc.stderr
    threading.Thread(target=lambda: [lines.put(ln) for ln in stream] + [lines.put("")], daemon=True).start()
    deadline: float | None = None
    start = time.monotonic()
    while True:
        now = time.monotonic()
        if deadline is not None and now > deadline:
            raise AssertionError("no waiting line within 60 s of the image being in the registry:\n" + "".join(log))
        if now - start > 600:
            raise AssertionError("the run never got to its Job:\n" + "".join(log))
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if not line:
            raise AssertionError("runner ended before saying why it waits:\n" + "".join(log))
        log.append(line)
        if deadline is None and line.startswith(("pushed ", "registry ")):
            deadline = time.monotonic() + REPORTED_WITHIN
        if line.startswith("waiting ") and want(line):
            return line.rstrip("\n")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=180)  # its stderr is read by _waiting_line's thread
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_a_quota_of_zero_pods_is_reported_in_run_status_and_logs(fresh: KubeRunner, project: Project) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods"},
        "spec": {"hard": {"pods": "0"}},
    }
    kubectl("-n", fresh.ns.name, "apply", "-f", "-", input=json.dumps(quota))
    root = project({"hello.py": "print('never runs')\n"})
    proc = fresh.popen("run", str(root / "hello.py"))
    log: list[str] = []
    run = ""
    try:
        line = _waiting_line(proc, lambda ln: "exceeded quota" in ln, log=log)
        assert "FailedCreate:" in line and "forbidden: exceeded quota: no-pods" in line
        run = run_name("".join(log))
        exp = fresh.experiment(f"{run}-exp0")
        assert exp["status"] == "queued" and "exceeded quota: no-pods" in exp["message"]
        table = fresh("status", run)
        assert table.code == 0 and "FailedCreate" in table.out, table.out
        logs = fresh("logs", f"{run}-exp0")
        assert logs.code == 0, logs.err
        assert f"{run}-exp0 is pending (queued): FailedCreate:" in logs.out and "exceeded quota" in logs.out
        # a quota frees up when other pods end: runner keeps waiting (no give-up), as README says
    finally:
        _stop(proc)
    assert proc.returncode == 130
    assert fresh.experiment(f"{run}-exp0")["status"] == "stopped"


class Proxy:
    """A TCP relay to the registry on a port of its own: the registry as far as runner and the Docker engine
    know; once closed, an address the cluster cannot pull from."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.server.close()


def test_an_image_that_cannot_be_pulled_is_reported_with_its_reason(fresh: KubeRunner, project: Project) -> None:
    proxy = Proxy(REGISTRY)
    root = project({"hello.py": "print('never pulled')\n"})
    try:
        r = fresh("run", "--detach", "--registry", f"127.0.0.1:{proxy.port}", str(root / "hello.py"))
    finally:
        proxy.close()  # the Job names the image at an address that is now gone
    assert r.code == 0, r.err
    run = run_name(r.err)
    deadline = time.monotonic() + REPORTED_WITHIN
    exp = fresh.experiment(f"{run}-exp0")
    while not (exp["message"] or "").startswith(("ErrImagePull", "ImagePullBackOff")):
        assert time.monotonic() < deadline, f"no pull failure reported within 60 s: {exp}"
        time.sleep(1)
        exp = fresh.experiment(f"{run}-exp0")
    assert exp["status"] == "queued" and f"127.0.0.1:{proxy.port}" in exp["message"]
    logs = fresh("logs", f"{run}-exp0")
    assert logs.code == 0 and f"{run}-exp0 is pending (queued): " in logs.out, logs.err
    assert "ErrImagePull" in logs.out or "ImagePullBackOff" in logs.out
    # following says it too, as `runner run` does while it waits
    follow = fresh.popen("logs", f"{run}-exp0", "--follow")
    try:
        assert follow.stdout is not None
        ready, _, _ = select.select([follow.stdout], [], [], REPORTED_WITHIN)
        assert ready, "logs --follow said nothing"
        first = follow.stdout.readline()
        assert first.startswith("[waiting] ") and ("ErrImagePull" in first or "ImagePullBackOff" in first), first
    finally:
        follow.kill()
        follow.communicate()
    assert fresh("stop", run).code == 0
