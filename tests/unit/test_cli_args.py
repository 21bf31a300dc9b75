"""The command line hands everything after the script to it untouched."""

import pytest
import typer
import typer.main

from runner.cli import app

TRICKY = ["--flag=value", "-x", "--", "", "a b", "'single'", '"double"', "ünïcödé ☃", "--local", "-h", "$HOME"]


def parse_run(argv: list[str]) -> dict[str, object]:
    root = typer.main.get_command(app)
    ctx = root.make_context("runner", ["run", *argv])
    cmd = root.get_command(ctx, "run")  # type: ignore[attr-defined]
    return dict(cmd.make_context("run", list(argv), parent=ctx).params)


def test_args_after_script_are_passed_byte_for_byte() -> None:
    params = parse_run(["--local", "--cpus", "2", "train.py", *TRICKY])
    assert list(params["args"]) == TRICKY  # type: ignore[call-overload]
    assert params["local"] is True and params["cpus"] == 2.0
    assert str(params["script"]) == "train.py"


def test_options_after_the_script_belong_to_the_script() -> None:
    params = parse_run(["train.py", "--local"])
    assert params["local"] is False and list(params["args"]) == ["--local"]  # type: ignore[call-overload]


def test_unknown_runner_option_before_script_is_a_usage_error() -> None:
    with pytest.raises(typer.TyperException) as e:
        parse_run(["--locl", "train.py"])
    assert e.value.exit_code == 2


def test_large_tables_are_plain_and_aligned(capsys: pytest.CaptureFixture[str]) -> None:
    from runner.cli import PLAIN_TABLE_ROWS, _table

    rows = [[f"r-exp{i}", str(i), "queued"] for i in range(PLAIN_TABLE_ROWS + 1)]
    _table("sweep", ["Experiment", "--x", "Status"], rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "sweep"
    assert lines[1] == "Experiment  --x  Status"
    assert lines[2] == "r-exp0      0    queued"
    assert lines[-1] == f"{'r-exp' + str(PLAIN_TABLE_ROWS):<10}  {PLAIN_TABLE_ROWS:<3}  queued"
    assert len(lines) == PLAIN_TABLE_ROWS + 3
