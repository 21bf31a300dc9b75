import math
import random
import time

import pytest

from runner.errors import UsageError, clip
from runner.sweep import MAX_EXPERIMENTS, Experiment, Strategy, expand, is_sweep_value, parse_value, render

GRID = Strategy.GRID_SEARCH
RANDOM = Strategy.RANDOM_SEARCH


def args_of(exps: list[Experiment]) -> list[tuple[str, ...]]:
    return [e.args for e in exps]


# -- no sweep: arguments pass literally ------------------------------------------------


def test_without_a_strategy_arguments_pass_literally() -> None:
    args = ["--ids", "[1,2]", "--lr=range(3)", "uniform(0, 1, 2)", "[oops"]
    assert expand(args) == [Experiment(0, tuple(args), {})]
    assert expand(args, strategy=Strategy.NONE, seed=5) == [Experiment(0, tuple(args), {})]


def test_grid_without_sweep_values_is_one_experiment() -> None:
    assert expand(["--lr", "0.1", "x"], strategy=GRID) == [Experiment(0, ("--lr", "0.1", "x"), {})]


# -- grid search -----------------------------------------------------------------------


def test_grid_is_the_cartesian_product_first_argument_slowest() -> None:
    exps = expand(["--lr", "[0.1, 0.01]", "--bs=range(32, 97, 32)", "--epochs", "3"], strategy=GRID)
    assert args_of(exps) == [
        ("--lr", "0.1", "--bs=32", "--epochs", "3"),
        ("--lr", "0.1", "--bs=64", "--epochs", "3"),
        ("--lr", "0.1", "--bs=96", "--epochs", "3"),
        ("--lr", "0.01", "--bs=32", "--epochs", "3"),
        ("--lr", "0.01", "--bs=64", "--epochs", "3"),
        ("--lr", "0.01", "--bs=96", "--epochs", "3"),
    ]
    assert [e.index for e in exps] == [0, 1, 2, 3, 4, 5]
    assert exps[4].params == {"--lr": "0.01", "--bs": "64"}


def test_strategy_may_be_given_as_text() -> None:
    assert args_of(expand(["[1, 2]"], strategy="grid_search")) == [("1",), ("2",)]  # type: ignore[arg-type]


def test_both_spellings_of_an_option_and_positional_names() -> None:
    exps = expand(["[1, 2]", "--a", "['x']", "--b=['y']", "-c", "range(1)", "--flag", "-5", "['z']"], strategy=GRID)
    assert args_of(exps) == [
        ("1", "--a", "x", "--b=y", "-c", "0", "--flag", "-5", "z"),
        ("2", "--a", "x", "--b=y", "-c", "0", "--flag", "-5", "z"),
    ]
    # "-5" is a value (of --flag), so the last argument is a positional: sys.argv[9]
    assert exps[0].params == {"arg1": "1", "--a": "x", "--b": "y", "-c": "0", "arg9": "z"}


def test_after_double_dash_everything_is_positional() -> None:
    exps = expand(["--", "--x=[1]", "[2]", "--y", "[3]"], strategy=GRID)
    assert exps == [Experiment(0, ("--", "--x=[1]", "2", "--y", "3"), {"arg3": "2", "arg5": "3"})]


def test_a_name_used_twice_is_numbered() -> None:
    exps = expand(["--layer", "[1]", "--layer=[2]", "--layer", "[3]"], strategy=GRID)
    assert exps[0].params == {"--layer": "1", "--layer#2": "2", "--layer#3": "3"}


def test_rendering() -> None:
    exps = expand(
        ["[1, -2, +3, 0.5, -0.25, 1e-3, 1e-5, 2.0, 'a b', \"it's\", True, None, [1, 'x'], (2.5,)]"], strategy=GRID
    )
    assert [e.args[0] for e in exps] == [
        "1",
        "-2",
        "3",
        "0.5",
        "-0.25",
        "0.001",
        "1e-05",
        "2.0",
        "a b",
        "it's",
        "True",
        "None",
        "[1, 'x']",
        "(2.5,)",
    ]
    assert render(0.1 + 0.2) == "0.30000000000000004"  # repr: the exact float, no rounding


def test_a_one_item_list_passes_bracketed_text_while_sweeping() -> None:
    assert args_of(expand(["--tag", "['[INFO]']", "--lr", "[1]"], strategy=GRID)) == [("--tag", "[INFO]", "--lr", "1")]


def test_text_that_is_not_a_sweep_form_is_never_parsed() -> None:
    for text in ["__import__('os').system('true')", "open('x')", "1, 2", "ranges(3)", "(1, 2)", "-[1]"]:
        assert not is_sweep_value(text)
        assert parse_value(text) is None
        assert expand(["--x", text], strategy=GRID) == [Experiment(0, ("--x", text), {})]


