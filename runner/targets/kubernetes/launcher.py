"""The experiment's entrypoint on Kubernetes.  Standard library only: it runs on the image's python3.

It is shipped in the ConfigMap ``runner-launcher`` and mounted into the pod (never
built into the image, so the image stays byte-identical to the local target's).

    python3 launcher.py -- python3 SCRIPT ARGS...

* starts the user's command as a child in the working directory (``/project``),
  with the argv it was given, so ``sys.argv`` is the same as on the local target;
* forwards SIGTERM (``runner stop``, the Job's deadline, an eviction) to the child;
* tees the child's output as ``[stdout] [timestamp] text`` lines to its own
  stdout (the pod log, which ``runner logs --follow`` streams) and to the
  experiment's log file on the ``runner-data`` volume (which outlives the pod);
* enforces ``RUNNER_TIMEOUT`` itself, so a timeout is recorded as such;
* when the child ends, however it ends, copies every regular file under the
  working directory whose mtime is not 0 (the build gives all image files mtime 0)
  to the volume, and records the end state (exit code, signal, OOM kill seen in
  the container's memory cgroup, stop, timeout) in ``end.json`` there and in the
  run's ConfigMap (the part that holds this experiment: ``RUNNER_CONFIGMAP``), through
  the API with the pod's service-account token, so the CLI need not be connected for
  any of this.  An API server that does not answer is retried with backoff for
  ``RUNNER_RECORD_PATIENCE`` seconds (default 300); an end that still cannot be
  recorded stays in ``end.json``, where observers (``status``, ``stop``, ``logs``)
  find it;
* runs the script at most once per attempt: before it starts it claims attempt N by
  creating ``attempts/N`` in the experiment's folder on the volume (exclusive create, so
  of two pods exactly one gets it), N = 1 ... ``RUNNER_ATTEMPTS`` (``--retries`` + 1).  A
  second pod for the same attempt -- the Job controller, its cache stale after an API
  server outage, can start one -- waits while the claim's owner is alive (it touches the
  claim every few seconds), then runs nothing if the experiment has ended (completed,
  stopped, or failed with no attempt left) and exits with the experiment's outcome (0 if
  it completed, so the Job never fails a finished experiment), or takes the next attempt
  if the last one failed.  Such a pod writes nothing to the volume; it says why on its
  own output (``kubectl logs``);
* then, with ``--max-parallel``, resumes the next experiment's Job (``RUNNER_RELEASE``,
  created with ``spec.suspend: true``): a merge patch ``{"spec": {"suspend": false}}``.
  After the record, so whoever sees the successor run sees this one ended.  A Job not
  found yet is waited for (the CLI creates the runnable Jobs first); one that is gone
  because the run was stopped is not an error.  With ``--retries`` every attempt's end
  releases (one early release at most; the patch is idempotent).  An experiment
  stopped while queued (``RUNNER_QUEUED``, and ``<exp>.stop`` in the run ConfigMap)
  does not start the script when its turn comes: it only releases the next one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import IO, Any

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: HTTP answers that no retry can change (the end stays in end.json on the volume)
PERMANENT = (400, 401, 403, 404, 405, 410, 413, 415, 422)
#: an end's message is capped, so a run's ConfigMap keeps the room reserved for it (runner.targets.kubernetes.objects.END_RESERVE)
MAX_MESSAGE = 1024
OOM_FILES = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")
#: the build context's root in the image (runner.render.PROJECT_DIR); the script may run in a subfolder of it
PROJECT_DIR = "/project"
#: claims of the script's runs in the experiment's folder: attempts/1, attempts/2 ... (see claim_turn)
ATTEMPTS_DIR = "attempts"
#: seconds between touches of the running attempt's claim (so a waiting pod knows its owner is alive)
HEARTBEAT = 5.0
#: a claim untouched this long, by the waiter's own clock, belongs to a pod that died without an end
STALE = 60.0
#: SIGTERM/SIGINT came before the script started (the pod is being deleted: by the Job controller, say,
#: which ends the surplus pod of a Job). Set by a handler, because the launcher is the container's PID 1,
#: which the kernel spares from a signal's default action: without one the pod would linger until SIGKILL.
TERMINATED = threading.Event()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def oom_kills() -> int:
    """OOM kills the kernel counted in this container's memory cgroup (v2 or v1)."""
    for path in OOM_FILES:
        try:
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


