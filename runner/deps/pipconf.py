"""pip's index settings (``index-url``, ``cert``), read as pip reads them.  Light: on the hot path."""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PipSettings", "pip_settings"]


@dataclass(frozen=True)
class PipSettings:
    index_url: str
    cert: str | None


def pip_settings(environ: Mapping[str, str] | None = None) -> PipSettings:
    """``index-url`` and ``cert`` as pip would read them (files in pip's order, then env)."""
    environ = os.environ if environ is None else environ
    home = Path(environ.get("HOME", str(Path.home())))
    files = [
        Path("/etc/xdg/pip/pip.conf"),
        Path("/etc/pip.conf"),
        home / ".pip" / "pip.conf",
        Path(environ.get("XDG_CONFIG_HOME", str(home / ".config"))) / "pip" / "pip.conf",
    ]
    if environ.get("VIRTUAL_ENV"):
        files.append(Path(environ["VIRTUAL_ENV"]) / "pip.conf")
    if environ.get("PIP_CONFIG_FILE"):
        files.append(Path(environ["PIP_CONFIG_FILE"]))
    index_url = "https://pypi.org/simple"
    cert: str | None = None
    parser = configparser.RawConfigParser()
    for file in files:
        try:
            parser.read(file, encoding="utf-8")
        except (configparser.Error, OSError):
            continue
    for section in ("global", "install"):
        if parser.has_section(section):
            index_url = parser.get(section, "index-url", fallback=index_url)
            cert = parser.get(section, "cert", fallback=cert)
    index_url = environ.get("PIP_INDEX_URL", index_url)
    cert = environ.get("PIP_CERT", cert)
    return PipSettings(index_url=index_url.rstrip("/"), cert=cert)
