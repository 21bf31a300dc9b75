"""One exception hierarchy for runner.

Everything runner raises on purpose derives from :class:`RunnerError`.  Third-party
errors (docker, kubernetes, sqlite) are translated into these at the adapter
boundary, chained with ``from e``.  Only the CLI's top level prints them and exits.
"""

from __future__ import annotations


class RunnerError(Exception):
    """Root of runner's errors: a one-line message for the user, and an exit code."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: what the user can do about it (shown after the message)
        self.hint = hint
        #: extra lines worth showing (a log tail), printed below the message
        self.detail = detail

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(RunnerError):
    """Bad input from the user: missing script, bad option value.  Exit code 2."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file or setting that is wrong."""


class DependencyError(RunnerError):
    """The dependency lock could not be made."""


class EngineError(RunnerError):
    """The container engine is unreachable or refused an operation."""


class StreamCutError(EngineError):
    """A container's output stream ended while the container still runs (only the connection broke)."""


class ImageMissingError(EngineError):
    """The base image is neither present nor pullable."""


class BuildError(RunnerError):
    """The image build failed; ``detail`` holds the tail of the build log."""


class NotFoundError(RunnerError):
    """A run or experiment name that history does not know."""

    exit_code = 2


class StoreError(RunnerError):
    """The history database could not be read or written."""


class ClusterError(RunnerError):
    """The Kubernetes API server is unreachable, refused a request, or a workload could not be made."""


class ClusterUnreachableError(ClusterError):
    """The Kubernetes API server did not answer, or answered that it cannot serve now (5xx, 429): worth waiting for."""


class ForbiddenError(ClusterError):
    """The Kubernetes API refused the request for lack of rights (403): asking again will not help."""


class ConflictError(ClusterError):
    """The Kubernetes object exists already (the API's 409 Conflict)."""


class RegistryError(RunnerError):
    """The image registry is unreachable, refused our credentials, or failed (never read as "image present")."""


#: the longest piece of user input a message repeats
CLIP = 80


def clip(value: object, limit: int = CLIP) -> str:
    """``repr`` of a value the user gave, cut to ``limit`` characters: messages never echo unbounded input."""
    text = value if isinstance(value, str) else str(value)
    shown = repr(text[:limit])
    return shown if len(text) <= limit else f"{shown}... ({len(text):,} characters)"
