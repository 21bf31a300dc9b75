"""`runner ui` page load times (issue 13: the runs page and a 1,000-experiment run's page under 1 s).

A history is written with runner's own store: 300 runs (one with 1,000 experiments, each
with a metrics.csv of 50 steps among its artifacts), all ended.  The server is `runner ui`
as a user starts it; the pages are loaded in headless Chromium (the OS package), cache
cleared each time, and timed by the browser's Navigation Timing: request to load event.
The run page's plots come after its load event (fetched by the page); that time is shown too.

    .venv/bin/python bench/bench_ui.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from uibrowser import chrome, ui_server, wait  # noqa: E402

from runner.home import Home  # noqa: E402
from runner.model import ExpState  # noqa: E402
from runner.store import Store  # noqa: E402


def make_history(home: Home, *, runs: int, big: int) -> str:
    store = Store(home.db)
    names = iter(range(10**6))
    big_name = ""
    for i in range(runs):
        n = big if i == runs // 2 else 1 + i % 8
        exps = [
            (
                ["python3", "train.py", "--lr", str(j / 1000), "--batch", str(32 * (1 + j % 4))],
                {"--lr": str(j / 1000), "--batch": str(32 * (1 + j % 4))},
            )
            for j in range(n)
        ]
        run = store.create_run(
            make_name=lambda: f"bench-run-{next(names):04d}",
            project="proj",
            root="/p",
            script="train.py",
            args=[],
            target="local",
            options={},
            experiments=exps,
            state=ExpState.QUEUED,
        )
        for e in store.experiments(run.name):
            store.update_experiment(e.name, started_at=e.created_at)
            store.finish_experiment(
                e.name,
                state=ExpState.COMPLETED if e.index % 10 else ExpState.FAILED,
                exit_code=0 if e.index % 10 else 1,
                message=None if e.index % 10 else "exit code 1",
            )
        if n == big:
            big_name = run.name
            for e in store.experiments(run.name):
                art = home.artifacts(run.name, e.name)
                art.mkdir(parents=True)
                rows = "".join(f"{s},{1 / (1 + s * (e.index + 1) / 1000)}\n" for s in range(50))
                (art / "metrics.csv").write_text("step,loss\n" + rows)
    store.close()
    return big_name


def load_ms(d: object, url: str) -> float:
    d.execute_cdp_cmd("Network.clearBrowserCache", {})  # type: ignore[attr-defined]
    d.get(url)  # type: ignore[attr-defined]
    t = d.execute_script(  # type: ignore[attr-defined]
        "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime"
    )
    return float(t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home")
        t = time.perf_counter()
        big = make_history(home, runs=300, big=1000)
        print(f"history: 300 runs, {big} with 1000 experiments ({time.perf_counter() - t:.1f} s to write)")
        env = {**os.environ, "RUNNER_HOME": str(home.root)}
        env.pop("KUBECONFIG", None)
        with ui_server(env) as url, chrome(Path(tmp)) as d:
            d.execute_cdp_cmd("Network.enable", {})
            for label, page in (("runs page (300 runs)", "/"), ("run page (1000 experiments)", f"/runs/{big}")):
                load_ms(d, url + page)  # warm the server's caches, as a second visit would
                times = [load_ms(d, url + page) for _ in range(args.repeat)]
                print(
                    f"{label:<32} load {statistics.median(times):6.0f} ms median, {max(times):6.0f} ms max "
                    f"(n={args.repeat}, cache cleared)"
                )
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                d.get(f"{url}/runs/{big}")
                wait(
                    "plots",
                    lambda: d.execute_script("return document.getElementById('metrics').dataset.ready"),
                    every=0.01,
                )
                times.append((time.perf_counter() - t) * 1000)
            print(
                f"{'run page to its plot (1000 lines)':<32} {statistics.median(times):6.0f} ms median, "
                f"{max(times):6.0f} ms max (plotly.js cached)"
            )


if __name__ == "__main__":
    main()
