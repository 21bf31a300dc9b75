#!/usr/bin/env python3
"""Measures pod start latency on the development cluster (make cluster-up).

For each of N pods (image already cached on the node): the time from sending
the create request to the API server until a watch on that pod reports its
container running, i.e. what a client such as runner sees. Also prints the
server-side view (creationTimestamp -> container startedAt, 1 s resolution).

Standard library only; talks to the API server with the admin client
certificate of /var/lib/runner-cluster/pki.

    python3 tests/cluster/pod_start_latency.py [--count 10] [--image IMAGE]
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import statistics
import sys
import time
import uuid

PKI = "/var/lib/runner-cluster/pki"
API_HOST, API_PORT = "127.0.0.1", 6443
DEFAULT_IMAGE = "127.0.0.1:5000/runner-cluster/busybox:1.35"


def connect() -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=f"{PKI}/ca.crt")
    ctx.load_cert_chain(f"{PKI}/admin.crt", f"{PKI}/admin.key")
    return http.client.HTTPSConnection(API_HOST, API_PORT, context=ctx, timeout=120)


def request(conn: http.client.HTTPSConnection, method: str, path: str, body: object = None) -> dict:
    conn.request(
        method, path, body=json.dumps(body) if body is not None else None, headers={"Content-Type": "application/json"}
    )
    resp = conn.getresponse()
    data = resp.read()
    if resp.status >= 300:
        raise RuntimeError(f"{method} {path}: {resp.status} {data[:500]!r}")
    return json.loads(data) if data else {}


def running(pod: dict) -> bool:
    return any("running" in (s.get("state") or {}) for s in pod.get("status", {}).get("containerStatuses") or [])


def measure_one(ns: str, image: str) -> tuple[float, float]:
    name = f"latency-{uuid.uuid4().hex[:8]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }
    api, watch = connect(), connect()
    t0 = time.monotonic()
    created = request(api, "POST", f"/api/v1/namespaces/{ns}/pods", pod)
    rv = created["metadata"]["resourceVersion"]
    watch.request(
        "GET",
        f"/api/v1/namespaces/{ns}/pods?watch=1&fieldSelector=metadata.name%3D{name}"
        f"&resourceVersion={rv}&allowWatchBookmarks=false",
    )
    resp = watch.getresponse()
    latest = created
    while not running(latest):
        line = resp.readline()
        if not line:
            raise RuntimeError("watch ended before the pod ran")
        latest = json.loads(line)["object"]
    elapsed = time.monotonic() - t0
    watch.close()
    started = next(s["state"]["running"]["startedAt"] for s in latest["status"]["containerStatuses"])
    server = time.mktime(time.strptime(started, "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(
        time.strptime(created["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    )
    request(api, "DELETE", f"/api/v1/namespaces/{ns}/pods/{name}", {"gracePeriodSeconds": 0})
    return elapsed, server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    args = parser.parse_args()

    ns = f"latency-{uuid.uuid4().hex[:6]}"
    conn = connect()
    request(conn, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        # The namespace's default service account must exist before pods can be created.
        for _ in range(100):
            conn.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default")
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                break
            time.sleep(0.1)
        measure_one(ns, args.image)  # warm-up: makes sure the image is cached on the node
        results = [measure_one(ns, args.image) for _ in range(args.count)]
    finally:
        request(conn, "DELETE", f"/api/v1/namespaces/{ns}")
    wall = [r[0] for r in results]
    print(f"pod create -> container running, {len(wall)} pods, cached image {args.image}")
    print("  client-observed (s): " + " ".join(f"{w:.2f}" for w in wall))
    print(f"  median {statistics.median(wall):.2f} s, min {min(wall):.2f} s, max {max(wall):.2f} s")
    print(
        "  server timestamps (creationTimestamp -> startedAt, 1 s resolution): "
        + " ".join(f"{r[1]:.0f}" for r in results)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
