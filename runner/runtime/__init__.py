"""runner's in-container runtime: what a script that does ``import runner`` gets in its container.

This one file is the whole runtime.  It is shipped into an image as
``/opt/runner/runtime/runner/__init__.py`` (on ``PYTHONPATH``, after the project's own
folders) when the project imports ``runner`` and has no ``runner`` module of its own;
runner's own dependencies never enter the image.  It must therefore use the standard
library only and import nothing else from runner.  The installed runner uses the same
functions (``runner.typecast`` is :func:`typecast` here): one source of truth.

What a container's script can read (runner sets these on both targets)::

    RUNNER_RUN         the run's name
    RUNNER_EXPERIMENT  the experiment's name (``<run>-exp<N>``)
    RUNNER_PARAMS      the experiment's swept parameters, a JSON object: name -> text
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["typecast", "run_name", "experiment_name", "params", "in_container"]

RUN_VAR = "RUNNER_RUN"
EXPERIMENT_VAR = "RUNNER_EXPERIMENT"
PARAMS_VAR = "RUNNER_PARAMS"
#: set by the image (ENV) when this file is the ``runner`` module in a container
RUNTIME_VAR = "RUNNER_RUNTIME"


def typecast(argv: Sequence[str]) -> list[Any]:
    """Arguments as Python values where they are literals: ``"4.2"`` -> 4.2, ``"42"`` -> 42,
    ``"[4,2]"`` -> [4, 2], ``"'a'"`` -> ``'a'``, ``"True"`` -> True, ``"None"`` -> None.
    Anything else (``"--lr"``, ``"abc"``, ``"1e"``, ``""``) stays the string.

    For scripts (``lr = typecast(sys.argv[1:])``).  Only :func:`ast.literal_eval`, which
    evaluates literals and nothing else: no names, calls or attribute access.
    """
    return [_cast(a) for a in argv]


def _cast(arg: str) -> Any:
    try:
        value = ast.literal_eval(arg)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return arg
    # "..." is a literal too, but nobody passing three dots means Ellipsis
    return arg if value is Ellipsis else value


def run_name() -> str | None:
    """The run this process belongs to (None outside a runner container)."""
    return os.environ.get(RUN_VAR) or None


def experiment_name() -> str | None:
    """The experiment this process is (``<run>-exp<N>``; None outside a runner container)."""
    return os.environ.get(EXPERIMENT_VAR) or None


def params() -> dict[str, Any]:
    """The experiment's swept parameters, typecast: ``{"--lr": 0.01, "arg1": [64, 32]}``.

    Keys are the sweep's names (the option a value belongs to, else ``argN``); values are
    what the script received, through :func:`typecast`.  Empty without a sweep, and
    outside a runner container.
    """
    raw = os.environ.get(PARAMS_VAR)
    if not raw:
        return {}
    try:
        loaded = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(k): _cast(v) if isinstance(v, str) else v for k, v in loaded.items()}


def in_container() -> bool:
    """True when this is the runtime shipped into a runner image (not the installed runner)."""
    return os.environ.get(RUNTIME_VAR) == "1"


def env_for(run: str, experiment: str, swept: dict[str, str]) -> dict[str, str]:
    """The variables above for one experiment (used by runner when it starts containers)."""
    return {RUN_VAR: run, EXPERIMENT_VAR: experiment, PARAMS_VAR: json.dumps(swept, sort_keys=True, ensure_ascii=False)}


def __getattr__(name: str) -> Any:
    # Only reached in a container, where this file is the whole ``runner`` module: the
    # installed runner's __init__ answers for its API names before this one is asked.
    if name in ("Run", "runs", "submit", "api", "cli"):
        raise AttributeError(
            f"runner.{name} is not available inside a runner container (only typecast, run_name, "
            f"experiment_name and params are): submit runs from your machine"
        )
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
