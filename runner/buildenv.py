"""The host's package-index settings, passed to the image build's install steps.

The build must reach the index the host uses, through the same proxy and CA bundle.
With BuildKit these values reach the install steps as secret mounts (:func:`secret_files`);
with the classic builder as build arguments of the ``deps`` stage and a CA file beside
the lock.  Neither way reaches the final image, its history or its config (see
:mod:`runner.render`).
"""

from __future__ import annotations

import configparser
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runner.render import INDEX_ARGS, SECRET_CA, SECRET_INDEX

# Proxy variables are build arguments Docker predefines and keeps out of the image history.
PROXY_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
)
_PIP_KEYS = {"index-url": "PIP_INDEX_URL", "extra-index-url": "PIP_EXTRA_INDEX_URL", "trusted-host": "PIP_TRUSTED_HOST"}
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class BuildEnv:
    buildargs: dict[str, str] = field(default_factory=dict)
    ca_bundle: bytes = b""


def pip_config_files(env: Mapping[str, str], home: Path) -> list[Path]:
    """pip's own order: global, user, site; later files win."""
    if env.get("PIP_CONFIG_FILE"):
        return [Path(env["PIP_CONFIG_FILE"])]
    files = [
        Path("/etc/xdg/pip/pip.conf"),
        Path("/etc/pip.conf"),
        home / ".pip/pip.conf",
        home / ".config/pip/pip.conf",
    ]
    if env.get("VIRTUAL_ENV"):
        files.append(Path(env["VIRTUAL_ENV"]) / "pip.conf")
    return files


def read_build_env(env: Mapping[str, str] | None = None, *, home: Path | None = None) -> BuildEnv:
    env = dict(os.environ if env is None else env)
    home = home or Path.home()
    settings: dict[str, str] = {}
    cert = ""
    for path in pip_config_files(env, home):
        cp = configparser.ConfigParser(interpolation=None)
        try:
            cp.read(path)
        except configparser.Error:
            continue
        for section in ("global", "install"):
            if not cp.has_section(section):
                continue
            for key, var in _PIP_KEYS.items():
                if cp.has_option(section, key):
                    settings[var] = " ".join(cp.get(section, key).split())
            if cp.has_option(section, "cert"):
                cert = cp.get(section, "cert")
    for var in INDEX_ARGS:  # the environment wins over files, as in pip
        if env.get(var):
            settings[var] = env[var]
    settings.update({v: env[v] for v in PROXY_VARS if env.get(v)})
    cert = env.get("PIP_CERT") or cert or env.get("REQUESTS_CA_BUNDLE") or env.get("SSL_CERT_FILE") or ""
    candidates = [Path(cert)] if cert else []
    candidates.append(SYSTEM_CA)
    bundle = b""
    for c in candidates:
        try:
            bundle = c.read_bytes()
            break
        except OSError:
            continue
    return BuildEnv(buildargs=settings, ca_bundle=bundle)


def secret_files(env: BuildEnv) -> dict[str, bytes]:
    """BuildKit secrets: the settings as shell ``export`` lines (the install step sources them), and the CA bundle."""
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(env.buildargs.items()))
    return {SECRET_INDEX: exports.encode(), SECRET_CA: env.ca_bundle}


def redact(text: str, env: BuildEnv) -> str:
    """Hide secret build settings (index URLs carry credentials) from a log line."""
    for value in env.buildargs.values():
        if value and len(value) > 3:
            text = text.replace(value, "***")
    return text
