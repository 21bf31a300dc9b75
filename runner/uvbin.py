"""uv's binary, from runner's own environment (the ``uv`` package), for the image build's context.

The image runs Linux, so only a Linux binary is of use; where there is none, pip
installs the lock and the build log says why.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def find_uv() -> tuple[Path | None, str]:
    """The uv binary to ship into the build, or None and why not.  ``RUNNER_INSTALLER=pip`` turns uv off."""
    if os.environ.get("RUNNER_INSTALLER", "").lower() == "pip":
        return None, "RUNNER_INSTALLER=pip"
    if not sys.platform.startswith("linux"):
        return None, f"uv in runner's environment is built for {sys.platform}, the image runs Linux"
    try:
        from uv import find_uv_bin
    except ImportError:
        return None, "the uv package is not installed with runner"
    try:
        return Path(find_uv_bin()), ""
    except FileNotFoundError:
        return None, "the uv package is installed but its binary is missing"
