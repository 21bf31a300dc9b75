"""Generate a project tree of N Python files for bench_deps.py (deterministic for a seed).

The tree has packages with absolute and relative imports, standard-library imports,
guarded fallbacks, imports of the bench environment's distributions (under their
import names: cv2, PIL, sklearn...), a notebook, a ``datasets/`` data folder, a
``wandb/`` run folder, a project-local ``.venv/`` full of code that is not the
project's, and optionally two Python 2 files.  It returns the exact expected sets.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

# import statement -> distribution (names as normalised in the lock)
THIRD_PARTY = {
    "import cv2": "opencv-python",
    "from PIL import Image": "pillow",
    "import yaml": "pyyaml",
    "from sklearn.linear_model import LinearRegression": "scikit-learn",
    "from bs4 import BeautifulSoup": "beautifulsoup4",
    "import attr": "attrs",
    "from dateutil import parser as dateparser": "python-dateutil",
    "import numpy as np": "numpy",
    "from google.protobuf import message": "protobuf",
    "from google.api import annotations_pb2": "googleapis-common-protos",
    "import datasets": "datasets",
    "import torch": "torch",
}
# what each needs, transitively, in the bench environment (tests/fixtures/deps/fakeenv.py)
CLOSURE = {
    "opencv-python": {"numpy"},
    "scikit-learn": {"numpy", "scipy", "joblib", "threadpoolctl"},
    "beautifulsoup4": {"soupsieve"},
    "python-dateutil": {"six"},
    "googleapis-common-protos": {"protobuf"},
    "datasets": {"numpy", "pyyaml"},
    "torch": {"filelock", "typing-extensions"},
}
STDLIB = (
    "import os",
    "import sys",
    "import json",
    "import re",
    "from collections import defaultdict",
    "from pathlib import Path",
    "import itertools",
    "import logging",
    "from typing import Any",
)


@dataclass(frozen=True)
class TreeSpec:
    script: str
    direct: set[str]
    full: set[str]
    files: int


def generate(root: Path, *, files: int = 2000, seed: int = 7, python2_files: bool = True) -> TreeSpec:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    count = 0

    def write(rel: str, text: str) -> None:
        nonlocal count
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        count += 1

    n_pkgs = max(1, files // 40)
    per_pkg = 38
    third = sorted(THIRD_PARTY)
    for p in range(n_pkgs):
        pkg = f"app/pkg{p:03d}"
        write(f"{pkg}/__init__.py", "from . import mod000\n")
        for m in range(per_pkg):
            lines = ["from __future__ import annotations", *rng.sample(STDLIB, 3)]
            if m:
                lines.append(f"from . import mod{rng.randrange(m):03d}")
                lines.append(f"from .mod{rng.randrange(m):03d} import VALUE as other")
            if p:
                lines.append(f"from app.pkg{rng.randrange(p):03d} import mod{rng.randrange(per_pkg):03d}")
            if rng.random() < 0.15:
                stmt = rng.choice(third)
                lines.append(stmt)
                used.add(THIRD_PARTY[stmt])
            if rng.random() < 0.05:
                lines += [
                    "try:",
                    "    import simplejson as json_impl",
                    "except ImportError:",
                    "    import json as json_impl",
                ]
            if rng.random() < 0.05:
                stmt = rng.choice(third)
                lines += ["", "def lazy():", f"    {stmt}", "    return None"]
                used.add(THIRD_PARTY[stmt])
            lines += ["", f"VALUE = {m}", ""]
            write(f"{pkg}/mod{m:03d}.py", "\n".join(lines))
    app_init = "\n".join(f"# {s}" for s in ())  # the app package itself
    write("app/__init__.py", app_init + "\n")
    # every third-party import at least once, from the script
    script_lines = ["import argparse", "from app.pkg000 import mod000", *third, "", "print('ok')", ""]
    used.update(THIRD_PARTY.values())
    write("train.py", "\n".join(script_lines))
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "outputs": [],
                "execution_count": 1,
                "source": ["%matplotlib inline\n", "!ls\n", "import numpy as np\n"],
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    write("notebooks/explore.ipynb", json.dumps(nb))
    for i in range(20):
        write(f"datasets/part-{i:03d}.csv", "x,y\n1,2\n")
    write("wandb/run-20240101_000000-abc/files/config.yaml", "lr: 0.1\n")
    write("wandb/run-20240101_000000-abc/files/wandb-metadata.json", "{}\n")
    # a project-local virtual environment: code that is not the project's
    site = ".venv/lib/python3.11/site-packages"
    write(".venv/pyvenv.cfg", "home = /usr/bin\n")
    write(f"{site}/pip/__init__.py", "from pip._vendor import rich\nimport requests_toolbelt\n")
    write(f"{site}/rich/__init__.py", "import pygments\nimport markdown_it\n")
    for i in range(30):
        write(f"{site}/vendored/m{i:02d}.py", "import six\nimport httpx\nimport colorama\n")
    if python2_files:
        write("legacy/old_a.py", "import urllib2\nprint 'old'\n")
        write("legacy/old_b.py", "import ConfigParser\nexec 'x = 1'\n")
    full = set(used)
    for dist in used:
        full |= CLOSURE.get(dist, set())
    return TreeSpec(script="train.py", direct=used, full=full, files=count)


if __name__ == "__main__":
    import sys

    spec = generate(Path(sys.argv[1]), files=int(sys.argv[2]) if len(sys.argv) > 2 else 2000)
    print(f"{spec.files} files; expected {len(spec.full)} distributions")