def test_grid_draws_n_values_from_a_distribution_seeded() -> None:
    args = ["--lr", "uniform(0.1, 1, 2)", "--bs=[32, 64]"]
    exps = expand(args, strategy=GRID, seed=0)
    assert args_of(exps) == [
        ("--lr", "0.21503872330565302", "--bs=32"),
        ("--lr", "0.21503872330565302", "--bs=64"),
        ("--lr", "0.6679012964994736", "--bs=32"),
        ("--lr", "0.6679012964994736", "--bs=64"),
    ]
    assert expand(args, strategy=GRID) == exps  # no seed is seed 0
    assert expand(args, strategy=GRID, seed=1) != exps


def test_n_may_be_a_keyword() -> None:
    assert expand(["uniform(0.1, 1, n=2)"], strategy=GRID) == expand(["uniform(low=0.1, high=1, n=2)"], strategy=GRID)


def test_grid_needs_n_for_a_distribution() -> None:
    with pytest.raises(UsageError) as e:
        expand(["--lr", "uniform(0, 1)"], strategy=GRID)
    assert e.value.message == "argument --lr: 'uniform(0, 1)' needs n, the number of values for grid search"


def test_too_many_experiments_is_refused_before_anything_is_listed() -> None:
    start = time.monotonic()
    with pytest.raises(UsageError) as e:
        expand(["--a", "range(101)", "--b=range(100)", "--c", "[1]"], strategy=GRID)
    assert e.value.message == (
        "the sweep makes 10,100 experiments, more than the limit of 10,000: --a (101) x --b (100) x --c (1)"
    )
    with pytest.raises(UsageError, match="the sweep makes 1,000,000,000 experiments"):
        expand(["range(10**9)".replace("10**9", "1000000000")], strategy=GRID)
    with pytest.raises(UsageError, match="the sweep makes 100,000 experiments"):
        expand(["uniform(0, 1, 100000)"], strategy=GRID)
    assert time.monotonic() - start < 1
    assert len(expand(["range(100)", "range(100)"], strategy=GRID)) == MAX_EXPERIMENTS


# -- random search ---------------------------------------------------------------------

SEARCH = ["--lr", "loguniform(1e-4, 1e-1)", "--bs=range(16, 80, 16)", "choice(['a', 'b'])", "--k", "randint(1, 6)"]


def test_random_search_is_exact_for_a_seed() -> None:
    exps = expand(SEARCH, strategy=RANDOM, trials=4, seed=3)
    assert args_of(exps) == [
        ("--lr", "0.00038405659029195445", "--bs=48", "a", "--k", "5"),
        ("--lr", "0.021866988842660466", "--bs=16", "a", "--k", "4"),
        ("--lr", "0.0019351811143781012", "--bs=64", "a", "--k", "5"),
        ("--lr", "0.0007898695992833507", "--bs=16", "a", "--k", "2"),
    ]
    assert exps[0].params == {"--lr": "0.00038405659029195445", "--bs": "48", "arg4": "a", "--k": "5"}
    assert expand(SEARCH, strategy=RANDOM, trials=4, seed=3) == exps
    assert args_of(expand(SEARCH, strategy=RANDOM, trials=4, seed=4)) == [
        ("--lr", "0.0015196775863689272", "--bs=16", "a", "--k", "2"),
        ("--lr", "0.004314464519751396", "--bs=16", "b", "--k", "1"),
        ("--lr", "0.0014724228730320897", "--bs=32", "b", "--k", "5"),
        ("--lr", "0.004011596664898301", "--bs=16", "a", "--k", "3"),
    ]


def test_each_argument_has_its_own_stream() -> None:
    # adding or removing another swept argument leaves --lr's draws as they were
    alone = expand(["--lr", "loguniform(1e-4, 1e-1)"], strategy=RANDOM, trials=4, seed=3)
    assert [e.params["--lr"] for e in alone] == [
        e.params["--lr"] for e in expand(SEARCH, strategy=RANDOM, trials=4, seed=3)
    ]
    # and the stream is random.Random("<seed>/<name>"), documented and stable across processes
    rng = random.Random("3/--lr")
    assert alone[0].params["--lr"] == repr(math.exp(rng.uniform(math.log(1e-4), math.log(1e-1))))


def test_random_search_values_stay_in_their_domain() -> None:
    exps = expand(
        ["uniform(-1, 1)", "loguniform(1, 1000)", "randint(1, 3)", "range(0, 10, 5)", "[7]"],
        strategy=RANDOM,
        trials=200,
        seed=9,
    )
    for e in exps:
        u, lu, ri, r, lst = e.args
        assert -1 <= float(u) <= 1 and 1 <= float(lu) <= 1000
        assert ri in {"1", "2", "3"} and r in {"0", "5"} and lst == "7"
    assert {e.args[2] for e in exps} == {"1", "2", "3"}  # randint includes high


def test_random_search_ignores_n_and_samples_huge_ranges() -> None:
    with_n = expand(["uniform(0, 1, 5)"], strategy=RANDOM, trials=3)
    assert with_n == expand(["uniform(0, 1)"], strategy=RANDOM, trials=3)
    exps = expand(["range(1000000000)"], strategy=RANDOM, trials=2, seed=1)
    assert len(exps) == 2 and all(0 <= int(e.args[0]) < 10**9 for e in exps)


