"""Build speed (issue 10): runner's build against a hand-written Dockerfile, same base image, same lock, same run.

The yardstick is what someone who knows uv would write by hand: one stage, uv's
binary bind-mounted, the lock installed by ``uv pip install --no-cache`` into a
virtual environment, the code copied last, built with BuildKit through the same
Docker CLI (``docker build --no-cache`` for every yardstick build).

Cases, each timed from the command to the script's output, as a user sees it:

1. cold build + run: a base image no build has seen (a layer of its own on the shared base) and,
   for runner, an emptied installer cache (``--mount=type=cache,id=runner-uv``), no uv tools
   image and a new home, as on a machine that never built anything; then (1b) a new project of
   the same home, cold again (another new base, the installer cache emptied again), on an
   engine that has uv's tools image from the first;
2. one package bumped in the lock (tqdm), rebuild + run: runner against the
   yardstick rebuilt, and against a cached ``runner run`` of the same project;
3. a code-only change, rebuild + run, against a cached run;
   (and a second run of the yardstick's image: uv does not compile bytecode by default,
   so each of its runs compiles what it imports; runner compiles at install time)
4. with ``--registry HOST:PORT`` (the local cluster's, 127.0.0.1:5000): the bytes a
   push of the bumped image sends, i.e. the compressed layers its manifest has that
   the previous image's manifest does not.

5. with ``--classic``: the design before issue 10 (the classic builder, pip, two stages, the
   environment copied: ``RUNNER_BUILDKIT=0``), cold, and the image sizes.

    .venv/bin/python bench/bench_build.py [--small | --lock numpy==1.26.4,pandas==2.2.2,...] [--registry 127.0.0.1:5000]
        [--classic] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKER = "/usr/bin/docker"  # Debian's client: builds with BuildKit without buildx
CA = Path("/etc/ssl/certs/ca-certificates.crt")  # the index is reached through a TLS-intercepting proxy here
LOCK = {"six": "1.16.0", "attrs": "23.2.0", "tqdm": "4.66.4", "numpy": "1.26.4"}
BUMP = ("tqdm", "4.66.5")
#: import names that differ from the distribution's
IMPORTS = {"scikit-learn": "sklearn", "pyyaml": "yaml", "pillow": "PIL", "python-dateutil": "dateutil"}


def app_source(lock: dict[str, str]) -> str:
    """A script that imports every distribution of the lock and prints their versions."""
    mods = [IMPORTS.get(name, name.replace("-", "_")) for name in sorted(lock)]
    return (
        f"import {', '.join(mods)}\nfrom importlib.metadata import version\n"
        f"print('versions', *(version(d) for d in {sorted(lock)!r}))\n"
    )


YARDSTICK = """\
FROM {base}
RUN --mount=type=bind,source=uv,target=/usr/local/bin/uv \\
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \\
    --mount=type=secret,id=ca \\
    export SSL_CERT_FILE=/run/secrets/ca \\
 && uv venv --python python3 /opt/venv \\
 && uv pip install --no-cache --python /opt/venv/bin/python -r /tmp/requirements.txt
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /app
COPY app.py /app/
"""


def runner_cmd(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("runner")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "runner", *args]


def settle() -> None:
    """Let the disk and the engine finish what the untimed set-up started (a removed image's layers, a new venv)."""
    os.sync()
    time.sleep(1)


def timed(cmd: list[str], env: dict[str, str], *, expect: str = "") -> tuple[float, str]:
    settle()
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if p.returncode != 0 or expect not in p.stdout:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stdout[-1000:]}\n{p.stderr[-3000:]}")
    return elapsed, p.stderr


def write_lock(folder: Path, lock: dict[str, str]) -> None:
    (folder / "requirements.txt").write_text("".join(f"{k}=={v}\n" for k, v in sorted(lock.items())))


