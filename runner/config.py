"""``runner.yaml`` at the project root (or ``--config FILE``): defaults for command-line options.

Flags win over the environment, which wins over the file: :func:`resolve` is the one
place that says so.  Every problem in the file (unknown keys, wrong types, bad values)
is reported at once, in one :class:`ConfigError` naming the keys and the file.

Keys are the option names with ``_`` for ``-`` (``base_image`` for ``--base-image``)::

    target: kubernetes          # local | kubernetes
    registry: registry.example.com/me
    context: my-cluster         # kubeconfig context
    namespace: ml
    base_image: python:3.11-slim
    python: .venv/bin/python
    requirements: requirements.txt
    cpus: 2                     # more than zero
    memory: 4Gi                 # or bytes
    gpus: 1
    env: {WANDB_MODE: offline}  # or a list of KEY=VALUE
    secret: [wandb-key]
    datastore: [imagenet:2:/data]   # NAME[:VERSION][:MOUNTDIR]
    timeout: 2h                 # seconds, or like 90s, 30m, 2h, 1d, 1h30m
    retries: 1
    sweep: true                 # expand sweep values (runner.sweep) with `strategy`
    strategy: random_search     # grid_search | random_search
    trials: 20
    seed: 7
    max_parallel: 4
    detach: false
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from runner.errors import ConfigError, UsageError, clip

if TYPE_CHECKING:
    from runner.sweep import Strategy

# Imported on every `runner run`, so what only checking a file needs is cheap to
# import: patterns are strings compiled on first use (re caches them), runner.sweep
# is imported by sweep_settings(), and Key is a NamedTuple, not a dataclass.

CONFIG_NAME = "runner.yaml"

TARGETS = ("local", "kubernetes")
STRATEGIES = ("grid_search", "random_search")  # runner.sweep.Strategy's, but "none"

# Kubernetes names: a namespace is a DNS-1123 label, a secret a DNS-1123 subdomain.
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_ENV_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
_DURATION_PART = r"(\d+(?:\.\d+)?)\s*([smhd]?)"
_DURATION = r"\s*(?:\d+(?:\.\d+)?\s*[smhd]?\s*)+"
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

#: a settings file is a few lines; past these it is a mistake or an attack ("billion laughs")
MAX_CONFIG_BYTES = 256 * 1024
MAX_YAML_ALIASES = 64
MAX_YAML_NODES = 20_000


def _positive(v: Any) -> str | None:
    return None if v > 0 else f"must be more than zero, not {v}"


def _not_negative(v: Any) -> str | None:
    return None if v >= 0 else f"cannot be negative, not {v}"


def _one_of(*allowed: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in allowed else f"must be one of {', '.join(allowed)}, not {clip(v)}"

    return check


def _nonempty(v: Any) -> str | None:
    return None if v.strip() else "cannot be empty"


def _namespace(v: Any) -> str | None:
    if len(v) <= 63 and re.fullmatch(_LABEL, v):
        return None
    return f"{clip(v)} is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63)"


def check_namespace(value: str | None, *, option: str = "--namespace") -> None:
    """A namespace given on the command line (or by the API), checked before anything is built."""
    problem = None if value is None else _namespace(value)
    if problem:
        raise UsageError(f"{option} {problem}")


def check_secret(value: str) -> None:
    if _secrets([value]):
        raise UsageError(
            f"--secret {clip(value)} is not a Kubernetes Secret name",
            hint="lower-case letters, digits, '-' and '.', at most 253",
        )


def check_context(value: str | None) -> None:
    if value is not None and (not value.strip() or len(value) > 253 or not value.isprintable()):
        raise UsageError(f"--context {clip(value)} is not a kubeconfig context name")


def _cpus(v: Any) -> str | None:
    from runner.resources import make_resources

    if v <= 0:
        return _positive(v)
    try:
        make_resources(cpus=float(v), memory=None, gpus=0)
    except UsageError as e:
        return e.message.removeprefix("--cpus ")
    return None


def _memory(v: Any) -> str | None:
    from runner.resources import parse_memory

    try:
        parse_memory(str(v))
    except UsageError as e:
        if "is not a size" in e.message:
            return f"{clip(v)} is not a size (write it like 512M, 2G or 1.5Gi, or a number of bytes)"
        return e.message.removeprefix("--memory ") + (f" ({e.hint})" if e.hint else "")
    return None


def _env(v: Any) -> str | None:
    if isinstance(v, dict):
        bad = [clip(k) for k in v if not isinstance(k, str) or not re.fullmatch(_ENV_KEY, k)]
        if bad:
            return f"has keys that are not variable names: {', '.join(bad[:5])}"
        nested = [k for k, x in v.items() if isinstance(x, (dict, list))]
        return f"values must be text or numbers, not for {', '.join(nested)}" if nested else None
    bad = [clip(x) for x in v if not isinstance(x, str) or "=" not in x or not re.fullmatch(_ENV_KEY, x.split("=")[0])]
    return f"items must be KEY=VALUE, not {', '.join(bad[:5])}" if bad else None


def _secrets(v: Any) -> str | None:
    bad = [clip(x) for x in v if not isinstance(x, str) or len(x) > 253 or not re.fullmatch(_SUBDOMAIN, x)]
    return f"items must be Kubernetes secret names, not {', '.join(bad[:5])}" if bad else None


def _datastores(v: Any) -> str | None:
    bad = [clip(x) for x in v if not isinstance(x, str) or datastore_problem(x)]
    return f"items must be NAME[:VERSION][:MOUNTDIR], not {', '.join(bad[:5])}" if bad else None


#: a datastore name becomes part of ConfigMap names and labels: a DNS-1123 label, short enough for a prefix
MAX_DATASTORE_NAME = 40
#: folders a datastore may not be mounted over: the project, and what the image's system needs
_SYSTEM_DIRS = (
    "/project",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/opt/runner",
    "/proc",
    "/root",
    "/run",
    "/runner-data",
    "/sbin",
    "/sys",
    "/usr",
    "/var",
    "/tmp",
)


def datastore_name_problem(name: str) -> str | None:
    if not name:
        return "has no name"
    if len(name) > MAX_DATASTORE_NAME or not re.fullmatch(_LABEL, name):
        return (
            f"name {clip(name)} is not a datastore name (lower-case letters, digits and '-', starting and ending "
            f"with a letter or digit, at most {MAX_DATASTORE_NAME})"
        )
    return None


def mount_dir_problem(mount: str) -> str | None:
    import posixpath

    if not mount.startswith("/") or len(mount) > 256 or "\0" in mount:
        return f"mount folder {clip(mount)} must be an absolute path"
    parts = mount.split("/")
    if ".." in parts or "." in parts or posixpath.normpath(mount) != mount.rstrip("/") or mount == "/":
        return f"mount folder {clip(mount)} must be a plain absolute path (no '.', '..' or '//')"
    norm = posixpath.normpath(mount)
    for d in _SYSTEM_DIRS:
        if norm == d or norm.startswith(d + "/") or d.startswith(norm + "/"):
            return f"mount folder {clip(mount)} would hide {d} (the project or a system folder); use e.g. /data"
    return None


def datastore_problem(text: str) -> str | None:
    """What is wrong with ``NAME[:VERSION][:MOUNTDIR]`` (None: nothing)."""
    parts = text.split(":", 2)
    name, seen_version, seen_mount = parts[0], False, False
    for extra in parts[1:]:
        if extra.isdigit() and not seen_version and not seen_mount and len(extra) <= 9:
            seen_version = True
        elif extra.startswith("/") and not seen_mount:
            seen_mount = True
            if p := mount_dir_problem(extra):
                return p
        else:
            return "is not NAME[:VERSION][:MOUNTDIR] (e.g. mnist:2:/data)"
    return datastore_name_problem(name)


def check_datastore(text: str) -> None:
    problem = datastore_problem(text)
    if problem:
        raise UsageError(f"--datastore {clip(text)}: {problem}")


def _timeout(v: Any) -> str | None:
    try:
        parse_timeout(v)
    except UsageError as e:
        return e.message.removeprefix("--timeout ")
    return None


class Key(NamedTuple):
    types: tuple[type, ...]
    check: Callable[[Any], str | None] | None = None  # a problem with a well-typed value, or None


#: every key the file may set; the CLI option is ``--`` + the key with ``-`` for ``_``
KEYS: dict[str, Key] = {
    "target": Key((str,), _one_of(*TARGETS)),
    "registry": Key((str,), _nonempty),
    "context": Key((str,), _nonempty),
    "namespace": Key((str,), _namespace),
    "base_image": Key((str,), _nonempty),
    "python": Key((str,), _nonempty),
    "requirements": Key((str,), _nonempty),
    "cpus": Key((int, float), _cpus),
    "memory": Key((str, int), _memory),
    "gpus": Key((int,), _not_negative),
    "env": Key((dict, list), _env),
    "secret": Key((list,), _secrets),
    "datastore": Key((list,), _datastores),
    "timeout": Key((int, str), _timeout),
    "retries": Key((int,), _not_negative),
    "sweep": Key((bool,)),
    "strategy": Key((str,), _one_of(*STRATEGIES)),
    "trials": Key((int,), _positive),
    "seed": Key((int,)),
    "max_parallel": Key((int,), _positive),
    "detach": Key((bool,)),
}

# YAML spellings of types, for messages read by people who wrote YAML
_TYPE_NAMES = {str: "str", int: "int", float: "float", bool: "bool", dict: "mapping", list: "list"}


@dataclass(frozen=True)
class Config:
    values: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def get(self, key: str) -> Any:
        """The file's value for ``key`` (one of :data:`KEYS`), or None when it is not set."""
        return self.values.get(key)


