import subprocess
import sys
from pathlib import Path

import pytest

from runner.config import (
    KEYS,
    STRATEGIES,
    Config,
    SweepSettings,
    load_config,
    parse_timeout,
    resolve,
    resolve_items,
    sweep_settings,
)
from runner.errors import ConfigError, UsageError
from runner.sweep import Strategy

FULL = """\
target: kubernetes
registry: registry.example.com/me
context: kind-dev
namespace: ml-team
base_image: python:3.11-slim
python: .venv/bin/python
requirements: requirements.txt
cpus: 0.5
memory: 4Gi
gpus: 1
env: {WANDB_MODE: offline, SEED: 1}
secret: [wandb-key, s3.creds]
datastore: ["imagenet:2:/data", mnist]
timeout: 1h30m
retries: 0
sweep: true
strategy: random_search
trials: 20
seed: 7
max_parallel: 4
detach: false
"""


def write(tmp_path: Path, text: str) -> Path:
    cfg = tmp_path / "runner.yaml"
    cfg.write_text(text)
    return cfg


def test_every_key_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert set(config.values) == set(KEYS)
    assert config.get("env") == {"WANDB_MODE": "offline", "SEED": 1}
    assert config.get("sweep") is True and config.get("cpus") == 0.5 and config.get("timeout") == "1h30m"


def test_every_problem_is_listed_at_once_naming_key_and_file(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        """\
target: cloud
base-image: img
namespace: ML_Team
cpus: 0
memory: lots
gpus: -1
env: [A=1, "1B=2", C]
secret: [ok, Not_Ok]
datastore: [":v1"]
timeout: soon
retries: 1.5
sweep: "yes"
strategy: bayes
trials: 0
seed: true
max_parallel: null
detach: 1
""",
    )
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert e.value.exit_code == 2
    assert e.value.message == f"{cfg}: " + "; ".join(
        [
            "'target' must be one of local, kubernetes, not 'cloud'",
            "unknown key 'base-image' (did you mean 'base_image'?)",
            "'namespace' 'ML_Team' is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63)",
            "'cpus' must be more than zero, not 0",
            "'memory' 'lots' is not a size (write it like 512M, 2G or 1.5Gi, or a number of bytes)",
            "'gpus' cannot be negative, not -1",
            "'env' items must be KEY=VALUE, not '1B=2', 'C'",
            "'secret' items must be Kubernetes secret names, not 'Not_Ok'",
            "'datastore' items must be NAME[:VERSION][:MOUNTDIR], not ':v1'",
            "'timeout' 'soon' is not a duration",
            "'retries' must be int, not float",
            "'sweep' must be bool, not str",
            "'strategy' must be one of grid_search, random_search, not 'bayes'",
            "'trials' must be more than zero, not 0",
            "'seed' must be int, not bool",
            "'max_parallel' must be int, not null",
            "'detach' must be bool, not int",
        ]
    )
    assert e.value.hint is not None and "max_parallel" in e.value.hint


def test_env_mapping_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "env: {1A: x, B: [1]}\ncpus: .inf\n"))
    assert "'env' has keys that are not variable names: '1A'" in e.value.message
    assert "'cpus' must be a finite number, not inf" in e.value.message
    with pytest.raises(ConfigError, match="'env' values must be text or numbers, not for B"):
        load_config(write(tmp_path, "env: {B: [1]}\n"))


