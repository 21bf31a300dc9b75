"""Sweeps: one command, many experiments.  Pure: data in, data out, no I/O.

Sweeping is opt-in.  With :attr:`Strategy.NONE` the arguments pass literally, so a
script that takes ``--ids "[1,2]"`` still gets that text.  With a sweep strategy an
argument *value* written in one of these forms expands:

==============================  ==============================================
``[a, b, ...]``                 these values (numbers, strings, True/False/None,
                                nested lists/tuples)
``range(stop)``                 as Python's ``range``, integers only
``range(start, stop[, step])``
``uniform(low, high, n)``       n floats drawn uniformly from [low, high]
``loguniform(low, high, n)``    n floats whose log is uniform (0 < low)
``randint(low, high, n)``       n integers from low to high, both included
                                (as :func:`random.randint`)
``choice([a, b, ...], n)``      n values drawn from the list, with replacement
==============================  ==============================================

``n`` may also be written as a keyword (``uniform(0.1, 1, n=4)``).  It is how many
values a distribution contributes to a grid search; random search draws one fresh
value per trial and does not need it.

**Which arguments are sweep values.**  A value is *recognised* by its first
characters: it starts with ``[`` or with one of the names above followed by ``(``
(spaces allowed).  A recognised value must then parse, or it is an error naming the
argument: a typo never silently turns into a literal argument.  A value is the text
after ``=`` in ``--name=VALUE``, or a whole argument that is not an option
(``--lr "[0.1, 0.2]"``).  To pass text that starts with ``[`` literally while
sweeping, write it as a one-item list: ``"['[INFO]']"``.

**Names** (keys of :attr:`Experiment.params`, the columns of ``runner status``): the
option a value belongs to (``--lr`` for both ``--lr=[..]`` and ``--lr [..]``), else
``argN`` where N is the value's index in the script's ``sys.argv`` (1 for the first
argument).  A name used twice gets ``#2``, ``#3`` appended.

**Rendering** (the text the script receives): ints as ``str``, floats as ``repr``
(shortest round-tripping form: ``0.001``, ``1e-05``), strings as they are without
quotes, ``True``/``False``/``None`` as spelled, nested lists/tuples as their Python
``repr`` (so :func:`typecast` in the script turns them back).

**Order and seeds.**  Grid search is the Cartesian product, the first swept argument
varying slowest (like nested loops written in argument order).  Every swept argument
draws from its own generator, seeded from ``(seed, name)``: adding another swept
argument does not change the values drawn for the others, and the same seed always
gives the same experiments.  No seed means seed 0 — runs are reproducible unless a
seed is asked for.

Parsing never evaluates user text: :func:`ast.parse` builds a tree and only literal
nodes and calls of the names above with literal arguments are accepted.
"""

from __future__ import annotations

import ast
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from runner.errors import UsageError, clip

# typecast lives in the in-container runtime (standard library only), so a script's
# runner.typecast is the same function in a container as on this machine: one source of truth
from runner.runtime import typecast as typecast

if TYPE_CHECKING:
    import random

# This module is imported on every `runner run` (Strategy, expand with no sweep), so
# what only sweeping needs is kept cheap to import: patterns are compiled on first use
# (re caches them), `random` is imported when drawing, and the internal records are
# NamedTuples (a frozen dataclass costs ~0.5 ms to define).

#: More experiments than this from one command is almost surely a mistake (and a
#: flood of containers); the message says how many the sweep would have made.
MAX_EXPERIMENTS = 10_000
DEFAULT_SEED = 0
_INT_LIMIT = 10**18  # within 64 bits: len(range(...)) cannot overflow, str() never refuses

FORMS = (
    "[a, b, ...]",
    "range(start, stop[, step])",
    "uniform(low, high, n)",
    "loguniform(low, high, n)",
    "randint(low, high, n)",
    "choice([a, b, ...], n)",
)
_FORMS_HINT = "a sweep value is one of " + ", ".join(FORMS)
_FUNCTIONS = ("range", "uniform", "loguniform", "randint", "choice")
_RECOGNISE = r"\s*(?:\[|(?:" + "|".join(_FUNCTIONS) + r")\s*\()"
# An option is a dash and a letter (so "-1" and "-0.5" are values, not options).
_OPTION = r"--?[A-Za-z_][\w.-]*"
_OPTION_VALUE = r"(--?[A-Za-z_][\w.-]*)=(.*)"

