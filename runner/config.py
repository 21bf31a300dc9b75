"""``runner.yaml`` at the project root: defaults for command-line options.

Flags win over the environment, which wins over the file.  Every problem in the
file is reported at once, naming the key and the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import ConfigError

CONFIG_NAME = "runner.yaml"
#: key -> accepted types
KEYS: dict[str, tuple[type, ...]] = {
    "base_image": (str,),
    "python": (str,),
    "requirements": (str,),
    "cpus": (int, float),
    "memory": (str, int),
    "gpus": (int,),
    "env": (dict, list),
}


@dataclass(frozen=True)
class Config:
    values: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def get(self, key: str) -> Any:
        return self.values.get(key)


def load_config(path: Path) -> Config:
    if not path.is_file():
        return Config()
    import yaml  # only when a config file exists: it costs tens of milliseconds

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read: {e}".splitlines()[0]) from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    problems = []
    for key, value in data.items():
        if key not in KEYS:
            problems.append(f"unknown key {key!r}")
        elif isinstance(value, bool) or not isinstance(value, KEYS[key]):
            wanted = " or ".join(t.__name__ for t in KEYS[key])
            problems.append(f"{key!r} must be {wanted}, not {type(value).__name__}")
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems), hint=f"known keys: {', '.join(sorted(KEYS))}")
    return Config(values=dict(data), path=path)


def env_items(value: Any) -> list[str]:
    """``env`` from the file as ``KEY=VALUE`` items: a mapping or a list of such strings."""
    if isinstance(value, dict):
        return [f"{k}={v}" for k, v in value.items()]
    return [str(v) for v in value or []]