def yardstick(folder: Path, tag: str, env: dict[str, str], expect: str, tags: list[str]) -> float:
    """Build (no layer cache, no installer cache) and run the hand-written image."""
    tags.append(tag)
    settle()
    t = time.perf_counter()
    b = subprocess.run(
        [DOCKER, "build", "--no-cache", "-q", "--secret", f"id=ca,src={CA}", "-t", tag, str(folder)],
        env={**env, "DOCKER_BUILDKIT": "1"},
        capture_output=True,
        text=True,
    )
    if b.returncode != 0:
        sys.exit(f"yardstick build failed:\n{b.stderr[-3000:]}")
    r = subprocess.run([DOCKER, "run", "--rm", tag, "python3", "app.py"], capture_output=True, text=True)
    if expect not in r.stdout:
        sys.exit(f"yardstick run failed: {r.stdout}{r.stderr}")
    return time.perf_counter() - t


def empty_runner_cache(base: str, env: dict[str, str], *, tools: bool = True) -> None:
    """Empty runner's installer cache mount and (``tools``) remove its uv image, as on an engine that never built."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "Dockerfile").write_text(
            f"FROM {base}\nRUN --mount=type=cache,target=/c,id=runner-uv find /c -mindepth 1 -delete\n"
            f"LABEL runner.bench={uuid.uuid4().hex}\n"
        )
        subprocess.run(
            [DOCKER, "build", "--no-cache", "-q", "-t", "runner-bench-empty:latest", tmp],
            check=True,
            env={**env, "DOCKER_BUILDKIT": "1"},
            capture_output=True,
        )
        subprocess.run([DOCKER, "rmi", "-f", "runner-bench-empty:latest"], capture_output=True)
    if not tools:
        return
    # and uv's tools image, which runner makes once per engine
    made = subprocess.run(
        [DOCKER, "images", "-q", "runner-uv"], capture_output=True, text=True, check=True
    ).stdout.split()
    if made:
        subprocess.run([DOCKER, "rmi", "-f", *made], capture_output=True)


def image_of(stderr: str) -> str:
    return next(ln.split()[1] for ln in stderr.splitlines() if ln.startswith("image "))


def manifest_layers(registry: str, ref: str) -> dict[str, int]:
    repo, _, tag = ref.rpartition(":")
    req = urllib.request.Request(
        f"http://{registry}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        doc = json.load(resp)
    return {layer["digest"]: int(layer["size"]) for layer in doc["layers"]}


def user_env(folder: Path, uv_bin: str, lock: dict[str, str]) -> Path:
    """The user's interpreter: a virtual environment with the lock installed, as where runner is typed
    (runner pins what is installed there; untimed)."""
    env = {**os.environ, "SSL_CERT_FILE": str(CA)} if CA.exists() else dict(os.environ)
    subprocess.run([uv_bin, "venv", "-q", "--python", sys.executable, str(folder)], check=True, env=env)
    install(folder, uv_bin, lock)
    return folder / "bin" / "python"


def install(folder: Path, uv_bin: str, lock: dict[str, str]) -> None:
    env = {**os.environ, "SSL_CERT_FILE": str(CA)} if CA.exists() else dict(os.environ)
    pins = [f"{k}=={v}" for k, v in sorted(lock.items())]
    subprocess.run(
        [uv_bin, "pip", "install", "-q", "--python", str(folder / "bin" / "python"), *pins], check=True, env=env
    )


def push(registry: str, ref: str) -> float:
    remote = f"{registry}/{ref}"
    subprocess.run([DOCKER, "tag", ref, remote], check=True)
    t = time.perf_counter()
    subprocess.run([DOCKER, "push", remote], check=True, capture_output=True)
    return time.perf_counter() - t


def fresh_base(base: str) -> str:
    """A base image id of its own: BuildKit keys a base by its layers, so a new label alone would not do."""
    tag = f"runner-bench-base:{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "Dockerfile").write_text(f"FROM {base}\nRUN echo {tag} > /etc/runner-bench\n")
        subprocess.run([DOCKER, "build", "-q", "-t", tag, tmp], check=True, capture_output=True)
    return tag


def image_size(ref: str) -> int:
    out = subprocess.run([DOCKER, "image", "inspect", "-f", "{{.Size}}", ref], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def one_round(
    base: str,
    lock: dict[str, str],
    app: str,
    uv_bin: str,
    registry: str | None,
    repeat: int,
    hand_tags: list[str],
    *,
    classic: bool = False,
) -> dict[str, object]:
    """Every case once, on a base image id of its own (so no layer of an earlier round is reused)."""
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        fresh = fresh_base(base)
        env = {**os.environ, "RUNNER_BASE_IMAGE": fresh, "RUNNER_HOME": str(Path(tmp, "home"))}
        proj, hand = Path(tmp, "proj"), Path(tmp, "hand")
        for d in (proj, hand):
            d.mkdir()
            (d / "app.py").write_text(app)
            write_lock(d, lock)
        shutil.copy(uv_bin, hand / "uv")
        (hand / "Dockerfile").write_text(YARDSTICK.format(base=fresh))
        python = user_env(Path(tmp, "user-venv"), uv_bin, lock)
        run = runner_cmd(
            "run",
            "--local",
            "--python",
            str(python),
            "--requirements",
            str(proj / "requirements.txt"),
            str(proj / "app.py"),
        )

        # 1. cold: the yardstick, then runner with an emptied installer cache
        out["yardstick_cold_s"] = yardstick(
            hand, f"runner-bench-hand:{uuid.uuid4().hex[:8]}", env, "versions", hand_tags
        )
        # the yardstick's image has no bytecode (uv's default): every run compiles what it imports
        t = time.perf_counter()
        subprocess.run([DOCKER, "run", "--rm", hand_tags[-1], "python3", "app.py"], check=True, capture_output=True)
        out["yardstick_run_s"] = time.perf_counter() - t
        empty_runner_cache(fresh, env)
        out["runner_cold_s"], err = timed(run, env, expect="versions")
        before = image_of(err)
        # cached runs are taken after each case, so a busy moment of a shared machine weighs less
        cached = [timed(run, env, expect="versions")[0] for _ in range(repeat)]

        # 1b. cold again, a new project of the same home on an engine that has built before (uv's
        # tools image is there), the installer cache emptied again, a base of its own
        other = fresh_base(base)
        proj2 = Path(tmp, "proj2")
        shutil.copytree(proj, proj2)
        empty_runner_cache(other, env, tools=False)
        run2 = [*run[:-2], str(proj2 / "requirements.txt"), str(proj2 / "app.py")]
        out["runner_cold_new_project_s"], err = timed(run2, {**env, "RUNNER_BASE_IMAGE": other}, expect="versions")
        subprocess.run([DOCKER, "rmi", "-f", image_of(err), other], capture_output=True)

        # 2. one package bumped: the yardstick rebuilt (no cache), runner rebuilt
        bumped = {**lock, BUMP[0]: BUMP[1]}
        install(Path(tmp, "user-venv"), uv_bin, bumped)
        for d in (proj, hand):
            write_lock(d, bumped)
        out["yardstick_bump_s"] = yardstick(hand, f"runner-bench-hand:{uuid.uuid4().hex[:8]}", env, BUMP[1], hand_tags)
        out["runner_bump_s"], err = timed(run, env, expect=BUMP[1])
        after = image_of(err)
        cached += [timed(run, env, expect=BUMP[1])[0] for _ in range(repeat)]

        # 3. code only
        (proj / "app.py").write_text(app + "print('changed')\n")
        out["runner_code_change_s"], _ = timed(run, env, expect="changed")
        cached += [timed(run, env, expect="changed")[0] for _ in range(repeat)]
        out["runner_cached_run_s"] = statistics.median(cached)

        sizes = subprocess.run(
            [DOCKER, "history", "--format", "{{.Size}}\t{{.CreatedBy}}", after],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        out["layers_after_bump"] = [
            f"{ln.split(chr(9))[0]:>8}  {ln.split(chr(9))[1][:80]}" for ln in sizes.splitlines()
        ]
        if registry:
            push(registry, before)
            old = manifest_layers(registry, before)
            out["bump_push_s"] = push(registry, after)
            new = manifest_layers(registry, after)
            sent = {d: n for d, n in new.items() if d not in old}
            out.update(
                {
                    "image_compressed_bytes": sum(new.values()),
                    "bump_pushed_layers": len(sent),
                    "bump_pushed_bytes": sum(sent.values()),
                }
            )
        out["image_bytes"] = image_size(after)
        out["yardstick_image_bytes"] = image_size(hand_tags[-1])
        if classic:
            # 5. before issue 10: the classic builder (pip, two stages, the environment copied), on a base of its own
            again = fresh_base(base)
            (proj / "app.py").write_text(app + "print('classic')\n")
            old_env = {**env, "RUNNER_BASE_IMAGE": again, "RUNNER_BUILDKIT": "0"}
            out["classic_cold_s"], err = timed(run, old_env, expect="classic")
            out["classic_image_bytes"] = image_size(image_of(err))
            subprocess.run([DOCKER, "rmi", "-f", image_of(err), again], capture_output=True)
        subprocess.run([DOCKER, "rmi", "-f", fresh], capture_output=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--small", action="store_true", help="leave numpy out of the lock")
    ap.add_argument("--lock", help="the lock instead: NAME==VERSION,... (must contain tqdm, the bumped package)")
    ap.add_argument("--registry", help="measure the pushed bytes of the bump against this registry (HOST:PORT)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every case; medians are reported")
    ap.add_argument("--repeat", type=int, default=3, help="cached runs per round (their median)")
    ap.add_argument("--classic", action="store_true", help="also the design before issue 10 (RUNNER_BUILDKIT=0), cold")
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    base = os.environ.get("RUNNER_BASE_IMAGE", "runner-python:3.11")
    lock = {k: v for k, v in LOCK.items() if not (opts.small and k == "numpy")}
    if opts.lock:
        lock = dict(item.split("==", 1) for item in opts.lock.split(","))
    app = app_source(lock)
    import uv

    # byte-compiled as an installed runner is (bench_local.py does the same)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "runner")], check=True)
    hand_tags: list[str] = []
    rounds = [
        one_round(
            base,
            lock,
            app,
            uv.find_uv_bin(),
            opts.registry if i == 0 else None,
            opts.repeat,
            hand_tags,
            classic=opts.classic,
        )
        for i in range(opts.rounds)
    ]
    subprocess.run([DOCKER, "rmi", "-f", *hand_tags], capture_output=True)
    load_after = os.getloadavg()[0]

    def med(key: str) -> float:
        return statistics.median(float(r[key]) for r in rounds)  # type: ignore[arg-type]

    results: dict[str, object] = {
        "lock": lock,
        "bump": f"{BUMP[0]} {lock[BUMP[0]]} -> {BUMP[1]}",
        "rounds": opts.rounds,
        "load_average_before": os.getloadavg()[0],
    }
    for key in (
        "yardstick_cold_s",
        "yardstick_run_s",
        "runner_cold_s",
        "runner_cold_new_project_s",
        "runner_cached_run_s",
        "yardstick_bump_s",
        "runner_bump_s",
        "runner_code_change_s",
    ):
        results[key] = round(med(key), 2)
        results[key + "_all"] = [round(float(r[key]), 2) for r in rounds]  # type: ignore[arg-type]
    results.update(
        {
            "cold_ratio_vs_yardstick": round(med("runner_cold_s") / med("yardstick_cold_s"), 2),
            "cold_new_project_ratio_vs_yardstick": round(med("runner_cold_new_project_s") / med("yardstick_cold_s"), 2),
            "bump_ratio_vs_yardstick": round(med("runner_bump_s") / med("yardstick_bump_s"), 2),
            "bump_ratio_vs_cached_run": round(med("runner_bump_s") / med("runner_cached_run_s"), 2),
            "code_ratio_vs_cached_run": round(med("runner_code_change_s") / med("runner_cached_run_s"), 2),
        }
    )
    results["load_average_after"] = load_after
    for key in ("image_bytes", "yardstick_image_bytes", "classic_image_bytes", "classic_cold_s"):
        if key in rounds[0]:
            results[key] = round(med(key), 2)
    for key in (
        "image_compressed_bytes",
        "bump_pushed_layers",
        "bump_pushed_bytes",
        "bump_push_s",
        "layers_after_bump",
    ):
        if key in rounds[0]:
            results[key] = rounds[0][key]
    if opts.json:
        print(json.dumps(results, indent=2))
        return
    for key, value in results.items():
        if isinstance(value, list) and value and isinstance(value[0], str):
            print(f"{key}:")
            for item in value:
                print(f"  {item}")
        else:
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
