"""uv's binary, from runner's own environment (the ``uv`` package), for the image build's context.

The image runs Linux, so only a Linux binary is of use; where there is none, pip
installs the lock and the build log says why.
"""

from __future__ import annotations

import base64
import csv
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


def recorded_sha256(uv_bin: Path) -> str | None:
    """uv's sha256 as its installer recorded it (the ``RECORD`` of the ``uv`` distribution), or None.

    Reading it costs a file of a few lines; hashing the 40 MB binary costs ~50 ms.  The
    record counts only if it names this very file at its present size.
    """
    try:
        import uv

        site = Path(uv.__file__).resolve().parent.parent
        target = uv_bin.resolve()
        size = target.stat().st_size
        for record in site.glob("uv-*.dist-info/RECORD"):
            with record.open(newline="", encoding="utf-8") as fh:
                for row in csv.reader(fh):
                    if len(row) == 3 and row[1].startswith("sha256=") and (site / row[0]).resolve() == target:
                        if row[2] != str(size):
                            return None
                        raw = base64.urlsafe_b64decode(row[1][len("sha256=") :] + "==")
                        return raw.hex() if len(raw) == 32 else None
    except (ImportError, OSError, ValueError, csv.Error):
        return None
    return None
