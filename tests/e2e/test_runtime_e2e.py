"""The starter/worker pattern on the real local cluster: runner's in-container runtime in the pod."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from e2e_cluster import KubeRunner
from support import run_name

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_workers_get_typecast_and_their_params_in_the_pod(kr: KubeRunner, tmp_path: Path) -> None:
    root = Path(shutil.copytree(FIXTURES / "runtime" / "worker", tmp_path / "proj"))
    r = kr("run", "--cpus", "0.2", "--sweep", str(root / "worker.py"), "--lr", "[0.1, 0.01]", "3", timeout=400)
    assert r.code == 0, r.err
    run = run_name(r.err)
    seen: dict[str, object] = {}
    for line in r.out.splitlines():
        name, _, text = line.partition(" | ")
        for key in ("EXPERIMENT", "VALUES"):
            if text.startswith(key + " "):
                seen[f"{name} {key}"] = json.loads(text[len(key) + 1 :])
    for i, lr in enumerate((0.1, 0.01)):
        exp = f"{run}-exp{i}"
        assert seen[f"{exp} EXPERIMENT"] == {"run": run, "experiment": exp, "params": {"--lr": lr}}, seen
        assert seen[f"{exp} VALUES"] == [["'--lr'", "str"], [repr(lr), "float"], ["3", "int"]]
    assert (kr.home / "runs" / run / "requirements.lock").read_text() == ""


def test_each_job_names_its_run_experiment_and_params_once(kr: KubeRunner, tmp_path: Path) -> None:
    import yaml

    root = Path(shutil.copytree(FIXTURES / "runtime" / "worker", tmp_path / "proj"))
    r = kr("run", "--dry-run", "--cpus", "0.2", "--sweep", str(root / "worker.py"), "--lr", "[0.1, 0.01]")
    assert r.code == 0, r.err
    jobs = [d for d in yaml.safe_load_all(r.out) if d and d["kind"] == "Job"]
    assert len(jobs) == 2
    for job, lr in zip(jobs, ("0.1", "0.01")):
        env = [(e["name"], e.get("value")) for e in job["spec"]["template"]["spec"]["containers"][0]["env"]]
        names = [n for n, _ in env]
        assert names.count("RUNNER_EXPERIMENT") == names.count("RUNNER_RUN") == names.count("RUNNER_PARAMS") == 1
        assert json.loads(dict(env)["RUNNER_PARAMS"]) == {"--lr": lr}
