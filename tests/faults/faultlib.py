"""What every fault case shares: the ticking experiment, fault injectors that restore what they touch, and the checks.

Each injector stops or fills only what it started or was asked to disturb, by PID, and
puts it back in a ``finally`` (the fixtures in conftest.py wrap them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support import BASE_IMAGE, Runner, run_name

DOCKER = "/usr/bin/docker"  # Debian's client, as scripts/docker-up.sh uses
CLUSTER = Path("/var/lib/runner-cluster")

#: the experiment of every case: an artifact at start, one line a second, an artifact at the end, its own exit code
TICK = """\
import os, sys, time
n, code = int(sys.argv[1]), int(sys.argv[2])
os.makedirs("out", exist_ok=True)
open("out/start.txt", "w").write("start")
for i in range(n):
    print("tick", i, flush=True)
    time.sleep(1)
open("out/end.txt", "w").write("end")
print("done", flush=True)
sys.exit(code)
"""

#: as TICK, then grows until the memory limit kills it
HOG = """\
import os, time
os.makedirs("out", exist_ok=True)
open("out/start.txt", "w").write("start")
for i in range(3):
    print("tick", i, flush=True)
    time.sleep(1)
chunks = []
while True:
    chunks.append(bytearray(8 * 2**20))
"""


def no_traceback(err: str) -> None:
    assert "Traceback" not in err and "Exception in thread" not in err and "internal error" not in err, err


#: a dependency to install makes the build long enough to interrupt (pip in a RUN step)
SLOW_BUILD = {"tick.py": "import boto3  # noqa: F401\n" + TICK}


@contextmanager
def fresh_base() -> Iterator[str]:
    """A base image no layer of any build has seen (the installer's layer cannot be reused), removed after."""
    import uuid

    tag = f"runner-fault-base:{uuid.uuid4().hex[:12]}"
    base = os.environ.get("RUNNER_BASE_IMAGE", "runner-python:3.11")
    subprocess.run(
        [DOCKER, "build", "-q", "-t", tag, "-"],
        input=f"FROM {base}\nRUN echo {tag} > /etc/fault-salt\n",
        text=True,
        check=True,
        capture_output=True,
    )
    try:
        yield tag
    finally:
        subprocess.run([DOCKER, "image", "rm", "-f", tag], capture_output=True)


def build_containers() -> set[str]:
    """Processes of a running install step of a build (PIDs): BuildKit runs its steps outside
    `docker ps`, so they are found by command line (runner's install script, or pip)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ")
        except OSError:
            continue
        if b"/run/runner/install.sh" in cmd or b"pip install" in cmd:
            found.add(entry)
    return found


def wait_for(cond: Callable[[], bool], *, timeout: float = 120, every: float = 0.3, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def texts(log: str, stream: str = "stdout") -> list[str]:
    """The text of each ``[stream] [time] text`` line of `runner logs`."""
    return [ln.split("] ", 2)[2] for ln in log.splitlines() if ln.startswith(f"[{stream}]")]


def ticks(lines: list[str]) -> list[int]:
    return [int(t.split()[1]) for t in lines if t.startswith("tick ")]


class Following:
    """`runner run ...` in the background, its stderr read line by line (so a case can act at a given moment)."""

    def __init__(self, runner: Runner, *args: str, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [*_python(), "-m", "runner", *args],
            env=runner.env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        import threading

        assert self.proc.stdout is not None and self.proc.stderr is not None
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _read(stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))

    def wait_out(self, text: str, *, timeout: float = 240) -> None:
        wait_for(
            lambda: any(text in ln for ln in self.out) or self.proc.poll() is not None,
            timeout=timeout,
            what=f"{text!r} on stdout",
        )
        assert any(text in ln for ln in self.out), f"ended before {text!r}:\n" + "\n".join(self.err[-30:])

    def wait_err(self, text: str, *, timeout: float = 240) -> None:
        wait_for(
            lambda: any(text in ln for ln in self.err) or self.proc.poll() is not None,
            timeout=timeout,
            what=f"{text!r} on stderr",
        )
        assert any(text in ln for ln in self.err), f"ended before {text!r}:\n" + "\n".join(self.err[-30:])

    def finish(self, *, timeout: float = 300) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()  # our own CLI, by its Popen
                self.proc.wait()
        time.sleep(0.2)  # the reader threads drain the pipes
        return code

    @property
    def run(self) -> str:
        return run_name("\n".join(self.err))

    @property
    def stderr(self) -> str:
        return "\n".join(self.err)


def _python() -> list[str]:
    import sys

    return [sys.executable]


def check_consistent(
    runner: Runner,
    run: str,
    *,
    status: str,
    exit_code: int | None,
    message: str | None = None,
    upto: int,
    complete: bool,
    dest: Path,
) -> dict[str, Any]:
    """After a fault: status and history agree and are final, the log has every tick up to ``upto`` (and the
    end when ``complete``), the start artifact (and the end one when ``complete``) is kept."""
    doc: Any = runner.json("status", run)
    exp = doc["experiment_list"][0]
    assert doc["status"] == status and exp["status"] == status, doc
    assert exp["exit_code"] == exit_code, exp
    if message is not None:
        assert message in (exp["message"] or ""), exp
    hist: Any = runner.json("history")
    assert [h["status"] for h in hist if h["run"] == run] == [status], hist
    assert not any(h["status"] in ("running", "building", "queued") for h in hist if h["run"] == run)
    got = ticks(texts(runner("logs", run).out))
    assert got[: upto + 1] == list(range(upto + 1)), got  # complete up to the fault, each line once, in order
    assert got == sorted(set(got)), got  # the script ran once: no attempt repeated by a second pod
    r = runner("artifacts", run, "--download-dir", str(dest))
    assert r.code == 0, r.err
    files = dest / run / f"{run}-exp0" / "out"
    assert (files / "start.txt").read_text() == "start"
    assert (files / "end.txt").is_file() == complete
    return dict(exp)


# -- a private Docker engine ----------------------------------------------------------------------


class PrivateEngine:
    """A dockerd of our own (own data root, exec root, socket and pid file, own bridge, no iptables rules),
    so that restarting it disturbs nobody; the base image is copied in from the shared engine.

    Never ``--bridge=none``: a dockerd started so deletes the host's docker0, the shared engine's bridge.
    Our bridge is made here (``-b`` takes an existing one) and deleted in :meth:`close`.
    """

    #: a subnet no one else here uses (docker0 is 172.17/16, the cluster's pods 10.88/16, services 10.96/16)
    SUBNET = "10.213.0.1/24"

    def __init__(self, *, live_restore: bool) -> None:
        self.live_restore = live_restore
        self.root = Path(tempfile.mkdtemp(prefix="rf-", dir="/tmp"))  # short: unix socket paths are limited
        self.sock = self.root / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.bridge = f"rfbr{os.getpid() % 100000}"
        (self.root / "daemon.json").write_text(json.dumps({"live-restore": live_restore}))

    def docker(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        p = subprocess.run([DOCKER, "-H", self.host, *args], input=input, capture_output=True, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {p.stderr.decode()}")
        return p.stdout.decode()

    def start(self) -> None:
        if not Path(f"/sys/class/net/{self.bridge}").exists():
            for cmd in (
                ["link", "add", self.bridge, "type", "bridge"],
                ["addr", "add", self.SUBNET, "dev", self.bridge],
                ["link", "set", self.bridge, "up"],
            ):
                subprocess.run(["ip", *cmd], check=True)
        with open(self.root / "dockerd.log", "ab") as log:
            self.proc = subprocess.Popen(
                [
                    "dockerd",
                    "--data-root",
                    str(self.root / "data"),
                    "--exec-root",
                    str(self.root / "exec"),
                    "--pidfile",
                    str(self.root / "dockerd.pid"),
                    "-H",
                    self.host,
                    "--config-file",
                    str(self.root / "daemon.json"),
                    "--bridge",
                    self.bridge,
                    "--iptables=false",
                    "--ip-masq=false",
                    "--ip-forward=false",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(
            lambda: subprocess.run([DOCKER, "-H", self.host, "version"], capture_output=True).returncode == 0,
            timeout=60,
            what="the private dockerd",
        )

    def stop(self) -> None:
        """SIGTERM to our dockerd, by PID; it stops its containers unless live-restore is on."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def load_base_image(self) -> None:
        image = subprocess.run([DOCKER, "save", BASE_IMAGE], capture_output=True, check=True, timeout=300).stdout
        self.docker("load", input=image)

    def containers(self, run: str) -> list[str]:
        return self.docker("ps", "-aq", "--filter", f"label=runner/run={run}").split()

    def close(self) -> None:
        """Remove our containers, stop our dockerd and the containerd it started, unmount and delete our folders."""
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq", check=False).split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
        self.stop()
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        if pidfile.is_file():  # with live-restore on, dockerd leaves its containerd running
            try:
                pid = int(pidfile.read_text().split()[0])
                if str(self.root) in Path(f"/proc/{pid}/cmdline").read_text():
                    os.kill(pid, signal.SIGTERM)
                    wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=20, what="our containerd to end")
            except (OSError, ValueError):
                pass
        mounts = subprocess.run(["findmnt", "-rno", "TARGET"], capture_output=True, text=True).stdout.split()
        for m in sorted((m for m in mounts if m.startswith(str(self.root))), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        subprocess.run(["ip", "link", "del", self.bridge], check=False, capture_output=True)


# -- the development cluster's components (tests/cluster/lib.sh: plain processes with PID files) ------


def proc_starttime(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


class Component:
    """One component of the cluster, stopped by the PID in its PID file and started again with the very command
    line, environment and folder it had (read from /proc), logging and tracked as tests/cluster/lib.sh does."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pidfile = CLUSTER / "pids" / f"{name}.pid"
        self.logfile = CLUSTER / "logs" / f"{name}.log"
        pid, start = self.pidfile.read_text().split()
        assert proc_starttime(int(pid)) == start, f"{name} is not running (its PID file is stale)"
        self.pid = int(pid)
        self.argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        environ = Path(f"/proc/{pid}/environ").read_bytes().rstrip(b"\0").split(b"\0")
        self.environ = dict(e.split(b"=", 1) for e in environ if b"=" in e)
        self.cwd = os.readlink(f"/proc/{pid}/cwd")
        self.proc: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        try:
            pid, start = self.pidfile.read_text().split()
        except (OSError, ValueError):
            return False
        return proc_starttime(int(pid)) == start

    def stop(self) -> None:
        pid = self.pid
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while proc_starttime(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc_starttime(pid) is not None:
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: proc_starttime(pid) is None, timeout=10, what=f"{self.name} to end")

    def start(self) -> None:
        with open(self.logfile, "ab") as log:
            log.write(f"\n==== {time.strftime('%F %T')} starting {self.name} (restarted by tests/faults)\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                env=self.environ,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.proc.pid
        start = None
        while start is None:
            start = proc_starttime(self.pid)
        self.pidfile.write_text(f"{self.pid} {start}\n")

    @contextmanager
    def down(self) -> Iterator[None]:
        """Stopped inside the block; always running again after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()
