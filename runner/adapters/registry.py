"""The image registry's HTTP API (Docker Registry v2 / OCI distribution), stdlib only.

Only what runner needs: "is this tag there, and what is its digest?" (a manifest
HEAD).  Credentials come from the user's Docker config (``~/.docker/config.json``
``auths``, basic auth), never from the image.  An auth error or a server error is a
RegistryError: a registry that cannot answer is never taken to mean "present".
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
from pathlib import Path
from urllib.parse import urlencode

from runner.errors import RegistryError

ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def split_ref(ref: str) -> tuple[str, str, str]:
    """``host:5000/runner/proj:tag`` -> (``host:5000``, ``runner/proj``, ``tag``)."""
    host, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
    return host, repo, tag


def is_insecure(host: str) -> bool:
    """Plain HTTP for loopback registries, as the Docker engine does by default."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in ("localhost", "127.0.0.1", "::1", "[::1]") or name.startswith("127.")


def docker_auth(host: str) -> str | None:
    """The basic-auth token for ``host`` from the Docker config, if there is one."""
    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    try:
        auths = json.loads(config.read_text()).get("auths") or {}
    except (OSError, ValueError):
        return None
    for key in (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"):
        entry = auths.get(key)
        if isinstance(entry, dict) and entry.get("auth"):
            return str(entry["auth"])
    return None


def manifest_digest(ref: str, *, timeout: float = 10) -> str | None:
    """The digest of ``ref``'s manifest if the registry has it, None if not; RegistryError otherwise."""
    host, repo, tag = split_ref(ref)
    headers = {"Accept": ACCEPT}
    auth = docker_auth(host)
    if auth:
        headers["Authorization"] = f"Basic {auth}"
    path = f"/v2/{repo}/manifests/{tag}"
    conn: http.client.HTTPConnection = (
        http.client.HTTPConnection(host, timeout=timeout)
        if is_insecure(host)
        else http.client.HTTPSConnection(host, timeout=timeout, context=ssl.create_default_context())
    )
    try:
        status, resp_headers = _head(conn, path, headers)
        if status == 401 and not auth:
            token = _bearer_token(resp_headers.get("www-authenticate", ""), timeout)
            if token:
                headers["Authorization"] = f"Bearer {token}"
                status, resp_headers = _head(conn, path, headers)
    except (OSError, http.client.HTTPException) as e:
        raise RegistryError(
            f"cannot reach the image registry {host}: {e}",
            hint="is it running? check --registry (or registry in runner.yaml)",
        ) from e
    finally:
        conn.close()
    if status == 200:
        digest = resp_headers.get("docker-content-digest")
        if not digest:
            raise RegistryError(f"registry {host} did not say the digest of {repo}:{tag}")
        return digest
    if status == 404:
        return None
    if status in (401, 403):
        raise RegistryError(
            f"registry {host} refused access to {repo} ({status})", hint=f"log in with `docker login {host}`"
        )
    raise RegistryError(f"registry {host} failed answering for {repo}:{tag} (HTTP {status})")


def _head(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    conn.request("HEAD", path, headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}


def _bearer_token(challenge: str, timeout: float) -> str | None:
    """Anonymous token for registries that use the token flow (``Bearer realm=...,service=...,scope=...``)."""
    if not challenge.lower().startswith("bearer "):
        return None
    params = dict(part.split("=", 1) for part in challenge[7:].replace('"', "").split(",") if "=" in part)
    realm = params.pop("realm", "")
    if not realm.startswith("https://"):
        return None
    import urllib.request

    try:
        with urllib.request.urlopen(f"{realm}?{urlencode(params)}", timeout=timeout) as resp:
            data = json.loads(resp.read())
    except (OSError, ValueError):
        return None
    token = data.get("token") or data.get("access_token")
    return str(token) if token else None
