"""--name validation and the data pod's image choice: pure parts, exact results."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runner.names import RUN_NAME_MAX, check_run_name
from runner.targets.kubernetes import objects as kube


@pytest.mark.parametrize("name", ["a", "lr-search-2", "x" * RUN_NAME_MAX, "spiffy-sunfish-821"])
def test_good_names_pass(name: str) -> None:
    assert check_run_name(name) is None


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "empty"),
        ("Upper", "not a valid name"),
        ("1abc", "not a valid name"),
        ("abc-", "not a valid name"),
        ("a_b", "not a valid name"),
        ("a.b", "not a valid name"),
        ("x" * (RUN_NAME_MAX + 1), "at most 40"),
        ("sweep-exp3", "experiment name"),
    ],
)
def test_bad_names_say_why_in_one_line(name: str, says: str) -> None:
    problem = check_run_name(name)
    assert problem is not None and says in problem and "\n" not in problem


def _cm(image: str | None, created: float, *, launched: bool = True) -> dict[str, Any]:
    doc = {"name": f"r{created}", "image": image, "created_at": created, "launched": launched}
    return {"metadata": {"name": f"runner-run-r{created}"}, "data": {"run.json": json.dumps(doc)}}


def test_newest_run_image_is_the_newest_launched_one() -> None:
    cms = [
        _cm("reg/runner/a@sha256:1", 10),
        _cm("reg/runner/b@sha256:2", 30),
        _cm(None, 40),
        _cm("reg/runner/c@sha256:3", 50, launched=False),
        _cm("reg/runner/d@sha256:4", 20),
    ]
    assert kube.newest_run_image(cms) == "reg/runner/b@sha256:2"


def test_no_run_no_image() -> None:
    assert kube.newest_run_image([]) is None
    assert kube.newest_run_image([{"metadata": {"name": "x"}, "data": {"run.json": "not json"}}]) is None


def test_without_experiments_takes_them_out_of_a_part_and_its_keys() -> None:
    part = [{"name": "r-exp0", "index": 0}, {"name": "r-exp1", "index": 1}]
    cm = {
        "metadata": {"name": "runner-run-r"},
        "data": {
            "run.json": json.dumps({"name": "r"}),
            "part.json": json.dumps(part),
            "r-exp0.json": "{}",
            "r-exp1.json": "{}",
            "r-exp1.stop": "1",
        },
    }
    patch = kube.without_experiments(cm, {"r-exp1"})
    assert patch == {"part.json": json.dumps([part[0]], sort_keys=True), "r-exp1.json": None, "r-exp1.stop": None}
    assert kube.without_experiments(cm, {"r-exp7"}) == {"part.json": json.dumps(part, sort_keys=True)}


def test_without_experiments_reads_records_from_before_parts() -> None:
    doc = {"name": "r", "experiments": [{"name": "r-exp0"}, {"name": "r-exp1"}]}
    cm = {"metadata": {"name": "runner-run-r"}, "data": {"run.json": json.dumps(doc), "r-exp0.json": "{}"}}
    patch = kube.without_experiments(cm, {"r-exp0"})
    assert json.loads(str(patch["run.json"]))["experiments"] == [{"name": "r-exp1"}]
    assert patch["r-exp0.json"] is None
    # what is left still reads as the run's record
    rest = {**cm["data"], **{k: v for k, v in patch.items() if v is not None}}
    rest = {k: v for k, v in rest.items() if patch.get(k, "") is not None}
    record = kube.read_run_record([{"metadata": cm["metadata"], "data": rest}])
    assert record is not None and [e["name"] for e in record[0]["experiments"]] == ["r-exp1"]