def load_config(path: Path, *, required: bool = False) -> Config:
    """The settings in ``path``; none when it does not exist, unless ``required`` (``--config FILE``)."""
    if not path.is_file():
        if required:
            raise ConfigError(f"config file {path} not found")
        return Config()
    import yaml  # only when a config file exists: it costs tens of milliseconds

    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {size:,} bytes is too big for a settings file (at most {MAX_CONFIG_BYTES:,})")
        with open(path, "rb") as fh:
            text = fh.read(MAX_CONFIG_BYTES + 1).decode("utf-8")
        data = _load_yaml(text) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e).splitlines()[0][:200]
        raise ConfigError(f"{path}: cannot read: {reason}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    problems = [p for key, value in data.items() if (p := _problem(key, value))]
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems), hint=f"known keys: {', '.join(sorted(KEYS))}")
    return Config(values=dict(data), path=path)


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with limits: at most :data:`MAX_YAML_ALIASES` aliases and :data:`MAX_YAML_NODES` nodes.

    A "billion laughs" file (aliases of aliases) composes to a small graph, but anything
    that walks the values it makes (a message, a copy) walks billions of them.
    """
    import yaml

    class Loader(yaml.SafeLoader):
        aliases = 0
        nodes = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_YAML_ALIASES:
                    raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases (*name): not a settings file")
            self.nodes += 1
            if self.nodes > MAX_YAML_NODES:
                raise yaml.YAMLError(f"more than {MAX_YAML_NODES:,} values: not a settings file")
            return super().compose_node(parent, index)

    loader = Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _problem(key: Any, value: Any) -> str | None:
    spec = KEYS.get(key) if isinstance(key, str) else None
    if spec is None:
        from difflib import get_close_matches  # only when there is a typo to suggest a fix for

        close = get_close_matches(str(key)[:100].replace("-", "_"), KEYS, n=1)
        return f"unknown key {clip(key)}" + (f" (did you mean {close[0]!r}?)" if close else "")
    # bool is an int to Python, but `gpus: true` is a mistake, not 1
    if isinstance(value, bool) != (bool in spec.types) or not isinstance(value, spec.types):
        wanted = " or ".join(_TYPE_NAMES[t] for t in spec.types)
        got = "null" if value is None else _TYPE_NAMES.get(type(value), type(value).__name__)
        return f"{key!r} must be {wanted}, not {got}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{key!r} must be a finite number, not {value}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**62:
        return f"{key!r} is out of range"
    problem = spec.check(value) if spec.check else None
    return f"{key!r} {problem}" if problem else None


T = TypeVar("T")


def resolve(key: str, cli_value: T | None, config: Config, default: T) -> T:
    """The value of one setting: the command line's (flag or its environment variable)
    when given, else the file's, else ``default``.

    The CLI's options must default to None for this to tell "not given" from a value:
    ``--gpus 0`` wins over ``gpus: 1`` in the file.
    """
    if cli_value is not None:
        return cli_value
    value = config.get(key)
    return default if value is None else value


def resolve_items(key: str, cli_values: list[str] | tuple[str, ...] | None, config: Config) -> list[str]:
    """A repeatable option (``env``, ``secret``, ``datastore``): the file's items, then the
    command line's, so a consumer that keys them by name lets the flag win."""
    file_items = env_items(config.get(key)) if key == "env" else [str(v) for v in config.get(key) or []]
    return [*file_items, *(cli_values or [])]


