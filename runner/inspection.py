"""What only an engine can add to a plan: the image tag (from the base image's id) and the base image's Python.

``runner inspect`` shows both (:func:`inspect`); ``runner run`` checks the lock against the
base image's Python before it records or builds anything (:func:`python_warnings`).  The
engine is asked once per base image id: :mod:`runner.basepython` remembers its answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from runner.errors import DependencyError, RunnerError
from runner.plan import Plan

if TYPE_CHECKING:
    from runner.deps.pycheck import PythonCheck


class BaseImageEngine(Protocol):
    def image_id(self, ref: str) -> str | None: ...

    def image_python(self, ref: str) -> str | None: ...

    def pull(self, ref: str) -> str: ...


@dataclass(frozen=True)
class Inspection:
    plan: Plan
    image: str | None  # None when the base image's id is not known here
    note: str | None = None
    #: the base image's Python against the lock (None: not checked, ``python_note`` says why)
    python: PythonCheck | None = None
    python_note: str | None = None


def inspect(plan: Plan, engine: BaseImageEngine, cache_dir: Path) -> Inspection:
    """The plan, and the image tag if the engine can tell the base image's id.  No side effects."""
    try:
        base_id = engine.image_id(plan.base_image)
    except RunnerError as e:
        return Inspection(plan, None, f"image tag unknown: {e.message}")
    if base_id is None:
        return Inspection(
            plan,
            None,
            f"image tag unknown until the base image {plan.base_image} is pulled or built",
            python_note=f"base image {plan.base_image} not present: its Python is checked when it is",
        )
    try:
        check, why = python_check(plan, engine, base_id, cache_dir), None
    except RunnerError as e:
        check, why = None, f"could not ask the base image for its Python: {e.message}"
    if check is None and why is None:
        why = f"the base image {plan.base_image} does not tell its Python version: not checked"
    return Inspection(plan, plan.image_ref(base_id), python=check, python_note=why)


@dataclass(frozen=True)
class Image:
    """A plan's image on this engine: its tag, whether it is built already, the Python check's warnings."""

    ref: str
    cached: bool
    python_warnings: tuple[str, ...] = ()


def image_for(plan: Plan, engine: BaseImageEngine, cache_dir: Path) -> Image:
    """The plan's image tag (the base image pulled if it is not here) and whether it exists.

    An image to build is checked first: a lock the base image's Python cannot run is a
    DependencyError before anything is recorded or built; one that exists was built, so
    there is nothing left to check.
    """
    base_id = engine.image_id(plan.base_image) or engine.pull(plan.base_image)
    ref = plan.image_ref(base_id)
    if engine.image_id(ref) is not None:
        return Image(ref, True)
    return Image(ref, False, python_warnings(plan, engine, base_id, cache_dir))


def python_check(plan: Plan, engine: BaseImageEngine, base_id: str, cache_dir: Path) -> PythonCheck | None:
    """The base image's Python against the lock (None when the image cannot tell its version).

    Asked of the engine once per image id, then cached: a cached run starts no container for it.
    """
    from runner.basepython import check, image_python

    version = image_python(cache_dir, engine, base_id)
    return None if version is None else check(cache_dir, plan.lock, version, image=plan.base_image)


def python_warnings(plan: Plan, engine: BaseImageEngine, base_id: str, cache_dir: Path) -> tuple[str, ...]:
    """The base image's Python against the lock: its warnings; a DependencyError for a lock it cannot run."""
    unchecked = "the lock's Requires-Python was not checked"
    try:
        check = python_check(plan, engine, base_id, cache_dir)
    except RunnerError as e:
        return (f"could not ask the base image for its Python ({e.message}): {unchecked}",)
    if check is None:
        return (f"the base image {plan.base_image} does not tell its Python version: {unchecked}",)
    if check.errors:
        raise DependencyError(check.errors[0])  # before the run is recorded or anything is built
    return check.warnings