def test_not_a_mapping_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a mapping of settings, got list"):
        load_config(write(tmp_path, "- a\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(write(tmp_path, "a: [\n"))
    assert load_config(write(tmp_path, "# nothing yet\n")).values == {}


def test_a_missing_file_is_no_settings_unless_required(tmp_path: Path) -> None:
    assert load_config(tmp_path / "runner.yaml") == Config()
    with pytest.raises(ConfigError, match=r"config file .*other.yaml not found"):
        load_config(tmp_path / "other.yaml", required=True)


def test_flags_win_then_the_file_then_the_default() -> None:
    config = Config({"gpus": 1, "memory": "2G"})
    assert resolve("gpus", 0, config, 0) == 0  # a flag given as 0 still wins
    assert resolve("gpus", None, config, 0) == 1
    assert resolve("cpus", None, config, 2.0) == 2.0
    assert resolve("memory", "1G", config, None) == "1G"


def test_repeatable_options_are_file_items_then_flags() -> None:
    config = Config({"env": {"A": 1, "B": "x"}, "secret": ["s1"]})
    assert resolve_items("env", ["A=2"], config) == ["A=1", "B=x", "A=2"]
    assert resolve_items("secret", ("s2",), config) == ["s1", "s2"]
    assert resolve_items("datastore", None, config) == []


@pytest.mark.parametrize(
    ("cli", "file", "expected"),
    [
        ({}, {}, SweepSettings(Strategy.NONE, None, None)),
        # a strategy in the file only says how to sweep: it does not turn sweeping on
        ({}, {"strategy": "random_search", "trials": 20}, SweepSettings(Strategy.NONE, None, None)),
        ({"sweep": True}, {}, SweepSettings(Strategy.GRID_SEARCH, None, None)),
        (
            {"sweep": True},
            {"strategy": "random_search", "trials": 20, "seed": 3},
            SweepSettings(Strategy.RANDOM_SEARCH, 20, 3),
        ),
        ({}, {"sweep": True}, SweepSettings(Strategy.GRID_SEARCH, None, None)),
        (
            {"strategy": "random_search", "trials": 5},
            {"trials": 20, "seed": 3},
            SweepSettings(Strategy.RANDOM_SEARCH, 5, 3),
        ),
        (
            {"strategy": "random_search", "seed": 0},
            {"trials": 20, "seed": 3},
            SweepSettings(Strategy.RANDOM_SEARCH, 20, 0),
        ),
        # the file's trials are a default for random search, not an error for a grid
        (
            {"strategy": "grid_search"},
            {"sweep": True, "strategy": "random_search", "trials": 20},
            SweepSettings(Strategy.GRID_SEARCH, None, None),
        ),
        ({"strategy": "none"}, {"sweep": True}, SweepSettings(Strategy.NONE, None, None)),
        # --trials without random search reaches expand(), which refuses it
        ({"sweep": True, "trials": 4}, {}, SweepSettings(Strategy.GRID_SEARCH, 4, None)),
    ],
)
def test_sweep_settings(cli: dict[str, object], file: dict[str, object], expected: SweepSettings) -> None:
    strategy, trials, seed = cli.get("strategy"), cli.get("trials"), cli.get("seed")
    assert isinstance(strategy, str | None) and isinstance(trials, int | None) and isinstance(seed, int | None)
    got = sweep_settings(sweep=bool(cli.get("sweep")), strategy=strategy, trials=trials, seed=seed, config=Config(file))
    assert got == expected


def test_unknown_strategy_on_the_command_line() -> None:
    with pytest.raises(UsageError) as e:
        sweep_settings(sweep=False, strategy="bayes", trials=None, seed=None, config=Config())
    assert str(e.value) == "--strategy 'bayes' is not a strategy (use one of none, grid_search, random_search)"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90),
        ("90", 90),
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1.5h", 5400),
        ("0.5s", 1),
        ("2H", 7200),
    ],
)
def test_timeout(value: int | str, seconds: int) -> None:
    assert parse_timeout(value) == seconds


@pytest.mark.parametrize("value", ["", "h", "1x", "-5", "soon", "1h-5m", 0, -1, "0s", True])
def test_bad_timeout(value: int | str) -> None:
    with pytest.raises(UsageError, match="--timeout"):
        parse_timeout(value)


def test_strategies_are_the_sweep_strategies() -> None:
    assert STRATEGIES == tuple(s.value for s in Strategy if s is not Strategy.NONE)


def test_importing_config_and_sweep_stays_cheap() -> None:
    # both are imported on every `runner run`: yaml only when a file exists, random only
    # to draw, difflib only to suggest a key
    code = "import sys, runner.config, runner.sweep; print(sorted({'yaml', 'random', 'difflib'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
