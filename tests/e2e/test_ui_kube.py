"""`runner ui` in headless Chromium with Kubernetes and local runs in one history (the real cluster and engine)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_cluster import KubeRunner
from selenium import webdriver
from selenium.webdriver.common.by import By
from support import run_name
from uibrowser import chrome, screenshot, table_rows, ui_server, wait

Project = Callable[[dict[str, str]], Path]
WRITER = """\
import os
print("hello from", os.environ.get("HOSTNAME", "?"))
with open("metrics.csv", "w") as f:
    f.write("step,loss\\n0,1.0\\n1,0.5\\n2,0.25\\n")
with open("model.txt", "w") as f:
    f.write("weights 42\\n")
"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[webdriver.Chrome, Path]]:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with chrome(downloads) as d:
        yield d, downloads


def test_runs_table_lists_kubernetes_and_local_runs(
    kr: KubeRunner, project: Project, browser: tuple[webdriver.Chrome, Path]
) -> None:
    d, downloads = browser
    root = project({"writer.py": WRITER})
    on_kube = kr("run", "--cpus", "0.2", "writer.py", cwd=root)
    assert on_kube.code == 0, on_kube.err
    local = kr("run", "--local", "writer.py", cwd=root)
    assert local.code == 0, local.err
    kube_run, local_run = run_name(on_kube.err), run_name(local.err)
    with ui_server(kr.env) as url:
        d.get(url + "/")
        rows = {r["run"]: r for r in table_rows(d, "#runs")}
        assert (rows[kube_run]["target"], rows[kube_run]["status"]) == ("kubernetes", "completed")
        assert (rows[local_run]["target"], rows[local_run]["status"]) == ("local", "completed")
        screenshot(d, "runs-kubernetes-and-local")
        d.get(url + "/?target=kubernetes")
        # the namespace also holds the other e2e tests' runs: all of them Kubernetes runs
        filtered = table_rows(d, "#runs")
        assert kube_run in [r["run"] for r in filtered] and local_run not in [r["run"] for r in filtered]
        assert {r["target"] for r in filtered} == {"kubernetes"}

        # the Kubernetes experiment: its output (from the volume), metrics and an artifact download
        exp = f"{kube_run}-exp0"
        d.get(f"{url}/experiments/{exp}")
        wait("the output", lambda: d.execute_script("return document.getElementById('log').dataset.ended"), timeout=60)
        assert "hello from" in d.find_element(By.ID, "log").text
        wait("the metric plot", lambda: d.execute_script("return document.getElementById('metrics').dataset.ready"))
        traces = d.execute_script("return document.querySelector('#metrics .plot').data.map(t => t.x.length)")
        assert traces == [3]
        screenshot(d, "experiment-kubernetes")
        d.find_element(By.LINK_TEXT, "model.txt").click()
        got = wait(
            "the download", lambda: (downloads / "model.txt").is_file() and (downloads / "model.txt"), timeout=30
        )
        assert got.read_text() == "weights 42\n"


def test_stop_a_kubernetes_run_from_the_page(
    kr: KubeRunner, project: Project, browser: tuple[webdriver.Chrome, Path]
) -> None:
    d, _ = browser
    root = project({"sleeper.py": "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n"})
    r = kr("run", "--detach", "--cpus", "0.2", "sleeper.py", cwd=root)
    assert r.code == 0, r.err
    run = run_name(r.err)
    kr.wait_for(f"{run}-exp0", lambda e: e["status"] == "running")
    with ui_server(kr.env) as url:
        d.get(f"{url}/experiments/{run}-exp0")
        wait("its output", lambda: "sleeping" in d.find_element(By.ID, "log").text, timeout=60)
        d.get(f"{url}/runs/{run}")
        d.find_element(By.CSS_SELECTOR, "button.stop").click()
        d.switch_to.alert.accept()
        wait(
            "the page to say it stopped", lambda: "stopped" in d.find_element(By.ID, "action-result").text, timeout=120
        )
        assert kr.experiment(f"{run}-exp0")["status"] == "stopped"
        wait("the table to show it", lambda: table_rows(d, "#experiments")[0]["state"] == "stopped", timeout=15)
        screenshot(d, "run-kubernetes-stopped")
