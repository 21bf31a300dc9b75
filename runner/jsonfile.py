"""Small JSON files written atomically: caches that parallel runner processes share.

A reader sees the old file or the new one, never half of one; a missing or
corrupt file reads as ``None`` (a cache then just costs recomputing).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.loads(fh.read())
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Any) -> None:
    """Write through a temporary file unique to this process and thread, then rename it into place."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, sort_keys=True, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