Value: TypeAlias = Any  # a literal: int, float, str, bool, None, or a list/tuple of literals


class Strategy(str, Enum):
    NONE = "none"
    GRID_SEARCH = "grid_search"
    RANDOM_SEARCH = "random_search"


@dataclass(frozen=True)
class Experiment:
    index: int
    #: the script's arguments for this experiment
    args: tuple[str, ...]
    #: swept argument name -> the exact text the script receives (empty without a sweep)
    params: dict[str, str] = field(default_factory=dict)


# -- the parsed forms ------------------------------------------------------------------


class Values(NamedTuple):
    """A list literal or ``range(...)``: a fixed set of values, enumerable by a grid."""

    values: Sequence[Value]  # a list, or a range kept lazy so range(10**9) costs nothing


class Distribution(NamedTuple):
    """``uniform``/``loguniform``/``randint``/``choice``: drawn from, ``n`` times in a grid."""

    kind: str
    n: int | None
    draw: Callable[[random.Random], Value]


Domain: TypeAlias = Values | Distribution


class _Swept(NamedTuple):
    position: int  # index in args
    name: str
    prefix: str  # "--lr=" for the --name=VALUE spelling, else ""
    text: str
    domain: Domain


class _Bad(Exception):
    """A parse problem; becomes part of a UsageError naming the argument."""


def parse_value(text: str) -> Domain | None:
    """The sweep form ``text`` is written in, or None when it is not recognised as one.

    Raises :class:`UsageError` when it looks like a sweep value but is malformed.
    """
    if not is_sweep_value(text):
        return None
    try:
        return _parse(text)
    except _Bad as e:
        raise UsageError(f"{clip(text)} is not a sweep value: {e}", hint=_FORMS_HINT) from None


def is_sweep_value(text: str) -> bool:
    return re.match(_RECOGNISE, text) is not None


def _parse(text: str) -> Domain:
    try:
        body = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise _Bad(f"invalid syntax ({e.msg})") from None
    except (ValueError, RecursionError, MemoryError) as e:  # null bytes, absurd nesting
        raise _Bad(f"cannot parse ({type(e).__name__})") from None
    if isinstance(body, ast.List):
        return Values(_nonempty(_literal(body), "the list"))
    if isinstance(body, ast.Call) and isinstance(body.func, ast.Name) and body.func.id in _FUNCTIONS:
        return _call(body.func.id, body)
    raise _Bad("expected a list or one of " + ", ".join(f"{f}(...)" for f in _FUNCTIONS))


