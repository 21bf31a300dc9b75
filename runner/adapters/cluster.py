"""The Kubernetes API: the only module that imports ``kubernetes``.

Objects go in and come out as plain dicts (the manifests' own spelling, from
``runner.targets.kubernetes.objects``): every call asks for the raw answer (``_preload_content=False``) and
decodes its JSON, so nothing above sees the client's model classes.  Every
ApiException and connection error is translated in :meth:`KubeCluster._call`, the one
choke point, into :class:`~runner.errors.ClusterError` or :class:`~runner.errors.NotFoundError`.

Imported lazily (the client costs ~300 ms): only commands that talk to a cluster load it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from runner.errors import (
    ClusterError,
    ClusterUnreachableError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UsageError,
)

REQUEST_TIMEOUT = 10  # seconds, for single requests (not streams)
#: concurrent requests for many objects at once (a sweep's Jobs): the client's connection pool is thread-safe
WORKERS = 16


#: kind -> (API prefix, resource) for namespaced objects
PATHS = {
    "ConfigMap": ("/api/v1", "configmaps"),
    "Pod": ("/api/v1", "pods"),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
    "Secret": ("/api/v1", "secrets"),
    "Job": ("/apis/batch/v1", "jobs"),
    "Event": ("/api/v1", "events"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
}
#: the kinds a namespace's set-up may create (runner.targets.kubernetes.setup)
SETUP_KINDS = ("ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim")


@dataclass(frozen=True)
class ClusterInfo:
    context: str
    namespace: str
    server: str


class KubeCluster:
    def __init__(self, *, context: str | None = None, namespace: str | None = None) -> None:
        import urllib3
        import yaml
        from kubernetes import config
        from kubernetes.client import rest

        # read KUBECONFIG now: the client's default path is fixed when it is first imported, which in a
        # program using runner's API may be before KUBECONFIG was set
        config_file = os.environ.get("KUBECONFIG") or "~/.kube/config"
        try:
            contexts, active = config.list_kube_config_contexts(config_file=config_file)  # type: ignore[no-untyped-call]
            if not isinstance(contexts, list) or not all(isinstance(c, dict) and "name" in c for c in contexts):
                raise TypeError("contexts is not a list of named contexts")
        except (config.ConfigException, OSError, TypeError, AttributeError, KeyError, ValueError, yaml.YAMLError) as e:
            # a file that is YAML but no kubeconfig (KUBECONFIG=/etc/passwd) fails deep inside the client
            where = os.environ.get("KUBECONFIG") or "~/.kube/config"
            why = (
                str(e).splitlines()[0][:200]
                if isinstance(e, (config.ConfigException, OSError))
                else "not a kubeconfig file"
            )
            raise UsageError(
                f"no usable kubeconfig ({where[:200]}): {why}",
                hint="set KUBECONFIG or write ~/.kube/config, or run with --local",
            ) from e
        chosen = next((c for c in contexts if c["name"] == context), None) if context else active
        if chosen is None:
            names = ", ".join(c["name"] for c in contexts)
            raise UsageError(f"no kubeconfig context named {context!r}", hint=f"contexts: {names}")
        try:
            self.api = config.new_client_from_config(config_file=config_file, context=chosen["name"])  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError) as e:
            raise ClusterError(f"kubeconfig context {chosen['name']!r} is not usable: {e}") from e
        # Fail fast on an unreachable server: one retry, not urllib3's default three.
        self.api.configuration.retries = urllib3.util.Retry(total=1, backoff_factor=0.2)
        # As many pooled connections as create_many/delete_many threads (the default is 5 per CPU).
        self.api.configuration.connection_pool_maxsize = max(
            WORKERS, self.api.configuration.connection_pool_maxsize or 0
        )
        self.api.rest_client = rest.RESTClientObject(self.api.configuration)  # reads both settings when made
        self.info = ClusterInfo(
            context=chosen["name"],
            namespace=namespace or chosen.get("context", {}).get("namespace") or "default",
            server=self.api.configuration.host,
        )
        self.ns = self.info.namespace
        self._core: Any = None
        self._batch: Any = None

    # The generated API classes cost ~0.5 s to import (every model they name is a pydantic class
    # built at import): objects are read and written through :meth:`_rest` on plain paths instead,
    # and the classes are loaded only for logs and exec.
    @property
    def core(self) -> Any:
        if self._core is None:
            from kubernetes import client

            self._core = client.CoreV1Api(self.api)
        return self._core

    @property
    def batch(self) -> Any:
        if self._batch is None:
            from kubernetes import client

            self._batch = client.BatchV1Api(self.api)
        return self._batch

    def _path(self, kind: str, name: str | None = None) -> str:
        group, plural = PATHS[kind]
        return f"{group}/namespaces/{self.ns}/{plural}" + (f"/{name}" if name else "")

    def _rest(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        _request_timeout: Any = None,
    ) -> Any:
        """One request on a plain API path, with the client's auth and connection pool; the raw response.

        Non-2xx answers raise ApiException, as the generated methods do, for :meth:`_call`.
        """
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json", "Accept-Encoding": "gzip"}  # a 1,000-Job list is ~5 MB of JSON
        if body is not None:
            headers["Content-Type"] = content_type
        params = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        resp = self.api.call_api(*params, _request_timeout=_request_timeout)
        resp.read()
        if not 200 <= resp.status <= 299:
            raise ApiException(http_resp=resp)
        return resp

    # -- the choke point -------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, raw: bool = False, **kwargs: Any) -> Any:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        if fn != self._rest:
            kwargs["_preload_content"] = False
        try:
            resp = fn(*args, **kwargs)
            if raw:
                return resp
            data = resp.data
            return json.loads(data) if data else None
        except ApiException as e:
            message = _api_message(e)
            if e.status == 404:
                raise NotFoundError(f"{what}: not found ({message})") from e
            if e.status == 409:
                raise ConflictError(f"{what}: {message}") from e
            if e.status == 403:
                raise ForbiddenError(
                    f"{what}: the Kubernetes API refused (403): {message}",
                    hint=f"check your access to namespace {self.ns} (manifests/rbac.yaml)",
                ) from e
            if e.status == 401:
                raise ClusterError(
                    f"{what}: the Kubernetes API refused ({e.status}): {message}",
                    hint=f"check your access to namespace {self.ns} (manifests/rbac.yaml)",
                ) from e
            if e.status == 0:  # websocket failures come back as status 0
                raise ClusterError(f"{what}: {e.reason}") from e
            if e.status >= 500 or e.status == 429:  # starting up, overloaded: it may answer later
                raise ClusterUnreachableError(f"{what}: the Kubernetes API answered {e.status}: {message}") from e
            raise ClusterError(f"{what}: the Kubernetes API answered {e.status}: {message}") from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise ClusterUnreachableError(
                f"cannot reach the Kubernetes API server at {self.info.server} (context {self.info.context})",
                hint="is the cluster up? check `kubectl cluster-info`, or run with --local",
            ) from e

    # -- generic ---------------------------------------------------------------------------

    def check(self) -> None:
        """Reachable, and may we work in the namespace?  One cheap request."""
        self._call(
            f"list ConfigMaps in namespace {self.ns}",
            self._rest,
            "GET",
            self._path("ConfigMap"),
            query={"limit": 1},
            _request_timeout=5,
        )

    def can_i(self, verb: str, resource: str, *, group: str = "") -> bool:
        """May we ``verb`` ``resource`` (of API ``group``) in the namespace?  The API server's own answer
        (a SelfSubjectAccessReview: every authenticated user may ask it about themselves)."""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": self.ns, "verb": verb, "group": group, "resource": resource}},
        }
        found = self._call(
            f"ask whether we may {verb} {resource} in namespace {self.ns}",
            self._rest,
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=review,
        )
        return bool(((found or {}).get("status") or {}).get("allowed"))

    def exists(self, kind: str, name: str) -> bool | None:
        """Is object ``name`` of ``kind`` there?  None when we may not look (403)."""
        if kind not in PATHS:
            raise KeyError(kind)
        try:
            self._call(f"read {kind} {name}", self._rest, "GET", self._path(kind, name))
        except NotFoundError:
            return False
        except ForbiddenError:
            return None
        return True

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind not in ("ConfigMap", "Pod", "Job", *SETUP_KINDS):
            raise KeyError(kind)
        return dict(self._call(f"create {kind} {name}", self._rest, "POST", self._path(kind), body=obj))

    def create_many(self, objects: list[dict[str, Any]], *, workers: int = WORKERS) -> None:
        """Create all of ``objects``, ``workers`` requests at a time; the first error is raised once all are tried."""
        self._many(self.create, objects, workers)

    def delete_many(self, kind: str, names: list[str], *, workers: int = WORKERS) -> None:
        self._many(lambda name: self.delete(kind, name), names, workers)

    def _many(self, fn: Callable[[Any], Any], items: list[Any], workers: int) -> None:
        if len(items) <= 1:
            for item in items:
                fn(item)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
            futures = [pool.submit(fn, item) for item in items]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]  # type: ignore[misc]

    def set_suspended(self, name: str, suspend: bool) -> None:
        """Suspend or resume Job ``name`` (``--max-parallel``); a Job that is gone is not an error."""
        try:
            self._call(
                f"update Job {name}",
                self._rest,
                "PATCH",
                self._path("Job", name),
                body={"spec": {"suspend": suspend}},
                content_type="application/merge-patch+json",
            )
        except NotFoundError:
            pass

    def set_ttl(self, names: list[str], seconds: int) -> None:
        """Give Jobs ``names`` a ttlSecondsAfterFinished (the cluster deletes them, and their pods, that long after they end)."""

        def one(name: str) -> None:
            try:
                self._call(
                    f"update Job {name}",
                    self._rest,
                    "PATCH",
                    self._path("Job", name),
                    body={"spec": {"ttlSecondsAfterFinished": seconds}},
                    content_type="application/merge-patch+json",
                )
            except NotFoundError:
                pass

        self._many(one, names, WORKERS)

    def list_objects(self, kind: str, selector: str, *, fields: str | None = None) -> list[dict[str, Any]]:
        if kind not in ("ConfigMap", "Pod", "Job", "Event"):
            raise KeyError(kind)
        query = {"labelSelector": selector, **({"fieldSelector": fields} if fields else {})}
        found = self._call(f"list {kind}s", self._rest, "GET", self._path(kind), query=query)
        return list(found.get("items") or [])

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        if kind not in ("ConfigMap", "Pod", "PersistentVolumeClaim", "Job", "Secret"):
            raise KeyError(kind)
        try:
            return dict(self._call(f"read {kind} {name}", self._rest, "GET", self._path(kind, name)))
        except NotFoundError:
            return None

    def delete(self, kind: str, name: str, *, grace: int | None = None) -> None:
        if kind not in ("ConfigMap", "Pod", "Job"):
            raise KeyError(kind)
        query: dict[str, Any] = {"propagationPolicy": "Background"} if kind == "Job" else {}
        if grace is not None:
            query["gracePeriodSeconds"] = grace
        try:
            self._call(f"delete {kind} {name}", self._rest, "DELETE", self._path(kind, name), query=query)
        except NotFoundError:
            pass

    def patch_configmap(self, name: str, data: dict[str, str | None]) -> dict[str, Any]:
        """Merge ``data`` into the ConfigMap's data (None removes a key)."""
        return dict(
            self._call(
                f"update ConfigMap {name}",
                self._rest,
                "PATCH",
                self._path("ConfigMap", name),
                body={"data": data},
                content_type="application/merge-patch+json",
            )
        )

    def replace_configmap(self, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        return dict(self._call(f"replace ConfigMap {name}", self._rest, "PUT", self._path("ConfigMap", name), body=obj))

    # -- pods: logs, exec --------------------------------------------------------------------

    def pod_log(self, pod: str, *, follow: bool) -> Iterator[str]:
        """The pod's output line by line (its only container), to its end when ``follow``."""
        import urllib3

        resp = self._call(
            f"logs of {pod}",
            self.core.read_namespaced_pod_log,
            pod,
            self.ns,
            follow=follow,
            raw=True,
            _request_timeout=None if follow else REQUEST_TIMEOUT,
        )
        pending = b""
        try:
            for chunk in resp.stream(65536, decode_content=False):
                *lines, pending = (pending + chunk).split(b"\n")
                for raw in lines:
                    yield raw.decode("utf-8", "surrogateescape")
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise ClusterUnreachableError(f"logs of {pod}: the connection to the API server broke: {e}") from e
        finally:
            resp.release_conn()
        if pending:
            yield pending.decode("utf-8", "surrogateescape")

    def exec(
        self,
        pod: str,
        command: list[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 600,
        sent: Callable[[int], None] | None = None,
    ) -> bytes:
        """Run ``command`` in the pod; its stdout.  ClusterError with its stderr if it fails.

        Stdin cannot be closed over the v4 exec protocol, so commands that read it
        must know its length (``head -c N``): see :meth:`upload`.  ``sent`` hears how
        many bytes of ``stdin`` have gone so far, after each piece.
        """
        if stdin is None:  # read off the websocket directly: linear in the output's size
            return b"".join(self.exec_stream(pod, command, idle=timeout))
        from kubernetes.stream import stream

        what = f"exec in {pod}"
        ws = self._call(
            what,
            lambda **kw: stream(
                self.core.connect_get_namespaced_pod_exec,
                pod,
                self.ns,
                command=command,
                stdin=stdin is not None,
                stdout=True,
                stderr=True,
                tty=False,
                binary=True,
                **kw,
            ),
            _request_timeout=timeout,
            raw=True,
        )
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            if stdin is not None:
                for i in range(0, len(stdin), 1 << 20):
                    ws.write_stdin(stdin[i : i + (1 << 20)])
                    if sent is not None:
                        sent(min(len(stdin), i + (1 << 20)))
            while ws.is_open():
                if time.monotonic() > deadline:
                    raise ClusterError(f"{what}: no answer in {timeout:g}s")
                ws.update(timeout=1)
                if ws.peek_stdout():
                    out += ws.read_stdout()
                if ws.peek_stderr():
                    err += ws.read_stderr()
            code = ws.returncode
        except (OSError, ValueError) as e:
            raise ClusterError(f"{what}: the connection broke: {e}") from e
        finally:
            ws.close()
        if code:
            text = err.decode(errors="replace").strip().splitlines()
            raise ClusterError(f"{what}: {command[0]} failed (exit {code}): {text[-1] if text else ''}")
        return bytes(out)

    def exec_stream(self, pod: str, command: list[str], *, idle: float = 120) -> Iterator[bytes]:
        """Run ``command`` in the pod; its stdout as it comes (a large file is not held in memory first).

        ClusterError with its stderr if it fails, or if nothing came for ``idle`` seconds.
        The frames are read off the websocket here: the client's own buffering (every
        frame appended to one growing bytes object, and a copy of everything kept) makes a
        large output quadratic.
        """

        import websocket
        from kubernetes.stream import stream

        what = f"exec in {pod}"
        ws = self._call(
            what,
            lambda **kw: stream(
                self.core.connect_get_namespaced_pod_exec,
                pod,
                self.ns,
                command=command,
                stdin=False,
                stdout=True,
                stderr=True,
                tty=False,
                binary=True,
                **kw,
            ),
            _request_timeout=idle,
            raw=True,
        )
        err, status = bytearray(), bytearray()
        sock = ws.sock
        try:
            sock.settimeout(idle)
            while True:
                try:
                    op, frame = sock.recv_data_frame(True)
                except websocket.WebSocketConnectionClosedException:
                    break
                if op == websocket.ABNF.OPCODE_CLOSE:
                    break
                data = frame.data if isinstance(frame.data, bytes) else bytes(frame.data)
                if op not in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT) or len(data) < 2:
                    continue
                channel, payload = data[0], data[1:]
                if channel == 1:
                    yield payload
                elif channel == 2:
                    err += payload
                elif channel == 3:  # the exec's status, as JSON, at its end
                    status += payload
        except TimeoutError as e:
            raise ClusterError(f"{what}: no answer in {idle:g}s") from e
        except (OSError, ValueError, websocket.WebSocketException) as e:
            raise ClusterError(f"{what}: the connection broke: {e}") from e
        finally:
            ws.close()
        try:
            doc = json.loads(bytes(status) or b'{"status": "Success"}')
        except ValueError:
            doc = {"status": "Failure", "message": status.decode(errors="replace")}
        if doc.get("status") != "Success":
            causes = (doc.get("details") or {}).get("causes") or [{}]
            code = causes[0].get("message") or doc.get("message")
            text = err.decode(errors="replace").strip().splitlines()
            raise ClusterError(f"{what}: {command[0]} failed (exit {code}): {text[-1] if text else ''}")

    def wait_pod(self, name: str, *, timeout: float = 120) -> dict[str, Any]:
        """Until the pod runs; ClusterError naming why it does not (pull error, unschedulable)."""
        deadline = time.monotonic() + timeout
        pod: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            pod = self.get("Pod", name)
            if pod is None:
                raise ClusterError(f"pod {name} disappeared")
            phase = (pod.get("status") or {}).get("phase")
            if phase == "Running":
                return pod
            if phase in ("Succeeded", "Failed"):
                raise ClusterError(f"pod {name} ended ({phase}) before it could be used")
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (cs.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
                    raise ClusterError(f"pod {name}: {waiting['reason']}: {waiting.get('message', '')}")
            time.sleep(0.2)
        raise ClusterError(f"pod {name} did not start in {timeout:g}s")


def _api_message(e: Any) -> str:
    try:
        return str(json.loads(e.body).get("message") or e.reason)
    except (TypeError, ValueError, AttributeError):
        return str(e.reason)
