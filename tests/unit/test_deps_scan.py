"""runner.deps.scan: import sites from source, exact results."""

from __future__ import annotations

import json

from runner.deps.scan import RawImport, scan_notebook, scan_source


def test_top_level_guarded_lazy_and_fallbacks() -> None:
    src = b"""from __future__ import annotations
import os, numpy.linalg as la
from google import protobuf, api
from . import sibling
from .pkg import thing
try:
    import simplejson as json
except ImportError:
    import json
try:
    import ujson
except (ValueError, ModuleNotFoundError):
    pass
try:
    import notguarded
except KeyError:
    pass
else:
    import inelse
if True:
    import inif
if __name__ == "__main__":
    import inmain
def f():
    import infunc
class C:
    import inclass
import importlib
mod = importlib.import_module("dyn.mod")
rel = importlib.import_module(".rel", "pkg")
"""
    result = scan_source(src)
    assert result.errors == ()
    assert result.imports == (
        RawImport("os", 2),
        RawImport("numpy.linalg", 2),
        RawImport("google", 3, names=("api", "protobuf")),
        RawImport("simplejson", 7, guarded=True),
        RawImport("json", 9, guarded=True),
        RawImport("ujson", 11, guarded=True),
        RawImport("notguarded", 15),
        RawImport("inelse", 19),
        RawImport("inif", 21, lazy=True),
        RawImport("inmain", 23),
        RawImport("infunc", 25, lazy=True),
        RawImport("inclass", 27, lazy=True),
        RawImport("importlib", 28),
        RawImport("dyn.mod", 29, lazy=True),
    )


def test_python2_file_is_an_error_with_its_line() -> None:
    result = scan_source(b"import os\n\nprint 'x'\n")
    assert result.imports == ()
    assert result.errors == ((0, 3, "Missing parentheses in call to 'print'. Did you mean print(...)?"),)


def test_coding_line_is_honoured_and_bad_bytes_are_an_error() -> None:
    latin = b"# -*- coding: latin-1 -*-\nimport six\nx = '\xe9'\n"
    assert scan_source(latin).imports == (RawImport("six", 2),)
    bad = scan_source(b"import six\nx = '\xe9'\n")
    assert bad.imports == ()
    assert bad.errors[0][1] == 2 and bad.errors[0][2].startswith("cannot decode: 'utf-8' codec")


def test_null_bytes_do_not_crash() -> None:
    result = scan_source(b"import os\x00\n")
    assert result.imports == () and len(result.errors) == 1


def test_notebook_magics_shell_and_cells() -> None:
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "import notcode"},
            {
                "cell_type": "code",
                "source": ["%matplotlib inline\n", "!pip install x\n", "import numpy\n", "out = !ls\n", "numpy?\n"],
            },
            {"cell_type": "code", "source": "%%bash\nimport notpython\n"},
            {"cell_type": "code", "source": "%%time\nimport pandas\n"},
            {"cell_type": "code", "source": "def f(:\n"},
            {"cell_type": "code", "source": "import yaml\n"},
        ]
    }
    result = scan_notebook(json.dumps(nb).encode())
    assert result.imports == (
        RawImport("numpy", 3, cell=2),
        RawImport("pandas", 2, cell=4),
        RawImport("yaml", 1, cell=6),
    )
    assert result.errors == ((5, 1, "invalid syntax"),)


def test_unreadable_notebook_is_an_error() -> None:
    result = scan_notebook(b"{not json")
    assert result.imports == () and result.errors[0][0:2] == (0, 1)