class Tee:
    def __init__(self, log_path: str) -> None:
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        self._log = open(log_path, "ab")
        self._out = getattr(sys.stdout, "buffer", None)
        self._lock = threading.Lock()

    def line(self, stream: str, text: str) -> None:
        self.lines(stream, text.encode("utf-8", "surrogateescape"))

    def lines(self, stream: str, block: bytes) -> None:
        """Every line of ``block`` (lines without their last newline), all stamped with the time now:
        one write per read of the child's output, not one per line, so output keeps up."""
        prefix = f"[{stream}] [{now_iso()}] ".encode()
        formatted = prefix + block.replace(b"\n", b"\n" + prefix) + b"\n"
        with self._lock:
            if self._out is not None:
                self._out.write(formatted)
                self._out.flush()
            else:
                sys.stdout.write(formatted.decode("utf-8", "surrogateescape"))
                sys.stdout.flush()
            self._log.write(formatted)
            self._log.flush()

    def pump(self, stream: str, pipe: IO[bytes]) -> None:
        pending: list[bytes] = []  # a partial line, in pieces: joined once (a long line costs linear time)
        while True:
            chunk = pipe.read1(1 << 20) if hasattr(pipe, "read1") else pipe.read(1 << 20)
            if not chunk:
                break
            cut = chunk.rfind(b"\n")
            if cut < 0:
                pending.append(chunk)
                continue
            pending.append(chunk[:cut])
            self.lines(stream, b"".join(pending))
            pending = [chunk[cut + 1 :]] if cut + 1 < len(chunk) else []
        if pending:
            self.lines(stream, b"".join(pending))


def save_artifacts(workdir: str, dest: str) -> list[str]:
    saved = []
    for top, dirs, files in os.walk(workdir):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if not os.path.isfile(path) or os.path.islink(path) or int(st.st_mtime) == 0:
                continue
            rel = os.path.relpath(path, workdir)
            target = os.path.join(dest, rel)
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(path, target)
                saved.append(rel)
            except OSError as e:
                sys.stderr.write(f"runner launcher: cannot save {rel}: {e}\n")
    return saved


def api_base() -> str:
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def tls_context() -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=f"{SA_DIR}/ca.crt")


def api(method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
    with open(f"{SA_DIR}/token") as f:
        token = f.read().strip()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        api_base() + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type, "Accept": "application/json"},
    )
    with urllib.request.urlopen(req, context=tls_context(), timeout=15) as resp:
        return json.loads(resp.read() or b"null")


def namespace() -> str:
    with open(f"{SA_DIR}/namespace") as f:
        return f.read().strip()


def configmap_path() -> str:
    return f"/api/v1/namespaces/{namespace()}/configmaps/{os.environ['RUNNER_CONFIGMAP']}"


def release(job: str, *, experiment: str | None = None, wait_created: float = 60) -> None:
    """Resume the suspended Job ``job`` (the next experiment, ``--max-parallel``).

    Not found: the CLI may still be creating the run's Jobs (the runnable ones come first,
    so they start at once), so it is retried for ``wait_created`` seconds — unless this
    experiment was stopped (then the run's Jobs are being deleted: gone is fine).
    """
    path = f"/apis/batch/v1/namespaces/{namespace()}/jobs/{job}"
    body = {"spec": {"suspend": False}}
    error: Exception | None = None
    failures = 0
    deadline = time.monotonic() + wait_created
    give_up = time.monotonic() + float(os.environ.get("RUNNER_RECORD_PATIENCE") or 300)
    while True:
        try:
            api("PATCH", path, body, content_type="application/merge-patch+json")
            return
        except urllib.error.HTTPError as e:
            if e.code != 404:
                failures, error = failures + 1, e
            elif time.monotonic() > deadline or (experiment and stop_requested(experiment)):
                return
            else:
                time.sleep(1)
                continue
        except Exception as e:  # noqa: BLE001 - retried; then `runner status` repairs the chain
            failures, error = failures + 1, e
        permanent = isinstance(error, urllib.error.HTTPError) and error.code in PERMANENT
        if permanent or time.monotonic() > give_up:
            sys.stderr.write(f"runner launcher: cannot start the next experiment ({job}): {error}\n")
            return
        time.sleep(min(2.0 ** (failures - 1), 15.0))  # an API server that is down: back off, as record() does


def finish(experiment: str, end: dict[str, Any], data_dir: str) -> None:
    """Record the end, then hand this experiment's slot to the next one (if any)."""
    record(experiment, end, data_dir)
    successor = os.environ.get("RUNNER_RELEASE")
    if successor:
        release(successor, experiment=experiment)


