"""Does the base image's Python fit the lock?  Pure: (lock, image Python version) -> messages.

The lock is pinned from the user's interpreter, whose version may differ from the
base image's (a local pyenv 3.11.7, Debian's 3.11.2 in the image).  pip refuses a
pinned version whose ``Requires-Python`` excludes the image's Python ("requires a
different Python", then "No matching distribution"), so that is an error before
anything is built; a different minor version (3.11 here, 3.12 there) is a warning:
the pins may have no wheels for it, or behave differently.  Patch releases of the same
minor version are otherwise not worth a word.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.deps.model import Lock

__all__ = ["PythonCheck", "check_python", "minor"]

_LISTED = 5  # distributions named in one error line; the rest are counted


@dataclass(frozen=True)
class PythonCheck:
    image: str
    image_python: str
    local_python: str
    #: the build would surely fail: one line each, naming the distributions and both versions
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        state = (
            "does not fit the lock"
            if self.errors
            else "differs from the local minor version"
            if self.warnings
            else "ok"
        )
        return f"image {self.image_python} ({self.image}), local {self.local_python or 'unknown'}: {state}"


def minor(version: str) -> str:
    """``3.11.7`` -> ``3.11``."""
    return ".".join(version.split(".")[:2])


def check_python(lock: Lock, image_python: str, *, image: str) -> PythonCheck:
    # packaging costs tens of milliseconds to import: only here, never for PythonCheck alone
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    local = lock.python_version
    try:
        have = Version(image_python)
    except InvalidVersion:
        return PythonCheck(
            image,
            image_python,
            local,
            warnings=(
                f"the base image {image} reports Python {image_python!r}, not a version number: the lock's "
                f"Requires-Python was not checked",
            ),
        )
    unmet: list[str] = []
    for name, spec in lock.requires_python:
        try:
            ok = SpecifierSet(spec).contains(have, prereleases=True)
        except InvalidSpecifier:
            continue  # pip ignores an invalid Requires-Python too
        if not ok:
            version = next((r.version for r in lock.requirements if r.name == name and r.version), None)
            unmet.append(f"{name}{'==' + version if version else ''} (Requires-Python {spec})")
    errors: list[str] = []
    warnings: list[str] = []
    local_minor = minor(local) if local else ""
    if unmet:
        listed = ", ".join(unmet[:_LISTED]) + (f" and {len(unmet) - _LISTED} more" if len(unmet) > _LISTED else "")
        fix = (
            f"pass --base-image with a Python that satisfies it (the local {local} does: e.g. python:{local_minor}-slim), "
            if local
            else "pass --base-image with a Python that satisfies it, "
        )
        errors.append(
            f"the base image {image} has Python {image_python}, which the lock does not support: {listed}; "
            f"the lock was pinned from the local Python {local or '(unknown)'}, and the build would fail: "
            f"{fix}or pin from an interpreter like the image's (--python PATH)"
        )
    if local and minor(image_python) != local_minor:
        warnings.append(
            f"the base image {image} has Python {image_python}, the lock was pinned from the local Python {local}: "
            f"pinned versions may lack wheels for {minor(image_python)} or behave differently "
            f"(--base-image with Python {local_minor} matches, e.g. python:{local_minor}-slim)"
        )
    return PythonCheck(image, image_python, local, tuple(errors), tuple(warnings))
