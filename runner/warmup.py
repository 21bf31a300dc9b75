"""A home's first run warms up what a build needs from the engine, while the plan is being made.

On a first run the plan takes ~0.3 s (the interpreter probe, scans), and so do two things
only a build needs: importing uv's tools image into the engine (40 MB, once per engine)
and finding the Docker CLI that builds with BuildKit (three CLI calls here).  Done in
threads, they are ready when the build starts; the build's own calls wait for them
rather than doing the work twice.  A marker per engine and uv binary skips this
afterwards, so a cached run costs one ``stat`` more.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import RunnerError
from runner.render import uv_image
from runner.uvbin import find_uv, recorded_sha256

if TYPE_CHECKING:
    from runner.adapters.docker_engine import DockerEngine


def warm_build_tools(engine: DockerEngine, cache_dir: Path) -> list[threading.Thread]:
    """Start the warm-up unless this home did it for this engine and uv binary; its threads."""
    uv_bin, _ = find_uv()
    if uv_bin is None:
        return []
    try:
        st = uv_bin.stat()
    except OSError:
        return []
    key = hashlib.sha256(f"{engine.host}\0{uv_bin}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:24]
    marker = cache_dir / "tools" / key
    if marker.exists():
        return []

    def tools() -> None:
        try:
            # not from the plan's digest cache, which the plan is writing meanwhile
            digest = recorded_sha256(uv_bin) or hashlib.sha256(uv_bin.read_bytes()).hexdigest()
            engine.ensure_tool_image(uv_image(digest), "uv", uv_bin)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except (RunnerError, OSError):
            pass  # the build does it again, and says what is wrong

    threads = [
        threading.Thread(target=tools, name="runner-warm-tools", daemon=True),
        threading.Thread(target=engine.buildkit, name="runner-warm-buildkit", daemon=True),  # it keeps what it found
    ]
    for thread in threads:
        thread.start()
    return threads