def stop_requested(experiment: str) -> bool:
    try:
        data = api("GET", configmap_path()).get("data") or {}
    except Exception as e:  # noqa: BLE001 - the record still gets written, as "terminated"
        sys.stderr.write(f"runner launcher: cannot read the run record: {e}\n")
        return False
    return bool(data.get(f"{experiment}.stop"))


def note(data_dir: str, text: str) -> None:
    """A message for the user: on the pod's stderr and in the experiment's log on the volume."""
    sys.stderr.write(text + "\n")
    try:
        with open(os.path.join(data_dir, "log"), "ab") as f:
            f.write(f"[stderr] [{now_iso()}] {text}\n".encode("utf-8", "surrogateescape"))
    except OSError:
        pass


def record(experiment: str, end: dict[str, Any], data_dir: str, *, patience: float | None = None) -> bool:
    """The end in ``end.json`` on the volume first (it outlives everything), then in the run's ConfigMap.

    Answers that can change (no connection, timeouts, 5xx, 429, 409) are retried with
    backoff (1, 2, 4 ... 15 s) for ``patience`` seconds; a permanent refusal (e.g. 422) is
    not.  False when the end is only on the volume: observers take it from there.
    """
    if end.get("message") and len(str(end["message"])) > MAX_MESSAGE:
        end = {**end, "message": str(end["message"])[: MAX_MESSAGE - 3] + "..."}
    path = os.path.join(data_dir, "end.json")
    with open(path + ".tmp", "w") as f:  # then renamed: a pod waiting for this end never reads half of it
        json.dump(end, f)
    os.replace(path + ".tmp", path)
    if patience is None:
        patience = float(os.environ.get("RUNNER_RECORD_PATIENCE") or 300)
    body = {"data": {f"{experiment}.json": json.dumps(end, sort_keys=True)}}
    deadline = time.monotonic() + patience
    delay = 1.0
    while True:
        try:
            api("PATCH", configmap_path(), body, content_type="application/merge-patch+json")
            return True
        except Exception as e:  # noqa: BLE001 - retried, then left in end.json for the observers
            permanent = isinstance(e, urllib.error.HTTPError) and e.code in PERMANENT
            if permanent or time.monotonic() + delay > deadline:
                note(
                    data_dir,
                    f"runner: cannot record the end state in the run's ConfigMap ({e}); "
                    "it is kept in end.json on the data volume, where `runner status` finds it",
                )
                return False
            sys.stderr.write(f"runner launcher: recording the end state: {e}; retrying in {delay:g}s\n")
            time.sleep(delay)
            delay = min(delay * 2, 15.0)


#: what the script may read, as on the local target (runner.runtime: run_name, experiment_name, params);
#: the launcher's own RUNNER_* settings stay out of the script's environment
RUNTIME_VARS = ("RUNNER_RUN", "RUNNER_EXPERIMENT", "RUNNER_PARAMS", "RUNNER_RUNTIME")


def command_from_volume(data_dir: str) -> list[str]:
    """Arguments longer than exec allows are not in the Job: the CLI put the script's argv in
    ``argv.json`` in the experiment's folder on the volume (any length: no ConfigMap holds it).
    Copy it to RUNNER_ARGV_FILE and start the script through the bootstrap that reads it
    (``sys.argv`` is the same list ``python3 SCRIPT ARGS...`` would give)."""
    path = os.environ["RUNNER_ARGV_FILE"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shutil.copyfile(os.path.join(data_dir, "argv.json"), path)
    return ["python3", "-c", os.environ["RUNNER_ARGV_BOOTSTRAP"]]


def read_end(data_dir: str) -> dict[str, Any] | None:
    """The last attempt's end on the volume (``end.json``), None if there is none (yet)."""
    try:
        with open(os.path.join(data_dir, "end.json")) as f:
            end = json.load(f)
    except (OSError, ValueError):
        return None
    return end if isinstance(end, dict) else None


def claims(data_dir: str) -> list[int]:
    """The attempts claimed so far, in order."""
    try:
        names = os.listdir(os.path.join(data_dir, ATTEMPTS_DIR))
    except OSError:
        return []
    return sorted(int(n) for n in names if n.isdigit())


def claim(data_dir: str, attempt: int) -> bool:
    """Create ``attempts/<attempt>`` exclusively: True for the one pod that made it."""
    folder = os.path.join(data_dir, ATTEMPTS_DIR)
    os.makedirs(folder, exist_ok=True)
    try:
        fd = os.open(os.path.join(folder, str(attempt)), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"pod": os.environ.get("HOSTNAME"), "claimed_at": time.time()}, f)
    return True