@pytest.mark.parametrize(
    ("trials", "message"),
    [
        (None, "random search needs --trials N"),
        (0, "--trials must be at least 1, not 0"),
        (-2, "--trials must be at least 1, not -2"),
        (10_001, "--trials 10001 is more than the limit of 10,000 experiments"),
    ],
)
def test_random_search_trials(trials: int | None, message: str) -> None:
    with pytest.raises(UsageError) as e:
        expand(["[1, 2]"], strategy=RANDOM, trials=trials)
    assert e.value.message == message
    assert e.value.exit_code == 2


def test_trials_only_with_random_search() -> None:
    with pytest.raises(UsageError, match=r"--trials applies only to random search, not to grid search \(--sweep\)"):
        expand(["[1]"], strategy=GRID, trials=3)
    with pytest.raises(UsageError, match="--trials applies only to random search, not to a run without a sweep"):
        expand(["[1]"], trials=3)


def test_random_search_with_nothing_to_sample() -> None:
    with pytest.raises(UsageError) as e:
        expand(["--lr", "0.1"], strategy=RANDOM, trials=3)
    assert e.value.message == "random search has nothing to sample: no argument is a sweep value"


# -- malformed values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[1, 2", "invalid syntax"),
        ("[]", "the list is empty"),
        ("[x]", "'x' is not a literal"),
        ("[1 + 2]", "'1 + 2' is not a literal"),
        ("[__import__('os')]", "\"__import__('os')\" is not a literal"),
        ("[1e999]", "inf is not a finite number"),
        ("[0x" + "f" * 40 + "]", "an integer that large is not supported"),
        ("[1, \x00]", "null bytes"),
        ("[" * 300 + "]" * 300, "invalid syntax"),
        ("[1] + [2]", "expected a list or one of range(...), uniform(...)"),
        ("range()", "range takes 1 to 3 integers"),
        ("range(0)", "range(0) is empty"),
        ("range(5, 1)", "range(5, 1) is empty"),
        ("range(1, 5, 0)", "range's step cannot be zero"),
        ("range(1.5)", "range's argument 1 must be an integer, not 1.5"),
        ("range(True)", "range's argument 1 must be an integer, not True"),
        ("range(stop=3)", "range takes 1 to 3 integers"),
        ("uniform(1, 1, 3)", "low (1.0) must be less than high (1.0)"),
        ("uniform(2, 1, 3)", "low (2.0) must be less than high (1.0)"),
        ("uniform('a', 1, 3)", "low must be a number, not 'a'"),
        ("uniform(0, 1, 0)", "n must be at least 1, not 0"),
        ("uniform(0, 1, 2.5)", "n must be an integer, not 2.5"),
        ("uniform(0)", "missing high: uniform(low, high, n)"),
        ("uniform(0, 1, 2, 3)", "too many arguments: uniform(low, high, n)"),
        ("uniform(0, 1, m=2)", "unexpected argument 'm': uniform(low, high, n)"),
        ("uniform(0, 1, low=2)", "low given twice: uniform(low, high, n)"),
        ("uniform(*[0, 1])", "too many arguments"),
        ("loguniform(0, 1, 3)", "loguniform's low must be more than zero, not 0.0"),
        ("loguniform(-1, 1, 3)", "loguniform's low must be more than zero, not -1.0"),
        ("randint(0, 1.5, 2)", "high must be an integer, not 1.5"),
        ("randint(3, 3, 2)", "low (3) must be less than high (3)"),
        ("choice([], 2)", "choice's list is empty"),
        ("choice(1, 2)", "choice takes a list: choice([a, b, ...], n)"),
        ("choice([1], -1)", "n must be at least 1, not -1"),
    ],
)
def test_malformed_value_is_an_error_naming_the_argument(text: str, problem: str) -> None:
    for strategy, trials in [(GRID, None), (RANDOM, 2)]:
        with pytest.raises(UsageError) as e:
            expand(["--lr", text, "--bs", "[1]"], strategy=strategy, trials=trials)
        assert e.value.message.startswith(f"argument --lr: {clip(text)} is not a sweep value: ")
        assert problem in e.value.message
        assert e.value.hint and "range(start, stop[, step])" in e.value.hint and "['[text]']" in e.value.hint
        assert e.value.exit_code == 2


def test_every_malformed_argument_is_listed_at_once() -> None:
    with pytest.raises(UsageError) as e:
        expand(["--lr=[0.1,", "[]", "--ok", "[1]", "--k", "randint(2, 1, 3)"], strategy=GRID)
    assert e.value.message == (
        "argument --lr: '[0.1,' is not a sweep value: invalid syntax ('[' was never closed); "
        "argument arg2: '[]' is not a sweep value: the list is empty; "
        "argument --k: 'randint(2, 1, 3)' is not a sweep value: low (2) must be less than high (1)"
    )


def test_parse_value_raises_for_a_recognised_but_malformed_value() -> None:
    with pytest.raises(UsageError, match=r"^'\[1,' is not a sweep value: invalid syntax"):
        parse_value("[1,")
    assert parse_value(" [1, 2]") is not None  # leading spaces allowed
