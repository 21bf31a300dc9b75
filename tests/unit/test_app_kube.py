"""App.run and the commands after it on the Kubernetes target, over the fake cluster, engine and registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fakes import FakeCluster, FakeEngine, FakeRegistry, Program, adapters

from runner.app import App
from runner.errors import NotFoundError, RegistryError, UsageError
from runner.events import Detached, Output, Recorded, RunEvent
from runner.home import Home
from runner.model import ExpState
from runner.options import KubeOptions, RunOptions, SweepSettings
from runner.plan import PlanRequest
from runner.sweep import Strategy
from runner.targets.base import Published
from runner.targets.kubernetes import objects

REGISTRY = "reg.fake:5000"


def request(project: Path, *args: str) -> PlanRequest:
    return PlanRequest(script=project / "train.py", args=args, base_image="runner-python:3.11", cwd=project)


def kube(**kw: object) -> RunOptions:
    ko = {"registry": REGISTRY, **{k: v for k, v in kw.items() if k in ("secrets", "datastores", "registry")}}
    rest = {k: v for k, v in kw.items() if k not in ko}
    return RunOptions(kube=KubeOptions(**ko), **rest)  # type: ignore[arg-type]


class World:
    def __init__(self, home: Home, behave: object = None) -> None:
        self.registry = FakeRegistry()
        self.engine = FakeEngine(registry=self.registry)
        self.cluster = FakeCluster(**({"behave": behave} if behave else {}))  # type: ignore[arg-type]
        self.home = home

    def app(self, cluster: KubeOptions | None = None) -> App:
        """A fresh App, as each command makes one (``cluster``: --context/--namespace)."""
        return App(self.home, cluster=cluster, adapters=adapters(self.engine, self.cluster, self.registry))


@pytest.fixture
def world(home: Home) -> World:
    return World(home)


def run_all(app: App, project: Path, *args: str, opts: RunOptions | None = None, **kw: object) -> list[RunEvent]:
    return list(app.run(request(project, *args), opts or kube(), **kw))  # type: ignore[arg-type]


def recorded(events: list[RunEvent]) -> Recorded:
    return next(e for e in events if isinstance(e, Recorded))


def test_a_run_is_pushed_by_digest_launched_as_jobs_and_followed_to_its_end(world: World, project: Path) -> None:
    events = run_all(world.app(), project, "--lr", "0.1")
    rec = recorded(events)
    assert rec.where == "kubernetes fake-context namespace fakes"
    published = next(e for e in events if isinstance(e, Published))
    remote = f"{REGISTRY}/{rec.sub.image}"
    assert world.engine.pushed == [(rec.sub.image, remote)] and published.pushed
    assert published.ref == f"{remote.rpartition(':')[0]}@{world.registry.images[remote]}"
    # the namespace's infrastructure, the run's record, one Job per experiment (the image by digest)
    assert {objects.DATA_PVC, objects.LAUNCHER_CONFIGMAP} <= {o["metadata"]["name"] for o in world.cluster.created}
    [job] = [o for o in world.cluster.created if o["kind"] == "Job"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == published.ref
    assert container["args"] == ["--", "python3", "train.py", "--lr", "0.1"]
    assert job["metadata"]["labels"][objects.RUN_LABEL] == rec.sub.run.name
    out = [(e.line.stream, e.line.text) for e in events if isinstance(e, Output)]
    assert out == [("stdout", 'ARGV ["train.py", "--lr", "0.1"]'), ("stderr", "to stderr")]
    exps, _ = world.app().outcome(rec.sub)
    assert [(e.state, e.exit_code) for e in exps] == [(ExpState.COMPLETED, 0)]
    assert world.app().store.get_experiment(exps[0].name).state is ExpState.COMPLETED  # history's copy


def test_an_image_already_in_the_registry_is_not_pushed(world: World, project: Path) -> None:
    run_all(world.app(), project)
    world.engine.calls.clear()
    events = run_all(world.app(), project)
    published = next(e for e in events if isinstance(e, Published))
    assert recorded(events).sub.cached and not published.pushed and "already there" in (published.note or "")
    assert "push" not in world.engine.calls and "build" not in world.engine.calls


def test_a_failing_script_fails_with_its_exit_code(home: Home, project: Path) -> None:
    world = World(home, behave=lambda c, e: Program(stderr=["boom"], exit_code=4))
    rec = recorded(run_all(world.app(), project))
    exps, _ = world.app().outcome(rec.sub)
    assert (exps[0].state, exps[0].exit_code, exps[0].message) == (ExpState.FAILED, 4, "exit code 4")


@pytest.mark.parametrize(
    ("opts", "said"),
    [
        (RunOptions(kube=KubeOptions()), "no image registry for the Kubernetes target"),
        (kube(secrets=("creds",)), "--secret creds: no Secret 'creds' in namespace fakes"),
        (kube(datastores=("mnist",)), "--datastore mnist: no datastore 'mnist'"),
    ],
)
def test_what_is_missing_is_said_before_anything_is_built(
    world: World, project: Path, opts: RunOptions, said: str
) -> None:
    with pytest.raises(UsageError, match=said):
        run_all(world.app(), project, opts=opts)
    assert "build" not in world.engine.calls and world.app().history() == []
    assert not [o for o in world.cluster.created if o["kind"] == "Job"]


def test_a_name_the_namespace_has_is_refused_before_the_build(world: World, project: Path) -> None:
    run_all(world.app(), project, name="taken")
    world.app().store.forget("taken")  # history forgot it; the namespace has not
    world.engine.calls.clear()
    with pytest.raises(UsageError, match="namespace fakes has a run with that name already"):
        run_all(world.app(), project, "x", name="taken")
    assert "build" not in world.engine.calls


def test_a_registry_that_refuses_fails_the_run_in_history_and_in_the_cluster(world: World, project: Path) -> None:
    world.registry.error = f"registry {REGISTRY} refused access to runner/proj (403)"
    with pytest.raises(RegistryError, match="403"):
        run_all(world.app(), project)
    [summary] = world.app().history()
    assert summary.state is ExpState.FAILED and "403" in (summary.experiments[0].message or "")
    record = world.cluster.objects[("ConfigMap", objects.run_configmap_name(summary.run.name))]
    assert "403" in str(record["data"])
    assert not [o for o in world.cluster.created if o["kind"] == "Job"]


def test_an_unreachable_cluster_is_one_error_before_the_build(world: World, project: Path) -> None:
    from runner.errors import ClusterUnreachableError

    world.cluster.reachable = False
    with pytest.raises(ClusterUnreachableError, match="cannot reach the Kubernetes API server"):
        run_all(world.app(), project)
    assert "build" not in world.engine.calls


def test_a_sweep_with_max_parallel_queues_the_rest_and_each_end_releases_the_next(world: World, project: Path) -> None:
    opts = kube(sweep=SweepSettings(Strategy("grid_search"), None, None), max_parallel=1, detach=True)
    events = run_all(world.app(), project, "--lr", "[1, 2, 3]", opts=opts)
    sub = recorded(events).sub
    assert next(e for e in events if isinstance(e, Detached)).name == sub.run.name
    jobs = [o for o in world.cluster.created if o["kind"] == "Job"]
    assert [bool(j["spec"].get("suspend")) for j in jobs] == [False, True, True]
    env = [{e["name"]: e["value"] for e in j["spec"]["template"]["spec"]["containers"][0]["env"]} for j in jobs]
    assert [e.get("RUNNER_RELEASE") for e in env] == [
        objects.job_name(sub.experiments[1].name),
        objects.job_name(sub.experiments[2].name),
        None,
    ]
    summary = world.app().run_summary(sub.run.name)
    assert [e.state for e in summary.experiments] == [ExpState.COMPLETED] * 3
    assert [e.params for e in summary.experiments] == [{"--lr": "1"}, {"--lr": "2"}, {"--lr": "3"}]


def test_status_history_stop_and_delete_of_a_running_run(home: Home, project: Path) -> None:
    world = World(home, behave=lambda c, e: Program(stdout=["started"], until_stopped=True))
    sub = recorded(run_all(world.app(), project, opts=kube(detach=True))).sub
    name = sub.run.name
    [active] = world.app().status()
    assert active.run.name == name and active.state is ExpState.RUNNING
    with pytest.raises(UsageError, match="is still running"):
        world.app().delete(name)
    assert world.app().stop(name) == [sub.experiments[0].name]
    assert world.cluster.kinds("Job") == [] and world.app().status() == []
    exp = world.app().experiment(sub.experiments[0].name)
    assert exp.state is ExpState.STOPPED
    assert world.app().store.get_experiment(exp.name).state is ExpState.STOPPED  # kept in history too
    done = world.app().delete(name)
    assert (done["run_deleted"], done["target"]) == (True, "kubernetes")
    assert not [p for p in world.cluster.volume if p.startswith(f"runs/{name}")]
    assert not [n for n in world.cluster.kinds("ConfigMap") if name in n]
    assert world.app().history() == []


def test_logs_and_artifacts_come_from_the_data_volume(world: World, project: Path, tmp_path: Path) -> None:
    sub = recorded(run_all(world.app(), project, opts=kube(detach=True))).sub
    exp = sub.experiments[0].name
    lines = list(world.app().logs(exp))
    assert [ln.split("] ", 2)[-1] for ln in lines if not ln.startswith("[build]")] == ['ARGV ["train.py"]', "to stderr"]
    assert len(list(world.app().logs(exp, tail=1))) == 1
    files = world.app().artifacts(sub.run.name, tmp_path / "dl")
    assert files == {exp: ["out.txt"]}
    assert (tmp_path / "dl" / sub.run.name / exp / "out.txt").read_text() == "done\n"


def test_history_reads_the_cluster_and_keeps_its_copy_when_the_cluster_is_away(world: World, project: Path) -> None:
    sub = recorded(run_all(world.app(), project)).sub
    app = world.app()
    assert [s.run.name for s in app.history()] == [sub.run.name] and app.notes == []
    world.cluster.reachable = False
    app = world.app()
    [summary] = app.history()
    assert summary.state is ExpState.COMPLETED
    assert any("as last seen" in n for n in app.notes)


def test_a_run_only_the_cluster_knows_is_found_there(world: World, project: Path) -> None:
    sub = recorded(run_all(world.app(), project, name="from-elsewhere")).sub
    world.app().store.forget(sub.run.name)
    with pytest.raises(NotFoundError):  # no kubeconfig and no --namespace: no cluster is asked
        world.app().run_summary("from-elsewhere")
    app = world.app(KubeOptions(namespace="fakes"))
    assert app.run_summary("from-elsewhere").state is ExpState.COMPLETED
    assert app.experiment(sub.experiments[0].name).exit_code == 0


def test_a_dry_run_prints_the_manifests_and_creates_nothing(world: World, project: Path) -> None:
    world.engine.images.clear()
    world.engine.images["runner-python:3.11"] = "sha256:" + "b" * 64
    text, notes = world.app().dry_run(request(project, "--x", "$HOME"), kube())
    docs = list(yaml.safe_load_all(text))
    kinds = [d["kind"] for d in docs]
    assert kinds == ["PersistentVolumeClaim", "ConfigMap", "ConfigMap", "Job"]
    assert docs[-1]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "--",
        "python3",
        "train.py",
        "--x",
        "$$HOME",
    ]
    assert any("is not in the registry yet" in n for n in notes)
    assert world.cluster.created == [] and world.registry.asked and "build" not in world.engine.calls


def test_datastores_are_uploaded_once_listed_and_mounted(world: World, project: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("1,2\n")
    # the data pod needs an image the cluster pulls: a run's
    run_all(world.app(), project)
    target = world.app().kubernetes()
    v, uploaded = target.datastore_create("mnist", data)
    assert (v.version, uploaded) == (1, True) and world.cluster.volume[f"datastores/{v.digest}/a.csv"] == b"1,2\n"
    assert target.datastore_create("mnist", data) == (v, False)
    assert [d.name for d in world.app().kubernetes().datastores()] == ["mnist"]
    events = run_all(world.app(), project, opts=kube(datastores=("mnist",), detach=True))
    job = [o for o in world.cluster.created if o["kind"] == "Job"][-1]
    mounts = job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {
        "name": "data",
        "mountPath": "/datastores/mnist",
        "subPath": f"datastores/{v.digest}",
        "readOnly": True,
    } in mounts
    assert recorded(events).sub.run.options["datastores"] == ["mnist"]


def test_ctrl_c_while_following_stops_the_jobs_and_shows_the_end(home: Home, project: Path) -> None:
    world = World(home, behave=lambda c, e: Program(stdout=["started"], until_stopped=True))
    events = world.app().run(request(project), kube())
    sub = None
    for event in events:
        if isinstance(event, Recorded):
            sub = event.sub
        if isinstance(event, Output):
            break
    assert sub is not None
    with pytest.raises(KeyboardInterrupt):
        events.throw(KeyboardInterrupt)
    assert world.cluster.kinds("Job") == []
    exps, _ = world.app().outcome(sub)
    assert exps[0].state is ExpState.STOPPED


def test_deleting_one_experiment_keeps_the_rest_of_the_run(world: World, project: Path) -> None:
    opts = kube(sweep=SweepSettings(Strategy("grid_search"), None, None), detach=True)
    sub = recorded(run_all(world.app(), project, "--lr", "[1, 2]", opts=opts)).sub
    first, second = (e.name for e in sub.experiments)
    done = world.app().delete(second)
    assert (done["run_deleted"], done["experiments"]) == (False, [second])
    assert [e.name for e in world.app().run_summary(sub.run.name).experiments] == [first]
    assert not [p for p in world.cluster.volume if p.startswith(f"runs/{sub.run.name}/{second}/")]
    assert [p for p in world.cluster.volume if p.startswith(f"runs/{sub.run.name}/{first}/")]
    assert world.cluster.kinds("Job") == [objects.job_name(first)]
