"""runner: run a Python script unchanged in a container, locally or on Kubernetes.

``import runner`` stays cheap: the API loads on first use of one of its names.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Run", "runs", "submit", "typecast", "run_name", "experiment_name", "params"]


def __getattr__(name: str) -> Any:
    if name in ("Run", "runs", "submit"):
        from runner import api

        return getattr(api, name)
    if name in ("typecast", "run_name", "experiment_name", "params"):
        # the same functions a container's script gets from runner's in-container runtime
        from runner import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
