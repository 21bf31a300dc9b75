"""Dependency stage: scan imports, map them in the user's interpreter, pin them.

Entry point: :func:`lock_project`.  Steps (each a module):

``closure``   the script's import closure: the local files it can import
``scan``      AST walk of each of those files (every Python file and notebook
              when no closure is given) -> import sites
``scanstore`` the scan and the closure, cached per file (parsed again only when changed)
``interp``    one probe of the user's interpreter -> installed distributions
``resolve``   site -> standard library / project / installed / missing
``pin``       installed closure, pinned ``==`` to the local versions
``declared``  requirements.txt / pyproject / environment.yml / uv.lock / poetry.lock (evidence)
``optional``  installed optional dependencies of the imported distributions
``compose``   imports + declared evidence + optional -> one lock, with provenance
``index``     newest release for a declared line that is not installed
``lock``      the steps above run in order on a cache miss -> one :class:`Lock`
``cache``     the file cache that keeps an unchanged ``runner run`` free of
              subprocesses and parsing
``pycheck``   the base image's Python against the lock's Requires-Python (used by the app,
              once the image's version is known)

Cache layout under ``cache_dir/deps/``: ``lock-<project>.json`` (the last lock of a
(root, script, options) with the key of its inputs and the sys.path stamps it was
made with), ``scan-<script folder>.json`` (per-file imports keyed by absolute path,
size and mtime), ``closure-<script, launch folder>.json`` (the import closure with the
stats, folder mtimes and tested paths it depends on),
``probe-<fingerprint>.json`` (what an interpreter reported), ``index.json`` (index
answers, one day), ``dist-imports.json`` (what each installed distribution's code
imports, keyed by its RECORD's stat).
"""

from runner.deps.lock import lock_project
from runner.deps.model import SHIP_DIR
from runner.deps.scanstore import project_closure

# Only the modules the cached path needs are imported here (lock, scanstore and what they
# import): a cached ``runner run`` must not pay for packaging/ssl/tomllib imports (tens of
# milliseconds).  The others are imported where a cache miss needs them.

__all__ = ["SHIP_DIR", "lock_project", "project_closure"]
