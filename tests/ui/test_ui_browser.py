"""`runner ui` in headless Chromium against real runs on the real Docker engine (local target).

The Kubernetes runs' part is tests/e2e/test_ui_kube.py (it needs the cluster).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from support import Runner, run_name
from uibrowser import console_errors, screenshot, table_rows, ui_server, wait

pytestmark = pytest.mark.integration
Project = Callable[[dict[str, str]], Path]

#: metrics the script writes itself, with no runner API: a CSV with a header and a JSON-lines file
TRAIN = """\
import argparse, csv, json, os
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
lr = p.parse_args().lr
with open("metrics.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["epoch", "step", "loss"])
    for s in range(5):
        w.writerow([0, s, 1.0 / (1 + lr * s)])
with open("acc.jsonl", "w") as f:
    for s in range(4):
        f.write(json.dumps({"step": s, "acc": lr * s}) + "\\n")
os.makedirs("out", exist_ok=True)
with open("out/weights.bin", "wb") as f:
    f.write((f"lr={lr}\\n".encode() + bytes(range(256))) * 64)
print("<script>alert('from the script')</script><img src=x onerror=alert(2)> done", lr)
"""

#: prints its own clock every 0.7 s (the container shares the host's clock) until stopped
TICKER = """\
import time
for i in range(1000):
    print(f"TICK {i} {time.time():.6f}", flush=True)
    time.sleep(0.7)
"""


def no_alert(d: webdriver.Chrome) -> None:
    try:
        text = d.switch_to.alert.text
    except NoAlertPresentException:
        return
    raise AssertionError(f"the page ran something the script printed: alert {text!r}")


def test_sweep_runs_metrics_artifact_download(
    runner: Runner, project: Project, browser: webdriver.Chrome, downloads: Path
) -> None:
    proj = project({"train.py": TRAIN})
    lrs = ["0.1", "0.01", "0.001"]
    r = runner("run", "--local", "--sweep", "train.py", "--lr", f"[{', '.join(lrs)}]", cwd=proj)
    assert r.code == 0, r.err
    run = run_name(r.err)
    with ui_server(runner.env) as url:
        # runs
        browser.get(url + "/")
        rows = {row["run"]: row for row in table_rows(browser, "#runs")}
        assert rows[run]["target"] == "local" and rows[run]["status"] == "completed"
        assert rows[run]["cells"][6] == "3"  # experiments
        screenshot(browser, "runs")

        # a run: one column per swept argument, and one plot per metric with a line per experiment
        browser.get(f"{url}/runs/{run}")
        headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#experiments thead th")]
        assert headers[:2] == ["Experiment", "--lr"]
        exps = table_rows(browser, "#experiments")
        assert [(e["exp"], e["cells"][1], e["state"]) for e in exps] == [
            (f"{run}-exp{i}", lr, "completed") for i, lr in enumerate(lrs)
        ]
        wait(
            "the metric plots",
            lambda: browser.execute_script("return document.getElementById('metrics').dataset.ready"),
        )
        plots = browser.execute_script(
            "return [...document.querySelectorAll('#metrics .plot')].map(p => ({metric: p.dataset.metric,"
            " traces: p.data.map(t => ({name: t.name, points: t.x.length, y: t.y.length}))}))"
        )
        assert {p["metric"]: [(t["name"], t["points"], t["y"]) for t in p["traces"]] for p in plots} == {
            "loss": [(f"{run}-exp{i}", 5, 5) for i in range(3)],
            "acc": [(f"{run}-exp{i}", 4, 4) for i in range(3)],
        }
        assert browser.find_elements(By.CSS_SELECTOR, "#metrics svg.main-svg")  # plotly drew them
        assert console_errors(browser) == []  # plotly.js runs under the page's CSP
        screenshot(browser, "run-sweep-metrics")

        # an experiment: escaped output, artifacts, and a download equal to what the script wrote
        exp = f"{run}-exp1"
        browser.get(f"{url}/experiments/{exp}")
        wait(
            "the end of the output",
            lambda: browser.execute_script("return document.getElementById('log').dataset.ended"),
        )
        log = browser.find_element(By.ID, "log").text
        assert "<script>alert('from the script')</script><img src=x onerror=alert(2)> done 0.01" in log
        assert not browser.find_elements(By.CSS_SELECTOR, "#log script, #log img")
        no_alert(browser)
        assert browser.find_element(By.ID, "command").text == "python3 train.py --lr 0.01"
        links = {a.text: a for a in browser.find_elements(By.CSS_SELECTOR, "#artifacts a")}
        assert set(links) == {"metrics.csv", "acc.jsonl", "out/weights.bin"}
        screenshot(browser, "experiment-finished")
        links["out/weights.bin"].click()
        got = wait(
            "the download",
            lambda: (
                (downloads / "weights.bin").is_file()
                and not list(downloads.glob("*.crdownload"))
                and (downloads / "weights.bin")
            ),
            timeout=30,
        )
        assert got.read_bytes() == (b"lr=0.01\n" + bytes(range(256))) * 64
        assert console_errors(browser) == []


def test_live_output_within_a_second_and_stop_from_the_page(
    runner: Runner, project: Project, browser: webdriver.Chrome
) -> None:
    proj = project({"ticker.py": TICKER})
    with ui_server(runner.env) as url:
        # the runs page, open before the run exists, shows it without a reload
        browser.get(url + "/")
        assert table_rows(browser, "#runs")[0]["cells"] == ["no runs"]
        r = runner("run", "--local", "--detach", "ticker.py", cwd=proj)
        assert r.code == 0, r.err
        run = run_name(r.err)
        exp = f"{run}-exp0"
        wait(
            "the new run in the table",
            lambda: [row.get("run") for row in table_rows(browser, "#runs")] == [run],
            timeout=10,
        )

        browser.get(f"{url}/experiments/{exp}")
        # when each line reaches the page, by the browser's clock (the host's, as the container's)
        browser.execute_script(
            "window.arrivals = []; window.watchFrom = Date.now() / 1000;"
            "new MutationObserver(ms => { const now = Date.now() / 1000;"
            "  for (const m of ms) for (const n of m.addedNodes) window.arrivals.push([n.textContent, now]); })"
            ".observe(document.getElementById('log'), {childList: true});"
        )
        since = browser.execute_script("return window.watchFrom")

        def printed_since() -> list[tuple[float, float]] | None:
            # lines printed after the page started watching (a backlog sent at once is not "live")
            got = [
                (float(text.split()[2]), seen)
                for text, seen in browser.execute_script("return window.arrivals")
                if text.startswith("TICK ") and float(text.split()[2]) > since
            ]
            return got if len(got) >= 5 else None

        arrivals = wait("five new lines", printed_since, timeout=90)
        delays = [seen - printed for printed, seen in arrivals]
        print(f"printed -> shown in the page: {', '.join(f'{d * 1000:.0f} ms' for d in delays)}")
        assert all(0 <= d < 1.0 for d in delays), delays
        wait("the state to read running", lambda: browser.find_element(By.ID, "exp-state").text == "running", timeout=5)
        screenshot(browser, "experiment-running")

        # stop from the run's page, with confirmation
        browser.get(f"{url}/runs/{run}")
        assert table_rows(browser, "#experiments")[0]["state"] == "running"
        browser.find_element(By.CSS_SELECTOR, "button.stop").click()
        alert = browser.switch_to.alert
        assert f"Stop {run}?" in alert.text
        alert.accept()
        wait(
            "the page to say it stopped",
            lambda: "stopped" in browser.find_element(By.ID, "action-result").text,
            timeout=60,
        )
        status = json.loads(runner("status", run, "--json").out)
        assert status["experiment_list"][0]["status"] == "stopped"
        # the table follows by itself
        wait("the table to show it", lambda: table_rows(browser, "#experiments")[0]["state"] == "stopped", timeout=10)
        wait("the run's state to follow", lambda: browser.find_element(By.ID, "run-state").text == "stopped", timeout=5)
        screenshot(browser, "run-stopped")
        no_alert(browser)
        # and its output ends: the log says no more ticks come
        before = runner("logs", exp).out.count("TICK")
        time.sleep(1.5)
        assert runner("logs", exp).out.count("TICK") == before


def test_delete_from_the_page_removes_the_run(runner: Runner, project: Project, browser: webdriver.Chrome) -> None:
    proj = project({"hello.py": "print('hello')\n"})
    r = runner("run", "--local", "hello.py", cwd=proj)
    assert r.code == 0, r.err
    run = run_name(r.err)
    assert (runner.home / "runs" / run).is_dir()
    with ui_server(runner.env) as url:
        browser.get(f"{url}/runs/{run}")
        browser.find_element(By.CSS_SELECTOR, "button.delete").click()
        alert = browser.switch_to.alert
        assert f"Delete {run}?" in alert.text
        alert.dismiss()  # asked first: nothing happens without a yes
        assert runner("status", run, "--json").code == 0
        browser.find_element(By.CSS_SELECTOR, "button.delete").click()
        browser.switch_to.alert.accept()
        wait("the runs page", lambda: browser.current_url.rstrip("/") == url.rstrip("/"), timeout=30)
        assert run not in [row.get("run") for row in table_rows(browser, "#runs")]
        assert runner("status", run).code == 2  # history no longer knows it
        assert not (runner.home / "runs" / run).exists()  # logs and artifacts went too
        browser.get(f"{url}/runs/no-such-run")
        assert "'no-such-run'" in browser.find_element(By.CSS_SELECTOR, ".error").text
        assert browser.title.startswith("Not found")
