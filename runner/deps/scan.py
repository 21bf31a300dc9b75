"""Find the import statements of Python files and notebooks (an AST walk, no imports run).

Pure: bytes in, :class:`FileScan` out.  A file that does not parse is reported (file,
line, reason) and the scan of the project goes on.  Classification into standard
library / project / installed happens later (``resolve``); here an import is only
``module`` + where + how it is reached (guarded, lazy).
"""

from __future__ import annotations

import ast
import json
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["FileScan", "RawImport", "RelImport", "PathRef", "scan_source", "scan_notebook", "scan_file_bytes"]

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
class RelImport:
    """``from .mod import a, b`` (``level`` dots): the project's own, followed by the import closure."""

    level: int
    module: str  # "" for ``from . import a``
    names: tuple[str, ...]
    line: int


#: A path the code builds, as (base, relative path, line).  base: "F" = the file's folder
#: (``__file__``-based), "C" = the working directory (a plain relative string), "A" = absolute.
PathRef = tuple[str, str, int]


@dataclass(frozen=True)
class FileScan:
    imports: tuple[RawImport, ...] = ()
    #: one line per problem: "file:line: reason" is built by the caller from these
    errors: tuple[tuple[int, int, str], ...] = ()  # (cell, line, message)
    relative: tuple[RelImport, ...] = ()
    #: folders put on ``sys.path`` (``sys.path.insert/append/extend``, ``+=``, ``site.addsitedir``)
    path_adds: tuple[PathRef, ...] = ()
    #: paths named in the code that leave the file's or the working folder ("../data", Path(__file__).parent / "..")
    paths: tuple[PathRef, ...] = ()


class _Visitor(ast.NodeVisitor):
    def __init__(self, cell: int) -> None:
        self.cell = cell
        self.found: list[RawImport] = []
        self.relative: list[RelImport] = []
        self.paths = _Paths()
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
        # Relative imports are the project's own by definition (kept for the closure only);
        # __future__ is syntax.
        if node.level:
            names = tuple(sorted({a.name for a in node.names if a.name != "*"}))
            self.relative.append(RelImport(level=node.level, module=node.module or "", names=names, line=node.lineno))
            return
        if not node.module or node.module == "__future__":
            return
        names = tuple(sorted({a.name for a in node.names if a.name != "*"}))
        self._add(node.module, node.lineno, names)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.paths.assign(node.targets, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.paths.assign([node.target], node.value)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        added = isinstance(node.op, ast.Add) and _is_sys_path(node.target) and self.paths.add_path_entries(node.value)
        with self.paths.outermost(added):
            self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        self.paths.literal(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        # The whole expression is the path; its parts ("..", a folder) are not paths on their own.
        with self.paths.outermost(self.paths.expression(node)):
            self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        with self.paths.outermost(self.paths.call(node)):
            self._visit_call(node)

    def _visit_call(self, node: ast.Call) -> None:
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
    return FileScan(
        imports=tuple(visitor.found),
        relative=tuple(visitor.relative),
        path_adds=tuple(visitor.paths.adds),
        paths=tuple(visitor.paths.reached),
    )


def _cell_python(lines: list[str]) -> str | None:
    """Python of one notebook cell: IPython magics and shell lines become ``pass`` (line numbers kept).

    ``pass`` rather than a blank line: a branch whose body is only magics still parses.
    """
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].lstrip()[2:].split(None, 1)
        if not magic or magic[0] not in _PYTHON_CELL_MAGICS:
            return None
        lines = ["\n", *lines[1:]]
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(("%", "!")) or stripped.endswith("?") or _is_shell_assignment(stripped):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}pass\n")
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
    relative: list[RelImport] = []
    adds: list[PathRef] = []
    paths: list[PathRef] = []
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
        relative.extend(result.relative)
        adds.extend(result.path_adds)
        paths.extend(result.paths)
    return FileScan(
        imports=tuple(imports),
        errors=tuple(errors),
        relative=tuple(relative),
        path_adds=tuple(adds),
        paths=tuple(paths),
    )


def scan_file_bytes(path: str, data: bytes) -> FileScan:
    return scan_notebook(data) if path.endswith(".ipynb") else scan_source(data)


# --------------------------------------------------------------------------- paths the code builds

# A path value while evaluating: (base, relative POSIX path) -- see PathRef.
_Value = tuple[str, str]
_JOIN = frozenset({"join", "joinpath", "Path", "PurePath", "PosixPath", "PurePosixPath"})
_SAME = frozenset({"abspath", "realpath", "normpath", "resolve", "absolute", "str", "fspath", "expanduser"})
_CWD = frozenset({"getcwd", "cwd"})


def _is_sys_path(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )


def _func_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _up(rel: str) -> str:
    """The folder above ``rel`` (``dirname``/``.parent``), staying relative."""
    if rel in ("", "."):
        return ".."
    if rel == ".." or rel.endswith("/.."):
        return rel + "/.."
    head = posixpath.dirname(rel)
    return head or "."


def _join(left: _Value, right: _Value) -> _Value:
    if right[0] != "C":  # an absolute (or __file__-based, hence absolute) right side wins, as in os.path.join
        return right
    return left[0], posixpath.normpath(posixpath.join(left[1], right[1]))


