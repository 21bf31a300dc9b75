"""The base image's Python version, asked of the engine once per image id, and the lock check on it.

Both answers are cached in ``RUNNER_HOME/cache/base-python.json``: the version by image
id (an image id is its content, so the answer never goes stale; asking may start a
throwaway container), the check by its inputs (its ``packaging`` import alone costs
tens of milliseconds).  A cached ``runner run`` reads one small file and starts nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from runner.deps.cache import digest
from runner.deps.model import Lock
from runner.deps.pycheck import PythonCheck
from runner.jsonfile import read_json, write_json

CACHE_FILE = "base-python.json"
_MAX_CHECKS = 256


class PythonOfImage(Protocol):
    def image_python(self, ref: str) -> str | None: ...


def _load(cache_dir: Path) -> dict[str, dict[str, object]]:
    data = read_json(cache_dir / CACHE_FILE)
    out: dict[str, dict[str, object]] = {"images": {}, "checks": {}}
    if isinstance(data, dict):
        for k in out:
            if isinstance(data.get(k), dict):
                out[k] = data[k]
    return out


def image_python(cache_dir: Path, engine: PythonOfImage, image_id: str) -> str | None:
    """The Python version of the image ``image_id`` ("" cached = the image could not tell)."""
    data = _load(cache_dir)
    hit = data["images"].get(image_id)
    if isinstance(hit, str):
        return hit or None
    version = engine.image_python(image_id)
    data["images"][image_id] = version or ""
    write_json(cache_dir / CACHE_FILE, data)
    return version


def check(cache_dir: Path, lock: Lock, image_python: str, *, image: str) -> PythonCheck:
    """:func:`runner.deps.pycheck.check_python`, remembered by its inputs."""
    key = digest(
        [
            image,
            image_python,
            lock.python_version,
            [list(p) for p in lock.requires_python],
            [[r.name, r.version] for r in lock.requirements if r.name in dict(lock.requires_python)],
        ]
    )
    data = _load(cache_dir)
    hit = data["checks"].get(key)
    if isinstance(hit, list) and len(hit) == 2:
        return PythonCheck(image, image_python, lock.python_version, tuple(map(str, hit[0])), tuple(map(str, hit[1])))
    from runner.deps.pycheck import check_python

    result = check_python(lock, image_python, image=image)
    checks = data["checks"]
    checks[key] = [list(result.errors), list(result.warnings)]
    for old in [k for k in checks if k != key][: max(0, len(checks) - _MAX_CHECKS)]:  # bounded: drop some others
        del checks[old]
    write_json(cache_dir / CACHE_FILE, data)
    return result
