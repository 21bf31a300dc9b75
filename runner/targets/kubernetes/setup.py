"""A namespace sets itself up (issue 11, point 2): what runner needs there, what it may create, what an admin must.

Pure: the cluster's answers go in (does each object exist? may we create it? — the
API server's own SelfSubjectAccessReview), a decision comes out.  The Kubernetes
target asks the questions and carries the decision out
(:meth:`runner.targets.kubernetes.KubeTarget.set_up`), before anything is built.

What a namespace needs: the ServiceAccount ``runner`` the experiment pods run as, its
Role and RoleBinding ``runner-experiment`` (record an end, resume a queued Job), all
three from the packaged ``rbac.yaml``, and the data volume ``runner-data``.  A user
bound to the built-in ``admin`` ClusterRole in the namespace may create them all; a
user with only the ``runner-user`` Role may not, and gets one line naming what is
missing and the command an admin runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from runner.targets.kubernetes import objects


@dataclass(frozen=True)
class Need:
    """One object runner needs in the namespace, and the API resource to ask about."""

    kind: str
    name: str
    group: str
    resource: str

    @property
    def label(self) -> str:
        """As kubectl names it: ``serviceaccount/runner``."""
        return f"{self.kind.lower()}/{self.name}"


SERVICE_ACCOUNT = Need("ServiceAccount", objects.EXPERIMENT_ACCOUNT, "", "serviceaccounts")
ROLE = Need("Role", objects.EXPERIMENT_ROLE, "rbac.authorization.k8s.io", "roles")
ROLE_BINDING = Need("RoleBinding", objects.EXPERIMENT_ROLE, "rbac.authorization.k8s.io", "rolebindings")
DATA_VOLUME = Need("PersistentVolumeClaim", objects.DATA_PVC, "", "persistentvolumeclaims")
#: in the order they are created (the binding names the account and the role)
NEEDS = (SERVICE_ACCOUNT, ROLE, ROLE_BINDING, DATA_VOLUME)
#: the ones that come from rbac.yaml (the data volume is data-pvc.yaml)
RBAC_NEEDS = (SERVICE_ACCOUNT, ROLE, ROLE_BINDING)


@dataclass(frozen=True)
class SetupPlan:
    """What to create (we may), and what is missing that we may not create (an admin must)."""

    create: tuple[Need, ...] = ()
    missing: tuple[Need, ...] = ()

    @property
    def ready(self) -> bool:
        return not self.missing


def to_ask(present: Mapping[Need, bool | None]) -> tuple[Need, ...]:
    """The needs not known to be there (absent, or we may not look): ask whether we may create them.

    A namespace set up already costs one read per need and no question.
    """
    return tuple(n for n in NEEDS if present.get(n) is not True)


def decide(present: Mapping[Need, bool | None], allowed: Mapping[Need, bool]) -> SetupPlan:
    """``present``: does each need exist (None: we may not look); ``allowed``: may we create it.

    Absent and allowed: create it.  Absent and not allowed: missing.  Not known and not
    allowed: taken to be there (a user an admin gave the runner-user Role of an older
    rbac.yaml may not read ServiceAccounts; if it is not there after all, the Job's
    FailedCreate warning says so while the experiment waits).
    """
    create, missing = [], []
    for need in NEEDS:
        there = present.get(need)
        if there is True:
            continue
        if allowed.get(need, False):
            create.append(need)
        elif there is False:
            missing.append(need)
    return SetupPlan(tuple(create), tuple(missing))


def admin_command(missing: tuple[Need, ...], namespace: str) -> str:
    """The command an admin runs to make what is missing (the packaged manifests, by their installed path)."""
    parts = []
    if any(n in RBAC_NEEDS for n in missing):
        parts.append(
            f"sed s/NAMESPACE/{namespace}/g {objects.MANIFESTS / objects.RBAC} | kubectl -n {namespace} apply -f -"
        )
    if DATA_VOLUME in missing:
        parts.append(f"kubectl -n {namespace} apply -f {objects.MANIFESTS / 'data-pvc.yaml'}")
    return " && ".join(parts)


def missing_message(plan: SetupPlan, namespace: str, *, refused: str | None = None) -> tuple[str, str]:
    """The one-line error for a namespace runner cannot set up itself: (message, hint).

    ``refused``: the API's answer when creating it was refused although the access review allowed it.
    """
    labels = ", ".join(n.label for n in plan.missing)
    them = "it" if len(plan.missing) == 1 else "them"
    why = f"creating {them} was refused ({refused})" if refused else f"you may not create {them}"
    return (
        f"namespace {namespace} is not set up for runner: {labels} missing, and {why}",
        f"an admin runs: {admin_command(plan.missing, namespace)}",
    )


def created_note(need: Need, namespace: str) -> str:
    """What the CLI says for each object made: ``set up     serviceaccount/runner in NS``."""
    return f"set up     {need.label} in {namespace}"
