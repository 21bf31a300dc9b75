"""``python -m runner.targets.local.watch EXPERIMENT PREVIOUS_OWNER``: follow a detached experiment to its end;
``python -m runner.targets.local.watch --run``: drive a detached run (see :meth:`runner.targets.local.LocalTarget.drive`).

Started by runner in its own session; it claims the experiment (compare-and-set on
the owner), so when several runner commands try to take over only one follows.
"""

from __future__ import annotations

import os
import sys

from runner.home import Home


def drive_run() -> int:
    """``--run``: drive a detached run's experiments (specs as JSON on standard input)."""
    import json

    from runner.adapters.docker_engine import ContainerSpec, DockerEngine
    from runner.store import Store
    from runner.targets.local import LocalTarget

    doc = json.load(sys.stdin)
    home = Home.from_env()
    store = Store(home.db, records=home.runs)
    names = [n for n in doc["experiments"] if store.claim(n, pid=os.getpid(), previous=doc["owner"])]
    target = LocalTarget(home, store, DockerEngine())
    specs = {n: ContainerSpec(**doc["specs"][n]) for n in names}
    for _ in target.drive(names, specs, max_parallel=doc["max_parallel"]):
        pass
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--run"]:
        return drive_run()
    name, previous = argv[0], (int(argv[1]) if len(argv) > 1 and argv[1] else None)
    from runner.adapters.docker_engine import DockerEngine
    from runner.store import Store
    from runner.targets.local import LocalTarget

    home = Home.from_env()
    store = Store(home.db, records=home.runs)
    if not store.claim(name, pid=os.getpid(), previous=previous):
        return 0  # someone else took it over
    target = LocalTarget(home, store, DockerEngine())
    for _ in target.follow(name):
        pass
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:  # noqa: BLE001 - one line in watch.log, not a traceback
        if os.environ.get("RUNNER_DEBUG"):
            raise
        sys.stderr.write(f"runner watch {' '.join(sys.argv[1:2])}: {type(e).__name__}: {e}\n")
        sys.exit(1)
