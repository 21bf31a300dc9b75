from typing import Any

import pytest

from runner.sweep import typecast


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4.2", 4.2),
        ("42", 42),
        ("-3", -3),
        ("1e-3", 0.001),
        ("1_000", 1000),
        ("[4,2]", [4, 2]),
        ("[4, 'a', [1.5]]", [4, "a", [1.5]]),
        ("(1, 2)", (1, 2)),
        ("{'a': 1}", {"a": 1}),
        ("'a'", "a"),
        ('"x y"', "x y"),
        ("True", True),
        ("False", False),
        ("None", None),
    ],
)
def test_literals_become_values(text: str, value: Any) -> None:
    [got] = typecast([text])
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "text",
    [
        "--lr",
        "-x",
        "abc",
        "1e",
        "",
        " ",
        "true",
        "none",
        "nan",
        "...",
        "a=1",
        "--5",
        "1 2",
        "[1,",
        "0.1.2",
        "__import__('os').system('echo pwned')",
        "open('/etc/passwd')",
        "(lambda: 1)()",
        "[x for x in ()]",
        "9" * 5000,
        "[" * 1000,
    ],
)
def test_anything_else_stays_a_string(text: str) -> None:
    assert typecast([text]) == [text]


def test_argv_as_a_whole() -> None:
    assert typecast(["--lr", "0.1", "--layers", "[64, 32]", "--name", "run1", "--debug"]) == [
        "--lr",
        0.1,
        "--layers",
        [64, 32],
        "--name",
        "run1",
        "--debug",
    ]
    assert typecast([]) == []
