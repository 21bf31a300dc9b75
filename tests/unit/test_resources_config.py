from pathlib import Path

import pytest

from runner.config import load_config
from runner.errors import ConfigError, UsageError
from runner.resources import make_resources, parse_env, parse_memory


@pytest.mark.parametrize(
    ("text", "spelled", "value"),
    [
        ("2G", "2G", 2_000_000_000),
        ("512Mi", "512Mi", 512 * 2**20),
        ("1.5gi", "1.5Gi", int(1.5 * 2**30)),
        ("8388608", "8388608", 8 * 2**20),
        ("64mb", "64M", 64_000_000),
    ],
)
def test_memory(text: str, spelled: str, value: int) -> None:
    assert parse_memory(text) == (spelled, value)


@pytest.mark.parametrize("text", ["", "G", "-1G", "2X", "two", "100", "1", "3Mi", "2Pi", "9" * 100])
def test_bad_memory_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_memory(text)
    assert e.value.exit_code == 2


def test_resources_and_env() -> None:
    r = make_resources(cpus=0.5, memory="1G", gpus=1)
    assert r.describe() == "cpus=0.5 memory=1G gpus=1"
    assert make_resources(cpus=None, memory=None, gpus=0).describe() == "cpus=- memory=- gpus=0"
    with pytest.raises(UsageError):
        make_resources(cpus=0, memory=None, gpus=0)
    assert parse_env(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(UsageError):
        parse_env(["1A=2"])


def test_config_lists_every_problem_at_once(tmp_path: Path) -> None:
    cfg = tmp_path / "runner.yaml"
    cfg.write_text("base_image: img\ncpus: many\ncolour: blue\ngpus: true\n")
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    msg = str(e.value)
    assert str(cfg) in msg
    assert "'cpus' must be int or float, not str" in msg
    assert "unknown key 'colour'" in msg
    assert "'gpus' must be int, not bool" in msg


def test_config_values(tmp_path: Path) -> None:
    cfg = tmp_path / "runner.yaml"
    cfg.write_text("base_image: img:1\nenv: {A: 1}\n")
    assert load_config(cfg).values == {"base_image": "img:1", "env": {"A": 1}}
    assert load_config(tmp_path / "missing.yaml").values == {}
