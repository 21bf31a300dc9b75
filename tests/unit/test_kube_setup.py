"""A namespace sets itself up (issue 11): the pure decisions, and the Kubernetes target carrying them out
behind the cluster adapter's seam (a fake cluster that answers like the API server)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from runner.errors import ConflictError, ForbiddenError
from runner.targets.kubernetes import KubeTarget, setup
from runner.targets.kubernetes import objects as kube

ALL_THERE = {n: True for n in setup.NEEDS}
NOTHING = {n: False for n in setup.NEEDS}


def test_a_namespace_set_up_already_asks_nothing_and_creates_nothing() -> None:
    assert setup.to_ask(ALL_THERE) == ()
    plan = setup.decide(ALL_THERE, {})
    assert plan.ready and plan.create == ()


def test_an_empty_namespace_and_a_user_who_may_creates_everything_in_order() -> None:
    assert setup.to_ask(NOTHING) == setup.NEEDS
    plan = setup.decide(NOTHING, {n: True for n in setup.NEEDS})
    assert plan.ready
    assert [n.label for n in plan.create] == [
        "serviceaccount/runner",
        "role/runner-experiment",
        "rolebinding/runner-experiment",
        "persistentvolumeclaim/runner-data",
    ]


def test_what_the_user_may_not_create_is_missing_and_the_error_names_it_and_the_admins_command() -> None:
    present = {**NOTHING, setup.DATA_VOLUME: True}
    plan = setup.decide(present, {setup.SERVICE_ACCOUNT: False, setup.ROLE: False, setup.ROLE_BINDING: False})
    assert not plan.ready and plan.create == ()
    message, hint = setup.missing_message(plan, "team-a")
    assert message == (
        "namespace team-a is not set up for runner: serviceaccount/runner, role/runner-experiment, "
        "rolebinding/runner-experiment missing, and you may not create them"
    )
    rbac = kube.MANIFESTS / "rbac.yaml"
    assert hint == f"an admin runs: sed s/NAMESPACE/team-a/g {rbac} | kubectl -n team-a apply -f -"
    assert rbac.is_file() and "\n" not in message + hint


def test_a_missing_volume_the_user_may_not_create_gets_its_own_manifest() -> None:
    plan = setup.decide({**ALL_THERE, setup.DATA_VOLUME: False}, {setup.DATA_VOLUME: False})
    message, hint = setup.missing_message(plan, "ns")
    assert "persistentvolumeclaim/runner-data missing, and you may not create it" in message
    assert hint == f"an admin runs: kubectl -n ns apply -f {kube.MANIFESTS / 'data-pvc.yaml'}"


def test_what_cannot_be_looked_at_is_created_if_allowed_and_otherwise_taken_to_be_there() -> None:
    unknown = {**ALL_THERE, setup.SERVICE_ACCOUNT: None, setup.ROLE: None}
    assert setup.to_ask(unknown) == (setup.SERVICE_ACCOUNT, setup.ROLE)
    plan = setup.decide(unknown, {setup.SERVICE_ACCOUNT: True, setup.ROLE: False})
    assert plan.ready and plan.create == (setup.SERVICE_ACCOUNT,)


def test_the_objects_made_are_those_of_the_admins_manifest_bound_in_this_namespace() -> None:
    binding = kube.rbac_object("RoleBinding", "runner-experiment", namespace="team-a")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "runner", "namespace": "team-a"}]
    role = kube.rbac_object("Role", "runner-experiment", namespace="team-a")
    assert {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["patch"]} in role["rules"]
    # the admin's Role for people lets them check the set-up
    user = kube.rbac_object("Role", "runner-user", namespace="team-a")
    readable = {r for rule in user["rules"] if "get" in rule["verbs"] for r in rule["resources"]}
    assert {"serviceaccounts", "roles", "rolebindings", "persistentvolumeclaims"} <= readable
    # the template is not changed by filling it in
    assert kube.rbac_object("RoleBinding", "runner-experiment", namespace="b")["subjects"][0]["namespace"] == "b"


class FakeCluster:
    """Answers like the API server: objects that exist, what the user may create, and 403 on create otherwise."""

    ns = "team-a"

    def __init__(self, *, have: set[str], may: set[str], refuse: set[str] = frozenset(), race: set[str] = frozenset()):  # type: ignore[assignment]
        self.have, self.may, self.refuse, self.race = set(have), may, refuse, race
        self.created: list[dict[str, Any]] = []
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def exists(self, kind: str, name: str) -> bool | None:
        return kind in self.have

    def can_i(self, verb: str, resource: str, *, group: str = "") -> bool:
        with self.lock:
            self.asked.append(resource)
        return resource in self.may

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] in self.refuse:
            raise ForbiddenError(f"create {obj['kind']} {obj['metadata']['name']}: the Kubernetes API refused (403)")
        if obj["kind"] in self.race:
            raise ConflictError("exists")
        self.created.append(obj)
        return obj


EVERY_RESOURCE = {"serviceaccounts", "roles", "rolebindings", "persistentvolumeclaims"}


def test_the_target_creates_what_is_missing_and_says_so_one_line_each() -> None:
    cluster = FakeCluster(have={"Role"}, may=EVERY_RESOURCE, race={"PersistentVolumeClaim"})
    notes = KubeTarget(cluster).set_up()  # type: ignore[arg-type]
    assert notes == ["set up     serviceaccount/runner in team-a", "set up     rolebinding/runner-experiment in team-a"]
    assert [o["kind"] for o in cluster.created] == ["ServiceAccount", "RoleBinding"]
    assert sorted(cluster.asked) == ["persistentvolumeclaims", "rolebindings", "serviceaccounts"]


def test_a_namespace_set_up_costs_no_question() -> None:
    cluster = FakeCluster(have={"ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim"}, may=set())
    assert KubeTarget(cluster).set_up() == []  # type: ignore[arg-type]
    assert cluster.asked == [] and cluster.created == []


def test_the_target_refuses_before_building_and_creates_nothing_when_something_is_missing() -> None:
    cluster = FakeCluster(have=set(), may={"persistentvolumeclaims"})
    with pytest.raises(ForbiddenError) as e:
        KubeTarget(cluster).set_up()  # type: ignore[arg-type]
    assert "serviceaccount/runner, role/runner-experiment, rolebinding/runner-experiment missing" in e.value.message
    assert "persistentvolumeclaim" not in e.value.message and cluster.created == []
    assert e.value.hint is not None and "kubectl -n team-a apply -f -" in e.value.hint


def test_a_create_refused_although_the_review_allowed_it_names_the_object_and_the_command() -> None:
    cluster = FakeCluster(have=set(), may=EVERY_RESOURCE, refuse={"Role"})
    with pytest.raises(ForbiddenError) as e:
        KubeTarget(cluster).set_up()  # type: ignore[arg-type]
    assert "role/runner-experiment missing, and creating it was refused" in e.value.message
    assert e.value.hint is not None and "sed s/NAMESPACE/team-a/g" in e.value.hint
