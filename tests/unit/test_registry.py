"""The registry manifest HEAD: present, absent, and every other answer an error (never "present")."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from runner.adapters.registry import ACCEPT, manifest_digest, split_ref
from runner.errors import RegistryError

pytestmark = pytest.mark.transport("registry")  # the adapter's own HEAD, against a stand-in registry

SEEN: list[dict[str, str]] = []


class Handler(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # noqa: N802 - http.server's spelling
        SEEN.append(dict(self.headers))
        status = int(self.path.rsplit(":", 1)[-1]) if ":" in self.path else int(self.path.rsplit("/", 1)[-1])
        self.send_response(status)
        if status == 200:
            self.send_header("Docker-Content-Digest", "sha256:" + "a" * 64)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_split_ref() -> None:
    assert split_ref("127.0.0.1:5000/runner/proj:abc") == ("127.0.0.1:5000", "runner/proj", "abc")
    assert split_ref("reg.example/runner/proj") == ("reg.example", "runner/proj", "latest")


def test_present_gives_the_digest_and_asks_for_v2_and_oci_manifests(registry: str) -> None:
    assert manifest_digest(f"{registry}/runner/p:200") == "sha256:" + "a" * 64
    assert SEEN[-1]["Accept"] == ACCEPT


def test_absent_is_none(registry: str) -> None:
    assert manifest_digest(f"{registry}/runner/p:404") is None


@pytest.mark.parametrize("status", [401, 403, 500, 503])
def test_auth_and_server_errors_are_errors(registry: str, status: int) -> None:
    with pytest.raises(RegistryError):
        manifest_digest(f"{registry}/runner/p:{status}")


def test_unreachable_is_an_error() -> None:
    with pytest.raises(RegistryError, match="cannot reach the image registry 127.0.0.1:1"):
        manifest_digest("127.0.0.1:1/runner/p:x")


def test_credentials_come_from_the_docker_config(
    registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = base64.b64encode(b"me:secret").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {registry: {"auth": token}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    manifest_digest(f"{registry}/runner/p:404")
    assert SEEN[-1]["Authorization"] == f"Basic {token}"