def env_items(value: Any) -> list[str]:
    """``env`` from the file as ``KEY=VALUE`` items: a mapping or a list of such strings."""
    if isinstance(value, dict):
        return [f"{k}={v}" for k, v in value.items()]
    return [str(v) for v in value or []]


@dataclass(frozen=True)
class SweepSettings:
    strategy: Strategy
    trials: int | None
    seed: int | None


def sweep_settings(
    *, sweep: bool, strategy: str | None, trials: int | None, seed: int | None, config: Config
) -> SweepSettings:
    """The sweep options from the command line (None: not given) and the file, for
    :func:`runner.sweep.expand`.

    Sweeping is opt-in, so a strategy in the file only chooses *how* to sweep: it is
    turned on by ``--sweep``, ``--strategy`` or ``sweep: true``; otherwise a default
    ``strategy: random_search`` with ``trials: 20`` would turn every plain run into 20.
    ``--strategy`` decides when given: ``--strategy none`` turns a ``sweep: true`` off
    (so ``--sweep`` can be a plain flag; there is no ``--no-sweep``).
    Trials from the file apply to random search only; ``--trials`` with any other
    strategy is left for expand() to refuse.
    """
    from runner.sweep import Strategy

    if strategy is not None:
        chosen = _strategy(strategy)
    elif sweep or config.get("sweep"):
        chosen = Strategy(config.get("strategy") or Strategy.GRID_SEARCH)
    else:
        chosen = Strategy.NONE
    if chosen is Strategy.RANDOM_SEARCH:
        trials = resolve("trials", trials, config, None)
    return SweepSettings(chosen, trials, resolve("seed", seed, config, None))


