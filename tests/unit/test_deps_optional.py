"""Installed optional dependencies (issue 9, point 8): what a distribution's own code imports, cached by RECORD."""

from __future__ import annotations

import os
from pathlib import Path

from test_deps_fixtures import fakeenv  # noqa: E402  (same folder)

from runner.deps.interp import parse_probe, run_probe
from runner.deps.optional import code_imports, is_dev_extra, optional_dependencies
from runner.deps.pin import image_marker_env

FakeDist = fakeenv.FakeDist


def test_code_imports_skip_tests_and_vendored_copies_and_are_cached_by_record(tmp_path: Path) -> None:
    dists = (
        FakeDist(
            "lib",
            "1.0",
            ("lib/",),
            code=(
                ("lib/plot.py", "def show():\n    import kiwi\n"),
                ("lib/_vendor/old/__init__.py", "import sixish\n"),
                ("lib/tests/test_plot.py", "import pytest\nimport kiwi2\n"),
            ),
        ),
        FakeDist("kiwi", "1.4", ("kiwi/",)),
        FakeDist("kiwi2", "1.4", ("kiwi2/",)),
        FakeDist("sixish", "1.0", ("sixish/",)),
        FakeDist("pytest", "8.0", ("pytest/",)),
    )
    python = fakeenv.build(tmp_path / "venv", dists)
    env = parse_probe(str(python), run_probe(str(python)))
    lib = env.dists["lib"]
    assert lib.record.endswith("lib-1.0.dist-info/RECORD")
    found, entry = code_imports(lib, None)
    assert found["lib"] == {"kiwi": "lib/plot.py:2"}
    cache: dict[str, object] = {}
    opts, changed = optional_dependencies(env, {"lib": ("lib",)}, frozenset({"lib"}), image_marker_env(env), cache)
    assert [(o.name, o.of, o.detail) for o in opts] == [("kiwi", "lib", "imported at lib/plot.py:2")]
    assert changed and lib.record in cache
    # unchanged RECORD: the cache answers, the files are not read again
    site = fakeenv.site_packages(tmp_path / "venv")
    (site / "lib" / "plot.py").write_text("import kiwi2\n")
    again, same = code_imports(lib, cache[lib.record])  # type: ignore[arg-type]
    assert again == found and same is cache[lib.record]
    # a reinstall rewrites RECORD: read again
    st = os.stat(lib.record)
    os.utime(lib.record, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    fresh, _ = code_imports(lib, cache[lib.record])  # type: ignore[arg-type]
    assert fresh["lib"] == {"kiwi2": "lib/plot.py:1"}


def test_development_extras() -> None:
    assert is_dev_extra("test") and is_dev_extra("test_extra") and is_dev_extra("Docs") and is_dev_extra("dev-tools")
    assert not is_dev_extra("scikit-learn") and not is_dev_extra("pandas") and not is_dev_extra("plotting")