def _literal(node: ast.expr) -> Value:
    """The value of a literal node; anything else (names, calls, operators) is refused."""
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (bool, int, float, str))):
        return _finite(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = node.operand.value if isinstance(node.operand, ast.Constant) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return _finite(-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    raise _Bad(f"{ast.unparse(node)!r} is not a literal (a number, a quoted string, True, False, None or a list)")


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v: Value) -> Value:
    if isinstance(v, float) and not math.isfinite(v):
        raise _Bad(f"{v!r} is not a finite number")
    # hexadecimal literals can spell integers too long to print (str() refuses past
    # 4300 digits) or to count in a range; nobody sweeps over such numbers
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= _INT_LIMIT:
        raise _Bad("an integer that large is not supported (at most 18 digits)")
    return v


def _nonempty(values: list[Value], what: str) -> list[Value]:
    if not values:
        raise _Bad(f"{what} is empty")
    return values


# parameter names of each function; range's are positional only, like Python's
_PARAMS = {
    "uniform": ("low", "high", "n"),
    "loguniform": ("low", "high", "n"),
    "randint": ("low", "high", "n"),
    "choice": ("values", "n"),
}


def _call(name: str, node: ast.Call) -> Domain:
    if name == "range":
        if node.keywords or not 1 <= len(node.args) <= 3:
            raise _Bad("range takes 1 to 3 integers: range(start, stop[, step])")
        ints = [_int(a, f"range's argument {i + 1}") for i, a in enumerate(node.args)]
        if len(ints) == 3 and ints[2] == 0:
            raise _Bad("range's step cannot be zero")
        r = range(*ints)
        if not r:
            raise _Bad(f"{ast.unparse(node)} is empty")
        return Values(r)
    args = _bind(name, node)
    n = _int(args["n"], "n") if "n" in args else None
    if n is not None and n <= 0:
        raise _Bad(f"n must be at least 1, not {n}")
    if name == "choice":
        if not isinstance(args["values"], ast.List):
            raise _Bad("choice takes a list: choice([a, b, ...], n)")
        values = _nonempty(_literal(args["values"]), "choice's list")
        return Distribution(name, n, lambda rng: rng.choice(values))
    if name == "randint":
        ilow, ihigh = _int(args["low"], "low"), _int(args["high"], "high")
        _ordered(ilow, ihigh)
        return Distribution(name, n, lambda rng: rng.randint(ilow, ihigh))
    low, high = _number(args["low"], "low"), _number(args["high"], "high")
    _ordered(low, high)
    if name == "uniform":
        return Distribution(name, n, lambda rng: rng.uniform(low, high))
    if low <= 0:
        raise _Bad(f"loguniform's low must be more than zero, not {low!r}")
    log_low, log_high = math.log(low), math.log(high)
    return Distribution(name, n, lambda rng: math.exp(rng.uniform(log_low, log_high)))


def _bind(name: str, node: ast.Call) -> dict[str, ast.expr]:
    """Positional and keyword arguments matched to ``_PARAMS[name]``; all but ``n`` required."""
    params = _PARAMS[name]
    usage = f"{name}({', '.join(params)})"
    if len(node.args) > len(params) or any(isinstance(a, ast.Starred) for a in node.args):
        raise _Bad(f"too many arguments: {usage}")
    bound = dict(zip(params, node.args))
    for kw in node.keywords:
        if kw.arg is None or kw.arg not in params:
            raise _Bad(f"unexpected argument {kw.arg or '**'!r}: {usage}")
        if kw.arg in bound:
            raise _Bad(f"{kw.arg} given twice: {usage}")
        bound[kw.arg] = kw.value
    missing = [p for p in params if p != "n" and p not in bound]
    if missing:
        raise _Bad(f"missing {', '.join(missing)}: {usage}")
    return bound


def _int(node: ast.expr, what: str) -> int:
    v = _literal(node)
    if not isinstance(v, int) or isinstance(v, bool):
        raise _Bad(f"{what} must be an integer, not {ast.unparse(node)}")
    return v


def _number(node: ast.expr, what: str) -> float:
    v = _literal(node)
    if not _is_number(v):
        raise _Bad(f"{what} must be a number, not {ast.unparse(node)}")
    return float(v)


def _ordered(low: float, high: float) -> None:
    if low >= high:
        raise _Bad(f"low ({low!r}) must be less than high ({high!r})")


# -- rendering --------------------------------------------------------------------------


def render(value: Value) -> str:
    """The text the script receives for ``value``: see the module's docstring."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    # int, bool, None: str is the spelling; lists and tuples: repr quotes their strings,
    # so typecast() in the script gets the same structure back
    return str(value) if not isinstance(value, (list, tuple)) else repr(value)


# -- expansion --------------------------------------------------------------------------


def expand(
    args: Sequence[str],
    *,
    strategy: Strategy = Strategy.NONE,
    trials: int | None = None,
    seed: int | None = None,
) -> list[Experiment]:
    """The experiments ``args`` stand for under ``strategy``, numbered from 0.

    Raises :class:`UsageError` (every malformed argument listed at once) before anything
    is built: malformed sweep values, trials missing or not positive for random search
    or given for another strategy, random search with nothing to sample, or more than
    :data:`MAX_EXPERIMENTS` experiments.
    """
    strategy = Strategy(strategy)
    args = tuple(args)
    if trials is not None and strategy is not Strategy.RANDOM_SEARCH:
        raise UsageError(
            f"--trials applies only to random search, not to {_strategy_name(strategy)}",
            hint="add --strategy random_search",
        )
    if strategy is Strategy.NONE:
        return [Experiment(0, args)]
    if strategy is Strategy.RANDOM_SEARCH:
        if trials is None:
            raise UsageError("random search needs --trials N", hint="for example --strategy random_search --trials 20")
        if isinstance(trials, bool) or trials <= 0:
            raise UsageError(f"--trials must be at least 1, not {trials}")
        if trials > MAX_EXPERIMENTS:
            raise UsageError(f"--trials {trials} is more than the limit of {MAX_EXPERIMENTS:,} experiments")
    swept = _find(args)
    seed = DEFAULT_SEED if seed is None else seed
    if strategy is Strategy.GRID_SEARCH:
        columns = _grid_columns(swept, seed)
        rows: list[tuple[Value, ...]] = list(itertools.product(*columns))
    else:
        if not swept:
            raise UsageError(
                "random search has nothing to sample: no argument is a sweep value",
                hint="write one like --lr 'loguniform(1e-4, 1e-1)' or --bs '[32, 64]'",
            )
        assert trials is not None
        columns = [_draws(s, seed, trials, sample=True) for s in swept]
        rows = list(zip(*columns))
    return [_experiment(i, args, swept, row) for i, row in enumerate(rows)]


def _strategy_name(strategy: Strategy) -> str:
    return "grid search (--sweep)" if strategy is Strategy.GRID_SEARCH else "a run without a sweep"


def _find(args: tuple[str, ...]) -> list[_Swept]:
    """The swept arguments, in order; every malformed one reported in one error."""
    found: list[_Swept] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    pending: str | None = None  # the option a following positional value belongs to
    literal_rest = False  # after "--" every argument is positional
    for i, arg in enumerate(args):
        m = None if literal_rest else re.fullmatch(_OPTION_VALUE, arg, re.S)
        if m:
            name, prefix, text = m.group(1), m.group(1) + "=", m.group(2)
            pending = None
        elif not literal_rest and arg == "--":
            literal_rest, pending = True, None
            continue
        elif not literal_rest and re.fullmatch(_OPTION, arg):
            pending = arg
            continue
        else:
            name, prefix, text = pending or f"arg{i + 1}", "", arg
            pending = None
        if not is_sweep_value(text):
            continue
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}#{seen[name]}"
        try:
            found.append(_Swept(i, name, prefix, text, _parse(text)))
        except _Bad as e:
            problems.append(f"argument {clip(name)[1:-1]}: {clip(text)} is not a sweep value: {str(e)[:200]}")
    if problems:
        raise UsageError(
            "; ".join(problems),
            hint=_FORMS_HINT + "; to pass text starting with '[' as it is, write it as a one-item list: \"['[text]']\"",
        )
    return found


def _rng(seed: int, name: str) -> random.Random:
    import random

    # a generator per argument: other swept arguments do not shift its draws.  A str
    # seed is hashed with SHA-512 by random.seed, so this is stable across processes.
    return random.Random(f"{seed}/{name}")


def _grid_columns(swept: list[_Swept], seed: int) -> list[Sequence[Value]]:
    sizes: list[int] = []
    for s in swept:
        if isinstance(s.domain, Distribution) and s.domain.n is None:
            raise UsageError(
                f"argument {clip(s.name)[1:-1]}: {clip(s.text)} needs n, the number of values for grid search",
                hint=f"like {s.domain.kind}(..., n=5), or use --strategy random_search",
            )
        sizes.append(len(s.domain.values) if isinstance(s.domain, Values) else s.domain.n or 0)
    total = math.prod(sizes)  # before any value is drawn or listed: range(10**9) stays lazy
    if total > MAX_EXPERIMENTS:
        counts = " x ".join(f"{s.name} ({n:,})" for s, n in zip(swept, sizes))
        raise UsageError(f"the sweep makes {total:,} experiments, more than the limit of {MAX_EXPERIMENTS:,}: {counts}")
    return [_draws(s, seed, n, sample=False) for s, n in zip(swept, sizes)]


def _draws(s: _Swept, seed: int, count: int, *, sample: bool) -> Sequence[Value]:
    """``count`` values of ``s``: drawn from a distribution, sampled from a list or range
    (random search), or the list or range itself (grid)."""
    d = s.domain
    if isinstance(d, Values) and not sample:
        return d.values
    rng = _rng(seed, s.name)
    if isinstance(d, Values):
        return [rng.choice(d.values) for _ in range(count)]
    return [d.draw(rng) for _ in range(count)]


def _experiment(index: int, args: tuple[str, ...], swept: list[_Swept], row: tuple[Value, ...]) -> Experiment:
    out = list(args)
    params: dict[str, str] = {}
    for s, value in zip(swept, row):
        text = render(value)
        out[s.position] = s.prefix + text
        params[s.name] = text
    return Experiment(index, tuple(out), params)