def claim_of(data_dir: str, attempt: int) -> tuple[str | None, float]:
    """(the pod that claimed ``attempt``, the claim's mtime: its owner's last heartbeat).

    Opened, not only stat'ed: on NFS an open revalidates the file's attributes (close-to-open
    consistency), where a stat may answer from a cache up to a minute old."""
    try:
        with open(os.path.join(data_dir, ATTEMPTS_DIR, str(attempt))) as f:
            mtime = os.fstat(f.fileno()).st_mtime
            doc = json.loads(f.read() or "{}")
    except (OSError, ValueError):
        return None, -1.0
    pod = doc.get("pod") if isinstance(doc, dict) else None
    return (pod if isinstance(pod, str) else None), mtime


def final(end: dict[str, Any] | None, limit: int | None) -> bool:
    """Whether an end on the volume is the experiment's: nothing may run the script again."""
    if end is None:
        return False
    if end.get("state") in ("completed", "stopped"):
        return True
    attempt = end.get("attempt")
    return limit is not None and isinstance(attempt, int) and attempt >= limit


def outcome(end: dict[str, Any] | None) -> int:
    """The exit code of a pod that ran nothing: the experiment's outcome, so the Job's agrees with it
    (0 for a completed or stopped one: a finished experiment's Job never fails because of such a pod)."""
    if end is None or end.get("state") in ("completed", "stopped"):
        return 0 if end is not None else 1
    code = end.get("exit_code")
    return code if isinstance(code, int) and 0 < code < 256 else 1


def why_nothing(end: dict[str, Any] | None, limit: int | None) -> str:
    """Why a pod runs nothing, for its log: the experiment's end, or its attempts used up."""
    tries = f"{limit} attempt(s), --retries {limit - 1}" if limit else "every attempt"
    if end is None:
        return f"has used {tries}, the last without an end record"
    state = str(end.get("state") or "failed")
    if state in ("completed", "stopped"):
        return f"has ended ({state})"
    return f"has ended ({state}: {end.get('message') or 'exit code ' + str(end.get('exit_code'))}) after {tries}"


def say(text: str) -> None:
    """A line on this pod's own output only (``kubectl logs``), as the tee formats it; never on the volume."""
    sys.stdout.write(f"[stderr] [{now_iso()}] {text}\n")
    sys.stdout.flush()


def claim_turn(data_dir: str, limit: int | None) -> tuple[int | None, dict[str, Any] | None]:
    """This pod's attempt: (N, None) when it claimed attempt N and runs the script, else (None, the
    experiment's end, if any) when it must run nothing.

    Attempts are claimed in order and only once the one before has ended (its end on the
    volume names it) or its owner is gone (its claim untouched for :data:`STALE` s): so two
    pods of one experiment never run the script at the same time, and a pod the Job
    controller made twice for the same attempt does not run it again.
    """
    watched: tuple[int, float] | None = None  # (attempt, its claim's mtime) and since when (our clock) it stands
    since = 0.0
    told = False
    while True:
        if TERMINATED.is_set():
            return None, None
        end = read_end(data_dir)
        if final(end, limit):
            return None, end
        claimed = claims(data_dir)
        last = claimed[-1] if claimed else 0
        if last and not (end and end.get("attempt") == last):
            owner, mtime = claim_of(data_dir, last)
            if watched != (last, mtime):
                watched, since = (last, mtime), time.monotonic()
            ours = owner is not None and owner == os.environ.get("HOSTNAME")  # this pod's previous container
            if not ours and time.monotonic() - since < STALE:  # its owner is alive (or only just died): wait
                if not told:
                    say(f"runner: attempt {last} of this experiment is running in another pod; waiting for its end")
                    told = True
                time.sleep(1.0)
                continue
            say(f"runner: attempt {last} of this experiment ended without an end record (its container is gone)")
        if limit is not None and last >= limit:
            return None, end
        if claim(data_dir, last + 1):
            return last + 1, None
        # another pod claimed it first: its owner is alive, so wait for that attempt instead


