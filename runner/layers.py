"""How the lock is installed: in which layers, and whether uv can take it.  Pure.

A one-package bump should rebuild (and push) a small layer, not the whole
environment.  Docker rebuilds every layer after the first one whose inputs
changed, so the heavy distributions that change least go first, each family in a
layer of its own, and everything else is installed by one last layer.  A family
layer installs exact pins with ``--no-deps`` (the lock is the closure); the last
layer installs the whole lock with dependency resolution, so what a family layer
already holds is only checked there, and anything the lock leaves unpinned is
still resolved as before.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from runner.deps.model import Lock

#: (layer, distribution-name patterns), stacked in this order: what changes least comes first.
#: CUDA libraries follow the framework's minor releases; frameworks change a few times a year;
#: the array stack more often; the project's own small dependencies most often (the last layer).
HEAVY_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cuda", ("nvidia-*", "cuda-python", "cupy-cuda*")),
    ("torch", ("torch", "torchvision", "torchaudio", "triton", "pytorch-triton*", "xformers")),
    ("tensorflow", ("tensorflow", "tensorflow-*", "tf-keras", "keras", "tensorboard", "tensorboard-*")),
    ("jax", ("jax", "jaxlib", "jax-cuda*")),
    (
        "arrays",
        (
            "numpy",
            "scipy",
            "pandas",
            "pyarrow",
            "scikit-learn",
            "polars",
            "numba",
            "llvmlite",
            "opencv-python",
            "opencv-python-headless",
            "opencv-contrib-python",
            "matplotlib",
        ),
    ),
)

#: lock options uv does not take (it warns and ignores them): pip installs such a lock
_UV_REFUSES = {"--prefer-binary": "the lock asks for --prefer-binary, which uv has no equivalent of"}
_EXACT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[^\s;@,]+$")


@dataclass(frozen=True)
class LayerFile:
    name: str  # file name in the build context's .runner/layers/, also the layer's label
    text: str  # the lock's options, then the family's exact pins


def family_of(name: str) -> int | None:
    """The index of the heavy family a (normalised) distribution name belongs to, if any."""
    for i, (_, patterns) in enumerate(HEAVY_FAMILIES):
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            return i
    return None


def split_layers(lock: Lock) -> tuple[LayerFile, ...]:
    """The family layers this lock needs, in stacking order; the rest is installed from the whole lock.

    Only exact pins (``name==version``) go into a family layer: a URL, a file or a range
    is left to the last layer, which resolves the whole lock.
    """
    groups: dict[int, list[str]] = {}
    for r in lock.requirements:
        fam = family_of(r.name)
        if fam is not None and _EXACT.match(r.line):
            groups.setdefault(fam, []).append(r.line)
    head = "".join(f"{o}\n" for o in lock.pip_options)
    return tuple(
        LayerFile(f"{i + 1}-{HEAVY_FAMILIES[i][0]}.txt", head + "".join(f"{ln}\n" for ln in sorted(lines)))
        for i, lines in sorted(groups.items())
    )


def uv_refusal(pip_options: tuple[str, ...]) -> str:
    """Why uv cannot install a lock with these options ("" when it can)."""
    for option in pip_options:
        reason = _UV_REFUSES.get(option.split()[0])
        if reason:
            return reason
    return ""
