"""Parsing of resource and environment options.  Pure."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from runner.errors import UsageError, clip

_UNITS = {
    "": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*$", re.I)
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: below this a container cannot even start its init process (the engine itself refuses less than 6 MB)
MIN_MEMORY = 4 * 2**20
#: more than any machine or node has: a typo (a missing unit the other way round, an extra digit)
MAX_MEMORY = 2**50
MAX_CPUS = 4096


@dataclass(frozen=True)
class Resources:
    cpus: float | None = None
    memory: str | None = None  # as given, normalised to Kubernetes quantity spelling ("2G", "512Mi")
    memory_bytes: int | None = None
    gpus: int = 0

    def describe(self) -> str:
        parts = [f"cpus={self.cpus:g}" if self.cpus else "cpus=-", f"memory={self.memory or '-'}", f"gpus={self.gpus}"]
        return " ".join(parts)


def parse_memory(text: str) -> tuple[str, int]:
    """``2G`` -> (``2G``, 2_000_000_000); ``512Mi`` -> (``512Mi``, 536_870_912).  Units as in Kubernetes."""
    m = _MEMORY.match(text) if len(text) <= 64 else None
    if not m:
        raise UsageError(f"--memory {clip(text)} is not a size", hint="write it like 512M, 2G or 1.5Gi")
    number, unit = m.group(1), (m.group(2) or "").lower()
    value = int(float(number) * _UNITS[unit])
    if value <= 0:
        raise UsageError(f"--memory {text!r} must be more than zero")
    if value < MIN_MEMORY:
        raise UsageError(f"--memory {text!r} is too little to start a container", hint="give at least 4Mi")
    if value > MAX_MEMORY:
        raise UsageError(f"--memory {text!r} is more than any machine has", hint="give at most 1Pi")
    spelled = unit[:1].upper() + unit[1:] if unit else ""
    return f"{number}{spelled}", value


def make_resources(*, cpus: float | None, memory: str | None, gpus: int) -> Resources:
    if cpus is not None and not math.isfinite(cpus):
        raise UsageError(f"--cpus {cpus} is not a number of CPUs", hint="give a finite number, like 0.5 or 2")
    if cpus is not None and cpus <= 0:
        raise UsageError(f"--cpus {cpus:g} must be more than zero")
    if cpus is not None and cpus > MAX_CPUS:
        raise UsageError(f"--cpus {cpus:g} is more than any machine has", hint=f"give at most {MAX_CPUS}")
    if cpus is not None and cpus < 0.001:
        raise UsageError(f"--cpus {cpus:g} is less than the smallest share, 0.001")
    if gpus < 0:
        raise UsageError(f"--gpus {gpus} cannot be negative")
    if gpus > 64:
        raise UsageError(f"--gpus {gpus} is more than any machine has", hint="give at most 64")
    mem, mem_bytes = parse_memory(memory) if memory else (None, None)
    return Resources(cpus=cpus, memory=mem, memory_bytes=mem_bytes, gpus=gpus)


def parse_env(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _ENV_KEY.match(key):
            raise UsageError(f"--env {clip(item)} is not KEY=VALUE", hint="for example --env SEED=1")
        env[key] = value
    return env