def heartbeat(path: str, stop: threading.Event) -> None:
    """Touch our claim every :data:`HEARTBEAT` s, so a pod waiting for our end knows we are alive."""
    while not stop.wait(HEARTBEAT):
        try:
            os.utime(path)
        except OSError:
            pass


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    experiment = os.environ["RUNNER_EXPERIMENT"]
    data_dir = os.environ.get("RUNNER_DATA", "/runner-data")
    limit = int(os.environ["RUNNER_ATTEMPTS"]) if os.environ.get("RUNNER_ATTEMPTS") else None
    if os.environ.get("RUNNER_QUEUED") and stop_requested(experiment):
        # stopped while queued (--max-parallel): its end says "stopped" already; pass the turn on
        Tee(os.path.join(data_dir, "log")).line("stderr", "runner: stopped while queued: not started")
        successor = os.environ.get("RUNNER_RELEASE")
        if successor:
            release(successor, experiment=experiment)
        return 0
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: TERMINATED.set())
    attempt, ended = claim_turn(data_dir, limit)
    if attempt is None and TERMINATED.is_set():
        say(f"runner: this pod of experiment {experiment} was ended before its turn came: it ran nothing")
        return 128 + signal.SIGTERM
    if attempt is None:
        say(f"runner: experiment {experiment} {why_nothing(ended, limit)}: this pod runs nothing")
        return outcome(ended)
    alive = threading.Event()
    beat = threading.Thread(
        target=heartbeat, args=(os.path.join(data_dir, ATTEMPTS_DIR, str(attempt)), alive), daemon=True
    )
    beat.start()
    try:
        return run_attempt(command, experiment, data_dir, attempt)
    finally:
        alive.set()


def run_attempt(command: list[str], experiment: str, data_dir: str, attempt: int) -> int:
    """Run the script once (this pod's claimed ``attempt``), tee its output, record its end."""
    timeout = float(os.environ.get("RUNNER_TIMEOUT") or 0)
    # artifacts: everything the script changed under the project (it may run in a subfolder of it)
    workdir = PROJECT_DIR if os.path.isdir(PROJECT_DIR) else os.getcwd()
    tee = Tee(os.path.join(data_dir, "log"))
    oom_before = oom_kills()
    started = time.time()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_") or k in RUNTIME_VARS}
    try:
        if os.environ.get("RUNNER_ARGV_FILE"):
            command = command_from_volume(data_dir)
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError as e:
        tee.line("stderr", f"runner: cannot start {(command or ['the script'])[0]}: {e}")
        failed = {
            "state": "failed",
            "exit_code": 127,
            "reason": "Error",
            "message": f"cannot start: {e}",
            "started_at": started,
            "finished_at": time.time(),
            "pod": os.environ.get("HOSTNAME"),
            "attempt": attempt,
        }
        finish(experiment, failed, data_dir)
        return 127
    why: list[str] = []

    def terminate(reason: str) -> None:
        if not why:
            why.append(reason)
        try:
            child.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, lambda *_: terminate("terminated"))
    signal.signal(signal.SIGINT, lambda *_: terminate("terminated"))
    if TERMINATED.is_set():  # the signal came between the claim and the start
        terminate("terminated")
    pumps = [
        threading.Thread(target=tee.pump, args=(n, p), daemon=True)
        for n, p in (("stdout", child.stdout), ("stderr", child.stderr))
    ]
    for t in pumps:
        t.start()
    if timeout:
        timer = threading.Timer(timeout, terminate, args=("timeout",))
        timer.daemon = True
        timer.start()
    while True:
        try:
            code = child.wait()
            break
        except InterruptedError:
            continue
    for t in pumps:
        t.join(timeout=10)
    saved = save_artifacts(workdir, os.path.join(data_dir, "artifacts"))
    sig = -code if code < 0 else None
    exit_code = 128 + sig if sig else code
    end: dict[str, Any] = {
        "exit_code": exit_code,
        "signal": sig,
        "started_at": started,
        "finished_at": time.time(),
        "artifacts": len(saved),
        "pod": os.environ.get("HOSTNAME"),
        "attempt": attempt,
    }
    if why and why[0] == "timeout":
        end.update(
            state="failed",
            reason="DeadlineExceeded",
            message=f"deadline exceeded: stopped after --timeout {timeout:g}s",
        )
    elif why:
        if stop_requested(experiment):
            end.update(state="stopped", reason="Stopped", message="stopped")
        else:
            end.update(state="failed", reason="Terminated", message="terminated by SIGTERM (deleted or evicted)")
    elif sig == signal.SIGKILL and oom_kills() > oom_before:
        end.update(
            state="failed", reason="OOMKilled", message="OOMKilled: the experiment ran out of its --memory limit"
        )
    elif code == 0:
        end.update(state="completed", reason="Completed", message=None)
    else:
        end.update(state="failed", reason="Error", message=f"killed by signal {sig}" if sig else f"exit code {code}")
    finish(experiment, end, data_dir)
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
