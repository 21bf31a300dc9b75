"""Names: run names people can say aloud, and Kubernetes-safe object names.

``kube_name`` is the single place Kubernetes names are made (slug plus a short hash
when the slug had to change), so two different inputs never collide after slugging.
"""

from __future__ import annotations

import hashlib
import os
import re

ADJECTIVES = (
    "amber",
    "bold",
    "brisk",
    "calm",
    "clever",
    "cosmic",
    "crisp",
    "daring",
    "eager",
    "fancy",
    "fluffy",
    "gentle",
    "glossy",
    "happy",
    "hardy",
    "humble",
    "jolly",
    "keen",
    "lively",
    "lucky",
    "mellow",
    "merry",
    "misty",
    "nimble",
    "noble",
    "plucky",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "rosy",
    "shiny",
    "silent",
    "snappy",
    "spiffy",
    "sturdy",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "witty",
    "zesty",
)
ANIMALS = (
    "badger",
    "beaver",
    "bison",
    "cobra",
    "crane",
    "dingo",
    "dolphin",
    "eagle",
    "falcon",
    "ferret",
    "gecko",
    "heron",
    "ibis",
    "jackal",
    "koala",
    "lemur",
    "lynx",
    "marmot",
    "moose",
    "narwhal",
    "ocelot",
    "otter",
    "panda",
    "puffin",
    "quail",
    "raven",
    "salmon",
    "seal",
    "sunfish",
    "tapir",
    "toucan",
    "urchin",
    "walrus",
    "wombat",
    "yak",
    "zebra",
)

_RUN_NAME = re.compile(r"^[a-z]+-[a-z]+-\d{3}$")
_EXP_NAME = re.compile(r"^(?P<run>.+)-exp(?P<index>\d+)$")


def random_run_name() -> str:
    """``spiffy-sunfish-821``: uniqueness is enforced by the history store, not here."""
    # os.urandom rather than secrets/random: a few milliseconds less on every run
    n = int.from_bytes(os.urandom(8), "big")
    adjective, n = ADJECTIVES[n % len(ADJECTIVES)], n // len(ADJECTIVES)
    animal, n = ANIMALS[n % len(ANIMALS)], n // len(ANIMALS)
    return f"{adjective}-{animal}-{n % 900 + 100}"


#: a run name given with ``--name``: a DNS-1123 label, short enough that ``<run>-exp<N>`` and the
#: run's ConfigMap names stay valid label values (63 characters) for sweeps of up to 10**8 experiments
RUN_NAME_MAX = 40
_GIVEN_NAME = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")


def check_run_name(name: str) -> str | None:
    """What is wrong with ``name`` as a ``--name`` (None: nothing).  Pure: the CLI turns it into a usage error."""
    shown = name if len(name) <= 60 else name[:57] + "..."
    if not name:
        return "--name is empty"
    if len(name) > RUN_NAME_MAX:
        return f"--name {shown!r} is {len(name)} characters long: at most {RUN_NAME_MAX}"
    if not _GIVEN_NAME.match(name):
        return (
            f"--name {shown!r} is not a valid name: lower-case letters, digits and '-', "
            "starting with a letter and ending with a letter or digit"
        )
    if _EXP_NAME.match(name):
        return f"--name {shown!r} ends like an experiment name (-expN): choose another"
    return None


def experiment_name(run: str, index: int) -> str:
    return f"{run}-exp{index}"


def split_experiment(name: str) -> tuple[str, int | None]:
    """``run-exp3`` -> (``run``, 3); a plain run name -> (name, None)."""
    m = _EXP_NAME.match(name)
    if m:
        return m.group("run"), int(m.group("index"))
    return name, None


_SLUG_BAD = re.compile(r"[^a-z0-9-]+")


def kube_name(text: str, *, max_length: int = 63) -> str:
    """A DNS-1123 label made from ``text``.

    Safe text passes unchanged.  Anything else is lower-cased, stripped to
    ``[a-z0-9-]`` and suffixed with 8 hex digits of its hash, so that distinct
    inputs that slug alike still get distinct names.
    """
    if max_length < 10:
        raise ValueError("max_length must leave room for the hash suffix")
    slug = _SLUG_BAD.sub("-", text.lower()).strip("-")
    slug = re.sub(r"-{2,}", "-", slug)
    if slug == text and 0 < len(slug) <= max_length and slug[0].isalpha():
        return slug
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    if not slug or not slug[0].isalpha():
        slug = f"x-{slug}".rstrip("-")
    slug = slug[: max_length - 9].rstrip("-")
    return f"{slug}-{digest}"


def image_repository(project: str) -> str:
    """Image repository for a project folder name: ``runner/<slug>``."""
    return f"runner/{kube_name(project, max_length=40)}"
