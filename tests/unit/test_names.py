import re

import pytest

from runner.names import experiment_name, kube_name, random_run_name, split_experiment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spiffy-sunfish-821-exp0", "spiffy-sunfish-821-exp0"),  # already safe: unchanged
        ("abc", "abc"),
        ("My_Project", "my-project-" + "298c756a"),
        ("my-project", "my-project"),
        ("9lives", "x-9lives-"),  # must start with a letter; hash appended (prefix checked below)
        ("", "x-"),
        ("a" * 70, "a" * 54 + "-"),
    ],
)
def test_kube_name_table(text: str, expected: str) -> None:
    name = kube_name(text)
    assert name.startswith(expected)
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name)
    assert len(name) <= 63


def test_kube_name_distinct_inputs_stay_distinct() -> None:
    assert kube_name("My_Project") != kube_name("my_project") != kube_name("my-project")
    assert kube_name("My_Project") == kube_name("My_Project")


def test_kube_name_exact_hash_suffix() -> None:
    # the suffix is the first 8 hex digits of sha256(text): stable across machines and versions
    assert kube_name("My_Project") == "my-project-298c756a"


def test_run_and_experiment_names() -> None:
    for _ in range(50):
        assert re.fullmatch(r"[a-z]+-[a-z]+-[1-9]\d\d", random_run_name())
    assert experiment_name("spiffy-sunfish-821", 3) == "spiffy-sunfish-821-exp3"
    assert split_experiment("spiffy-sunfish-821-exp12") == ("spiffy-sunfish-821", 12)
    assert split_experiment("spiffy-sunfish-821") == ("spiffy-sunfish-821", None)