class _Paths:
    """Evaluates the path expressions scripts use to reach sibling folders.

    Literal strings, ``__file__``, ``os.path.join/dirname/abspath/realpath/normpath``,
    ``os.getcwd()``, ``pathlib.Path(...)`` with ``/``, ``.parent``, ``.parents[N]``,
    ``.resolve()``, ``str()``, and names assigned one of these earlier in the file.
    Anything else is unknown (``None``): never guessed.
    """

    def __init__(self) -> None:
        self.names: dict[str, _Value] = {}
        self.adds: list[PathRef] = []
        self.reached: list[PathRef] = []
        self._inside = 0

    @contextmanager
    def outermost(self, evaluated: bool) -> Iterator[None]:
        """While visiting the parts of an evaluated path expression, record nothing more."""
        self._inside += evaluated
        try:
            yield
        finally:
            self._inside -= evaluated

    def _reach(self, value: _Value | None, line: int) -> bool:
        if value is None:
            return False
        # Only a path that climbs out of its folder and then names something can leave the
        # project ("../data"; a bare ".." is a parent, not a file the script reads); an
        # absolute path never enters an image.
        rel = value[1]
        if self._inside == 0 and value[0] != "A" and rel.startswith("../") and rel.strip("./"):
            ref = (value[0], rel, line)
            if ref not in self.reached:
                self.reached.append(ref)
        return True

    def literal(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and len(node.value) < 4096:
            self._reach(self.eval(node), node.lineno)

    def expression(self, node: ast.expr) -> bool:
        return self._reach(self.eval(node), node.lineno)

    def assign(self, targets: list[ast.expr], value: ast.expr) -> None:
        result = self.eval(value)
        for target in targets:
            if isinstance(target, ast.Name):
                if result is None:
                    self.names.pop(target.id, None)
                else:
                    self.names[target.id] = result

    def call(self, node: ast.Call) -> bool:
        """Record a ``sys.path`` addition or a path this call builds; True if it was one."""
        func = node.func
        name = _func_name(func)
        if isinstance(func, ast.Attribute) and _is_sys_path(func.value):
            if name == "insert" and len(node.args) == 2:
                return self._add(node.args[1])
            if name == "append" and len(node.args) == 1:
                return self._add(node.args[0])
            if name == "extend" and len(node.args) == 1:
                return self.add_path_entries(node.args[0])
            return False
        if name == "addsitedir" and node.args:
            return self._add(node.args[0])
        return self.expression(node)

    def add_path_entries(self, node: ast.expr) -> bool:
        found = False
        if isinstance(node, (ast.List, ast.Tuple)):
            for element in node.elts:
                found = self._add(element) or found
        return found

    def _add(self, node: ast.expr) -> bool:
        value = self.eval(node)
        if value is None:
            return False
        self.adds.append((value[0], value[1], node.lineno))
        return True

    def eval(self, node: ast.expr, depth: int = 0) -> _Value | None:
        if depth > 20:
            return None
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, str) or "\0" in node.value or "\n" in node.value:
                return None
            text = node.value.replace("\\", "/") if node.value.startswith("..\\") else node.value
            if text.startswith("/"):
                return "A", posixpath.normpath(text)
            return "C", posixpath.normpath(text) if text else "."
        if isinstance(node, ast.Name):
            if node.id == "__file__":
                return "F", "__file__"
            return self.names.get(node.id)
        if isinstance(node, ast.BinOp):
            left, right = self.eval(node.left, depth + 1), self.eval(node.right, depth + 1)
            if left is None or right is None:
                return None
            if isinstance(node.op, ast.Div):
                return _join(left, right)
            # HERE + "/shared": string concatenation of a folder and a separator-led literal
            raw = node.right.value if isinstance(node.right, ast.Constant) else None
            if isinstance(node.op, ast.Add) and isinstance(raw, str) and raw.startswith("/"):
                return left[0], posixpath.normpath(left[1] + raw)
            return None
        if isinstance(node, ast.Attribute):
            if node.attr == "parent":
                inner = self.eval(node.value, depth + 1)
                return None if inner is None else (inner[0], _up(inner[1]))
            return None
        if isinstance(node, ast.Subscript):
            # Path(__file__).parents[N]
            if isinstance(node.value, ast.Attribute) and node.value.attr == "parents":
                index = node.slice
                if isinstance(index, ast.Constant) and isinstance(index.value, int) and 0 <= index.value < 32:
                    inner = self.eval(node.value.value, depth + 1)
                    if inner is None:
                        return None
                    rel = inner[1]
                    for _ in range(index.value + 1):
                        rel = _up(rel)
                    return inner[0], rel
            return None
        if isinstance(node, ast.Call):
            return self._eval_call(node, depth)
        return None

    def _eval_call(self, node: ast.Call, depth: int) -> _Value | None:
        func = node.func
        name = _func_name(func)
        if node.keywords:
            return None
        if name in _CWD and not node.args:
            return "C", "."
        # method calls on a path value: p.resolve(), p.joinpath("x"), p.absolute()
        receiver: _Value | None = None
        if isinstance(func, ast.Attribute) and name in ("resolve", "absolute", "joinpath", "expanduser"):
            receiver = self.eval(func.value, depth + 1)
            if receiver is not None:
                if name != "joinpath":
                    return receiver if not node.args or name == "resolve" else None
                return self._join_all([receiver], node.args, depth)
        if name in _JOIN:
            return self._join_all([], node.args, depth) if node.args else ("C", ".")
        if name == "dirname" and len(node.args) == 1:
            inner = self.eval(node.args[0], depth + 1)
            return None if inner is None else (inner[0], _up(inner[1]))
        if name in _SAME and len(node.args) == 1:
            return self.eval(node.args[0], depth + 1)
        return None

    def _join_all(self, start: list[_Value], args: list[ast.expr], depth: int) -> _Value | None:
        parts = list(start)
        for arg in args:
            value = self.eval(arg, depth + 1)
            if value is None:
                return None
            parts.append(value)
        if not parts:
            return None
        result = parts[0]
        for part in parts[1:]:
            result = _join(result, part)
        return result