def _strategy(text: str) -> Strategy:
    from runner.sweep import Strategy

    try:
        return Strategy(text)
    except ValueError:
        allowed = ", ".join(s.value for s in Strategy)
        raise UsageError(f"--strategy {clip(text)} is not a strategy", hint=f"use one of {allowed}") from None


def parse_timeout(value: int | str) -> int:
    """Seconds: ``3600``, ``"90s"``, ``"30m"``, ``"2h"``, ``"1d"``, ``"1h30m"``; rounded up to
    whole seconds, so a timeout is never shorter than asked for."""
    if isinstance(value, bool):
        raise UsageError(f"--timeout {value!r} is not a duration")
    if isinstance(value, int):
        seconds: float = value
    elif len(value) <= 64 and re.fullmatch(_DURATION, value, re.I):
        seconds = sum(float(n) * _SECONDS[unit.lower()] for n, unit in re.findall(_DURATION_PART, value, re.I))
    else:
        raise UsageError(f"--timeout {clip(value)} is not a duration", hint="in seconds or like 90s, 30m, 2h, 1h30m")
    if seconds <= 0:
        raise UsageError(f"--timeout {value!r} must be more than zero")
    if seconds > 366 * 86400:
        raise UsageError(f"--timeout {value!r} is more than a year", hint="leave it out for no timeout")
    return math.ceil(seconds)
