"""Find the import statements of Python files and notebooks (an AST walk, no imports run).

Pure: bytes in, :class:`FileScan` out.  A file that does not parse is reported (file,
line, reason) and the scan of the project goes on.  Classification into standard
library / project / installed happens later (``resolve``); here an import is only
``module`` + where + how it is reached (guarded, lazy).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass

__all__ = ["FileScan", "RawImport", "scan_source", "scan_notebook", "scan_file_bytes"]

# Exceptions whose handler makes an import "guarded": the code expects it may fail.
_GUARD_EXCEPTIONS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
# Cell magics whose body is still Python (the rest -- %%bash, %%html, %%writefile... -- is not).
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})


@dataclass(frozen=True)
class RawImport:
    module: str  # absolute dotted module as written; "" never (relative imports are dropped)
    line: int
    guarded: bool = False
    lazy: bool = False
    names: tuple[str, ...] = ()  # for ``from X import a, b``: ("a", "b") -- may be submodules
    cell: int = 0  # notebook cell (1-based), 0 for a .py file


@dataclass(frozen=True)
class FileScan:
    imports: tuple[RawImport, ...] = ()
    #: one line per problem: "file:line: reason" is built by the caller from these
    errors: tuple[tuple[int, int, str], ...] = ()  # (cell, line, message)


class _Visitor(ast.NodeVisitor):
    def __init__(self, cell: int) -> None:
        self.cell = cell
        self.found: list[RawImport] = []
        self._guard = 0
        self._lazy = 0

    def _add(self, module: str, line: int, names: tuple[str, ...] = ()) -> None:
        self.found.append(
            RawImport(
                module=module,
                line=line,
                guarded=self._guard > 0,
                lazy=self._lazy > 0,
                names=names,
                cell=self.cell,
            )
        )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        # Relative imports are the project's own by definition; __future__ is syntax.
        if node.level or not node.module or node.module == "__future__":
            return
        names = tuple(sorted({a.name for a in node.names if a.name != "*"}))
        self._add(node.module, node.lineno, names)

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("x") / __import__("x") with a literal: a lazy import.
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__") and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value and arg.value[0] != ".":
                self._lazy += 1
                self._add(arg.value, node.lineno)
                self._lazy -= 1
        self.generic_visit(node)

    def _visit_lazy(self, node: ast.AST) -> None:
        self._lazy += 1
        self.generic_visit(node)
        self._lazy -= 1

    visit_FunctionDef = _visit_lazy
    visit_AsyncFunctionDef = _visit_lazy
    visit_Lambda = _visit_lazy
    visit_ClassDef = _visit_lazy  # class bodies run at import, but are "not the module top"

    def visit_If(self, node: ast.If) -> None:
        # ``if __name__ == "__main__":`` runs whenever the script runs: not lazy.
        if _is_main_guard(node.test):
            self.generic_visit(node)
        else:
            self._visit_lazy(node)

    def visit_Try(self, node: ast.Try) -> None:
        guarded = any(_catches_import_error(h.type) for h in node.handlers)
        if guarded:
            self._guard += 1
        for stmt in node.body:
            self.visit(stmt)
        if guarded:
            self._guard -= 1
        # An import inside ``except ImportError:`` is the fallback of a failed import
        # (``import HTMLParser`` after ``html.parser``): it only runs when something
        # else was missing, so it is guarded too.
        for handler in node.handlers:
            fallback = _catches_import_error(handler.type)
            if fallback:
                self._guard += 1
            self.visit(handler)
            if fallback:
                self._guard -= 1
        for stmt in node.orelse + node.finalbody:
            self.visit(stmt)

    def visit_TryStar(self, node: ast.TryStar) -> None:
        self.visit_Try(node)  # type: ignore[arg-type]  # same fields as Try


def _is_main_guard(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, *test.comparators]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main


def _catches_import_error(node: ast.expr | None) -> bool:
    if node is None:  # bare except
        return True
    if isinstance(node, ast.Tuple):
        return any(_catches_import_error(e) for e in node.elts)
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return name in _GUARD_EXCEPTIONS


def _parse_error(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, SyntaxError):
        reason = exc.msg or "invalid syntax"
        if reason.startswith("(unicode error) "):
            reason = f"cannot decode: {reason[16:]}; a '# -*- coding: NAME -*-' line names the encoding"
        return exc.lineno or 1, reason
    if isinstance(exc, UnicodeDecodeError):
        return 1, f"cannot decode: {exc.reason}"
    return 1, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def scan_source(source: bytes | str, *, cell: int = 0) -> FileScan:
    """Imports of one Python source.  ``bytes`` honour a PEP 263 coding line and a BOM."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, UnicodeError, RecursionError, MemoryError) as exc:
        line, reason = _parse_error(exc)
        return FileScan(errors=((cell, line, reason),))
    visitor = _Visitor(cell)
    try:
        visitor.visit(tree)
    except RecursionError:  # pathological nesting: keep what was found
        pass
    return FileScan(imports=tuple(visitor.found))


def _cell_python(lines: list[str]) -> str | None:
    """Python of one notebook cell: IPython magics and shell lines blanked (line numbers kept)."""
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].lstrip()[2:].split(None, 1)
        if not magic or magic[0] not in _PYTHON_CELL_MAGICS:
            return None
        lines = ["\n", *lines[1:]]
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(("%", "!")) or stripped.endswith("?") or _is_shell_assignment(stripped):
            out.append("\n")
        else:
            out.append(line if line.endswith("\n") else line + "\n")
    return "".join(out)


def _is_shell_assignment(stripped: str) -> bool:
    # ``files = !ls`` / ``x = %time f()``
    head, sep, tail = stripped.partition("=")
    return bool(sep) and head.strip().isidentifier() and tail.lstrip().startswith(("!", "%"))


def scan_notebook(data: bytes) -> FileScan:
    """Imports of a Jupyter notebook's code cells (each cell parsed on its own)."""
    try:
        nb = json.loads(data)
        cells = nb["cells"] if isinstance(nb, dict) else None
        if not isinstance(cells, list):
            raise ValueError("no cells")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        return FileScan(errors=((0, 1, f"not a readable notebook ({str(exc).splitlines()[0] if str(exc) else exc})"),))
    imports: list[RawImport] = []
    errors: list[tuple[int, int, str]] = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        lines = source.splitlines(keepends=True) if isinstance(source, str) else [str(s) for s in source]
        python = _cell_python(lines)
        if python is None:
            continue
        result = scan_source(python, cell=number)
        imports.extend(result.imports)
        errors.extend(result.errors)
    return FileScan(imports=tuple(imports), errors=tuple(errors))


def scan_file_bytes(path: str, data: bytes) -> FileScan:
    return scan_notebook(data) if path.endswith(".ipynb") else scan_source(data)
