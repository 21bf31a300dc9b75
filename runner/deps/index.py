"""Newest release on the package index, for a declared requirement that is not installed.

Only declared lines reach the index: an *import* that is not installed is never
looked up (a project sharing a module's name is often an unrelated one).

The only network access of the dependency stage, behind :class:`IndexLookup` so
tests pass a fake.  The real one speaks the standard "simple" repository API (JSON,
PEP 691, with an HTML fallback) to the index pip is configured with (``index-url``
and ``cert`` from pip's config files and ``PIP_*`` variables), so a private mirror
or a TLS-intercepting proxy works as it does for pip.  Short timeout; failures are
reported, never raised past :func:`newest`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from runner.deps.interp import normalize
from runner.deps.pipconf import PipSettings, pip_settings

__all__ = ["IndexLookup", "IndexUnavailable", "SimpleIndex", "pypi_names", "pip_settings"]

# Import names whose distribution is called something else.  Checked first: pipreqs'
# mapping file is older and wrong for several of these (cv2, skimage, attr...).
IMPORT_TO_DIST: Mapping[str, str] = {
    "cv2": "opencv-python",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "attr": "attrs",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "jwt": "pyjwt",
    "git": "gitpython",
    "Crypto": "pycryptodome",
    "serial": "pyserial",
    "usb": "pyusb",
    "zmq": "pyzmq",
    "magic": "python-magic",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "fitz": "pymupdf",
    "mpl_toolkits": "matplotlib",
    "OpenGL": "pyopengl",
    "google.protobuf": "protobuf",
    "grpc": "grpcio",
    "absl": "absl-py",
    "tree": "dm-tree",
    "faiss": "faiss-cpu",
    "MySQLdb": "mysqlclient",
    "websocket": "websocket-client",
    "socks": "pysocks",
    "OpenSSL": "pyopenssl",
    "nacl": "pynacl",
    "dns": "dnspython",
    "Bio": "biopython",
    "slugify": "python-slugify",
    "multipart": "python-multipart",
    "jose": "python-jose",
    "telegram": "python-telegram-bot",
    "wx": "wxpython",
    "gi": "pygobject",
    "kafka": "kafka-python",
    "pkg_resources": "setuptools",
    "Levenshtein": "levenshtein",
    "lightgbm": "lightgbm",
    "tensorflow": "tensorflow",
    "torch": "torch",
}


class IndexUnavailable(Exception):
    """The index could not be asked (network, TLS, server error)."""


class IndexLookup(Protocol):
    def newest(self, name: str, *, python_version: str, specifier: str = "") -> str | None:
        """Newest installable release of ``name`` for that Python that ``specifier`` allows, None if none.

        Raises :class:`IndexUnavailable` when the index cannot be reached.
        """
        ...

    @property
    def where(self) -> str:
        """The index, for messages and cache keys."""
        ...


@lru_cache(maxsize=1)
def _pipreqs_mapping() -> dict[str, str]:
    # Read pipreqs' data file without importing pipreqs (its module pulls in requests,
    # yarg, nbconvert...).
    try:
        spec = importlib.util.find_spec("pipreqs")
    except (ImportError, ValueError):
        return {}
    if spec is None or not spec.submodule_search_locations:
        return {}
    out: dict[str, str] = {}
    for folder in spec.submodule_search_locations:
        try:
            text = (Path(folder) / "mapping").read_text(encoding="utf-8")
        except OSError:
            continue
        for line in text.splitlines():
            key, sep, value = line.strip().partition(":")
            if sep and key and value:
                out.setdefault(key, value)
    return out


def pypi_names(module: str) -> tuple[str, ...]:
    """Candidate index project names for an import (first found on the index wins)."""
    top = module.split(".", 1)[0]
    out: list[str] = []
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        known = IMPORT_TO_DIST.get(".".join(parts[:depth]))
        if known:
            out.append(known)
            break
    if top == "google" and len(parts) >= 3 and parts[1] == "cloud":
        out.append(f"google-cloud-{parts[2].replace('_', '-')}")
    mapped = _pipreqs_mapping().get(top)
    if mapped and top != "google":
        out.append(mapped)
    out.append(top)
    seen: list[str] = []
    for name in out:
        n = normalize(name)
        if n not in seen:
            seen.append(n)
    return tuple(seen)


_WHEEL = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)
_SDIST = re.compile(r"^(?P<name>.+)-(?P<version>\d[^-]*)\.(tar\.gz|zip|tar\.bz2|tgz)$", re.IGNORECASE)
_HREF = re.compile(r'<a\s[^>]*href="([^"]+)"[^>]*>([^<]+)</a>', re.IGNORECASE)


def _wheel_fits(py: str, abi: str, plat: str, target: tuple[int, int]) -> bool:
    if not any(p == "any" or "linux" in p for p in plat.split(".")):
        return False
    cp = f"cp{target[0]}{target[1]}"
    for tag in py.split("."):
        if tag in ("py3", f"py{target[0]}{target[1]}", cp) or tag == f"py{target[0]}":
            return True
        if abi == "abi3" and tag.startswith("cp3") and tag[2:].isdigit() and int(tag[3:] or 0) <= target[1]:
            return True
    return False


def choose_newest(files: list[dict[str, Any]], python_version: str, specifier: str = "") -> str | None:
    """Newest final release with a file installable on Linux by that Python (and allowed by ``specifier``)."""
    try:
        allowed = SpecifierSet(specifier)
    except InvalidSpecifier:
        allowed = SpecifierSet()
    try:
        target_version = Version(python_version)
    except InvalidVersion:
        target_version = Version(f"{sys.version_info[0]}.{sys.version_info[1]}")
    target = (target_version.major, target_version.minor)
    best: Version | None = None
    for f in files:
        filename = str(f.get("filename", ""))
        if f.get("yanked"):
            continue
        rp = f.get("requires-python")
        if rp:
            try:
                if not SpecifierSet(str(rp)).contains(target_version, prereleases=True):
                    continue
            except InvalidSpecifier:
                pass
        wheel = _WHEEL.match(filename)
        if wheel:
            if not _wheel_fits(wheel["py"], wheel["abi"], wheel["plat"], target):
                continue
            raw = wheel["version"]
        else:
            sdist = _SDIST.match(filename)
            if not sdist:
                continue
            raw = sdist["version"]
        try:
            version = Version(raw)
        except InvalidVersion:
            continue
        if version.is_prerelease or version.is_devrelease or not allowed.contains(version):
            continue
        if best is None or version > best:
            best = version
    return None if best is None else str(best)


class SimpleIndex:
    """The package index pip is configured with, through the simple repository API."""

    def __init__(self, *, settings: PipSettings | None = None, timeout: float = 6.0) -> None:
        self.settings = settings or pip_settings()
        self.timeout = timeout

    @property
    def where(self) -> str:
        return self.settings.index_url

    def _context(self) -> ssl.SSLContext:
        cafile = self.settings.cert or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
        if cafile and os.path.exists(cafile):
            return ssl.create_default_context(cafile=cafile)
        return ssl.create_default_context()

    def newest(self, name: str, *, python_version: str, specifier: str = "") -> str | None:
        url = f"{self.settings.index_url}/{normalize(name)}/"
        request = urllib.request.Request(
            url,
            headers={
                "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1",
                "User-Agent": "runner (dependency lock)",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context()) as resp:
                body = resp.read()
                content_type = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise IndexUnavailable(f"{url}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise IndexUnavailable(f"{self.settings.index_url}: {reason}") from exc
        if "json" in content_type:
            try:
                data = json.loads(body)
                files = [f for f in data.get("files", []) if isinstance(f, dict)]
            except (ValueError, AttributeError) as exc:
                raise IndexUnavailable(f"{url}: unreadable answer") from exc
        else:
            text = body.decode("utf-8", errors="replace")
            files = []
            for href, label in _HREF.findall(text):
                rp = re.search(r'data-requires-python="([^"]*)"', href)
                files.append({"filename": label.strip(), "requires-python": rp.group(1) if rp else None})
        return choose_newest(files, python_version, specifier)
