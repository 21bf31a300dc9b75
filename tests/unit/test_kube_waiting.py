"""Nothing waits in silence (issue 11): why an experiment does not start, from the Job's and pods' warning
events and statuses, and when runner gives up on it (runner.targets.kubernetes.objects, pure)."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from runner.logs import epoch
from runner.targets.kubernetes import objects as kube

START = "2026-12-05T05:00:00Z"
T0 = epoch(START)
MINUTE = 60.0


def job(uid: str = "u1", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "r-exp0", "uid": uid, "creationTimestamp": START},
        "spec": {"backoffLimit": 0},
        "status": {"startTime": START, **status},
    }


def event(kind: str, reason: str, message: str, *, when: str = START, first: str = START, **obj: str) -> dict[str, Any]:
    return {
        "type": "Warning",
        "reason": reason,
        "message": message,
        "firstTimestamp": first,
        "lastTimestamp": when,
        "involvedObject": {
            "kind": kind,
            "name": obj.get("name", "r-exp0"),
            **({"uid": obj["uid"]} if "uid" in obj else {}),
        },
    }


QUOTA = 'Error creating: pods "r-exp0-x7k2p" is forbidden: exceeded quota: none, requested: pods=1, used: pods=0, limited: pods=0'
NO_ACCOUNT = 'Error creating: pods "r-exp0-" is forbidden: error looking up service account ns/runner: serviceaccount "runner" not found'
DENIED = 'Error creating: admission webhook "policy.example.com" denied the request: images must be signed'


def seen_job(
    events: list[dict[str, Any]], *, now: float | None = None, j: dict[str, Any] | None = None
) -> kube.Observed:
    j = j or job()
    kube.attach_warnings([j], events, kind="Job")
    return kube.observe(end=None, stop=False, job=j, pods=[], launched=True, now=now)


def test_a_job_that_cannot_make_its_pod_says_why() -> None:
    for text in (QUOTA, NO_ACCOUNT, DENIED):
        seen = seen_job([event("Job", "FailedCreate", text)])
        assert (seen.state, seen.message, seen.final) == ("queued", f"FailedCreate: {text}", False)


def test_the_newest_warning_of_this_job_counts_not_another_objects_or_an_older_same_named_job() -> None:
    events = [
        event("Job", "FailedCreate", "old reason", when="2026-12-05T05:00:01Z"),
        event("Job", "FailedCreate", NO_ACCOUNT, when="2026-12-05T05:00:09Z"),
        event("Job", "FailedCreate", "a deleted job of that name", when="2026-12-05T05:00:30Z", uid="old"),
        event("Pod", "FailedCreate", "a pod of that name", when="2026-12-05T05:00:40Z"),
        event("Job", "FailedCreate", "another job", when="2026-12-05T05:00:50Z", name="r-exp1"),
    ]
    assert seen_job(events).message == f"FailedCreate: {NO_ACCOUNT}"


def test_a_job_with_no_warning_yet_waits_without_a_reason_and_a_suspended_one_for_its_slot() -> None:
    assert seen_job([]).message is None
    suspended = {**job(), "spec": {"suspend": True}}
    assert seen_job([event("Job", "FailedCreate", QUOTA)], j=suspended).message == kube.QUEUED_MESSAGE


def pending_pod(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "r-exp0-abcde", "creationTimestamp": START},
        "status": {"phase": "Pending", "startTime": START, **status},
    }


def test_noise_events_of_this_cluster_never_hide_the_reason() -> None:
    p = pending_pod()
    kube.attach_warnings(
        [p],
        [
            event("Pod", "FailedMount", "MountVolume.SetUp failed", when="2026-12-05T05:00:05Z", name="r-exp0-abcde"),
            event(
                "Pod",
                "MissingClusterDNS",
                "kubelet does not have ClusterDNS IP",
                when="2026-12-05T05:00:09Z",
                name="r-exp0-abcde",
            ),
            event("Pod", "DNSConfigForming", "nameserver limits", when="2026-12-05T05:00:09Z", name="r-exp0-abcde"),
        ],
    )
    seen = kube.observe(end=None, stop=False, job=job(), pods=[p], launched=True)
    assert seen.message == "FailedMount: MountVolume.SetUp failed"


PULL = {
    "containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]
}
UNSCHEDULABLE = {
    "conditions": [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes: Insufficient cpu.",
        }
    ]
}


def test_a_reason_only_someone_can_clear_fails_the_experiment_after_the_documented_wait() -> None:
    p = pending_pod(**PULL)
    early = kube.observe(end=None, stop=False, job=job(), pods=[p], launched=True, now=T0 + 9 * MINUTE)
    assert (early.state, early.final, early.gave_up) == ("queued", False, False)
    late = kube.observe(end=None, stop=False, job=job(), pods=[p], launched=True, now=T0 + kube.GIVE_UP_AFTER)
    assert (late.state, late.final, late.gave_up) == ("failed", True, True)
    assert late.message == "gave up after 10 min waiting: ImagePullBackOff: Back-off pulling image"
    for text in (NO_ACCOUNT, DENIED):
        assert seen_job([event("Job", "FailedCreate", text)], now=T0 + kube.GIVE_UP_AFTER).gave_up


def test_capacity_clears_by_itself_so_runner_keeps_waiting() -> None:
    much_later = T0 + 100 * kube.GIVE_UP_AFTER
    assert seen_job([event("Job", "FailedCreate", QUOTA)], now=much_later).state == "queued"
    p = pending_pod(**UNSCHEDULABLE)
    seen = kube.observe(end=None, stop=False, job=job(), pods=[p], launched=True, now=much_later)
    assert seen.state == "queued" and seen.message and seen.message.startswith("Unschedulable:")
    assert not kube.needs_action(None) and not kube.needs_action(kube.QUEUED_MESSAGE)


def test_the_wait_counts_from_the_reasons_first_report_and_from_scheduling() -> None:
    # the Job started long ago (waited for capacity); the pod was scheduled 2 minutes ago and cannot pull
    scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-05T05:30:00Z"}
    p = pending_pod(**PULL, conditions=[scheduled])
    seen = kube.observe(end=None, stop=False, job=job(), pods=[p], launched=True, now=T0 + 32 * MINUTE)
    assert seen.state == "queued"
    # a FailedCreate first reported 5 minutes ago, on a Job that started 20 minutes ago
    events = [event("Job", "FailedCreate", NO_ACCOUNT, first="2026-12-05T05:15:00Z", when="2026-12-05T05:19:00Z")]
    assert seen_job(events, now=T0 + 20 * MINUTE).state == "queued"
    assert seen_job(events, now=T0 + 25 * MINUTE).state == "failed"


def test_a_resumed_queued_job_waits_from_its_turn() -> None:
    resumed = job(startTime="2026-12-05T06:00:00Z")
    assert seen_job([event("Job", "FailedCreate", NO_ACCOUNT)], j=resumed, now=T0 + 65 * MINUTE).state == "queued"


def test_job_finished() -> None:
    assert not kube.job_finished(job())
    assert kube.job_finished({"status": {"conditions": [{"type": "Complete", "status": "True"}]}})


# -- the Kubernetes target over a fake namespace (the cluster adapter's seam) ---------------------------------


class PodlessNamespace:
    """One run whose Job cannot make its pod (a FailedCreate warning); reading the volume is a failure here."""

    ns = "ns"

    def __init__(self, message: str, *, started: str = START) -> None:
        from runner.targets.kubernetes import objects

        doc = {"name": "r", "created_at": T0, "launched": True, "experiments": [{"name": "r-exp0", "index": 0}]}
        self.configmaps = objects.make_run_configmaps(doc)
        self.job = {
            "metadata": {"name": "r-exp0", "uid": "u1", "labels": {kube.RUN_LABEL: "r", kube.EXP_LABEL: "r-exp0"}},
            "spec": {"backoffLimit": 0},
            "status": {"startTime": started},
        }
        self.events = [event("Job", "FailedCreate", message, uid="u1")]
        self.deleted: list[str] = []
        self.patched: dict[str, Any] = {}

    def list_objects(self, kind: str, selector: str, *, fields: str | None = None) -> list[dict[str, Any]]:
        import copy

        found = {
            "ConfigMap": self.configmaps,
            "Job": [] if self.deleted else [self.job],
            "Pod": [],
            "Event": self.events,
        }
        return copy.deepcopy(found[kind])

    def patch_configmap(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        self.patched.update(data)
        return {}

    def set_ttl(self, names: list[str], seconds: int) -> None:
        pass

    def delete_many(self, kind: str, names: list[str]) -> None:
        self.deleted += names

    def exec_stream(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the volume is read for an experiment that never started")

    exec = exec_stream


def test_logs_of_a_pending_experiment_say_why_without_reading_the_volume() -> None:
    from runner.targets.kubernetes import KubeTarget

    cluster = PodlessNamespace(QUOTA, started=time_iso(0))
    target = KubeTarget(cluster, helper_image="x")  # type: ignore[arg-type]
    run = target.summaries(run="r")[0]
    lines = list(target.logs(run.run, run.experiments, tail=None, follow=False))
    assert len(lines) == 1 and lines[0].startswith("[waiting] [")
    assert lines[0].endswith(f"r-exp0 is pending (queued): FailedCreate: {QUOTA}")
    assert cluster.deleted == []


def test_following_says_why_at_once_and_ends_when_runner_gives_up(monkeypatch: Any) -> None:
    from runner.targets import kubernetes as kubetarget
    from runner.targets.kubernetes import KubeTarget

    cluster = PodlessNamespace(NO_ACCOUNT, started=time_iso(0))
    clock = iter([time_now() + s for s in (0, 0, kube.GIVE_UP_AFTER, kube.GIVE_UP_AFTER)] + [time_now() + 9999] * 50)
    monkeypatch.setattr(kubetarget.time, "time", lambda: next(clock))
    monkeypatch.setattr(kubetarget.time, "sleep", lambda s: None)
    said = [(ln.stream, ln.text) for ln in KubeTarget(cluster, helper_image="x").follow("r", "r-exp0")]  # type: ignore[arg-type]
    assert said == [("waiting", f"FailedCreate: {NO_ACCOUNT}")]
    assert cluster.deleted == ["r-exp0"]  # the Job would only keep trying
    end = json.loads(cluster.patched["r-exp0.json"])
    assert end["state"] == "failed" and end["message"] == f"gave up after 10 min waiting: FailedCreate: {NO_ACCOUNT}"


def time_now() -> float:
    import time

    return time.time()


def time_iso(ago: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(time_now() - ago, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
