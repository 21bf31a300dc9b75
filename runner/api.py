"""runner from Python: submit runs, follow them, read history.

    import runner
    run = runner.submit("train.py", args=["--lr", "[0.1, 0.01]"], sweep=True, memory="2G", local=True)
    run.wait()
    print(run.status(), run.logs())
    run.artifacts("out/")

The same options as the command line (and the same ``runner.yaml`` defaults: keywords
win over the file), through the same application layer.  A run is submitted in the
background: :meth:`Run.wait` blocks until it ends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.app import App
from runner.errors import UsageError, clip
from runner.home import Home
from runner.model import RunSummary
from runner.options import KubeOptions, RunArgs, cluster_options, plan_request, resolve_options


def _app(cluster: KubeOptions | None = None) -> App:
    return App(Home.from_env(), cluster=cluster)


@dataclass(frozen=True)
class Run:
    """A submitted run, by name; every method asks history afresh."""

    name: str
    kube: KubeOptions | None = None

    def summary(self) -> RunSummary:
        return _app(self.kube).run_summary(self.name)

    def status(self) -> str:
        """``building``, ``queued``, ``running``, ``completed``, ``failed`` or ``stopped``."""
        return self.summary().state.value

    @property
    def experiments(self) -> list[str]:
        return [e.name for e in self.summary().experiments]

    def wait(self, timeout: float | None = None, *, poll: float = 0.5) -> str:
        """Block until every experiment has ended; the run's final status.  TimeoutError after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            summary = self.summary()
            if not summary.active:
                return summary.state.value
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {self.name} still {summary.state.value} after {timeout} s")
            time.sleep(poll)

    def logs(self, *, tail: int | None = None) -> list[str]:
        """Every output line so far, as ``[stdout] [timestamp] text``."""
        return list(_app(self.kube).logs(self.name, tail=tail))

    def artifacts(self, download_dir: str | Path) -> dict[str, list[str]]:
        """Download the files each experiment made to ``DIR/<run>/<run>-expN/<path>``; their names per experiment."""
        return _app(self.kube).artifacts(self.name, Path(download_dir))

    def stop(self) -> list[str]:
        """Stop whatever still runs; the experiments that were stopped."""
        return _app(self.kube).stop(self.name)


def submit(
    script: str | Path,
    args: Sequence[Any] = (),
    *,
    local: bool = False,
    cpus: float | None = None,
    memory: str | int | None = None,
    gpus: int | None = None,
    env: Mapping[str, Any] | Sequence[str] | None = None,
    sweep: bool | str = False,
    trials: int | None = None,
    seed: int | None = None,
    max_parallel: int | None = None,
    datastore: Sequence[str] = (),
    secrets: Sequence[str] = (),
    registry: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    timeout: int | str | None = None,
    retries: int | None = None,
    base_image: str | None = None,
    python: str | None = None,
    requirements: str | Path | None = None,
    config: str | Path | None = None,
) -> Run:
    """Build (or reuse) the script's image and start it in the background, as ``runner run --detach`` does.

    ``sweep``: True for a grid search, or a strategy name (``"grid_search"``,
    ``"random_search"`` with ``trials``).  ``args`` reach the script unchanged, whatever
    their length; values that are not text are converted with ``str()`` (``0.1`` -> ``"0.1"``).
    ``env``: a mapping or ``KEY=VALUE`` strings.  Every value is checked before anything is
    recorded: a bad one raises :class:`runner.errors.UsageError` and leaves no run in history.
    """
    # every value is checked before anything is planned or recorded: a bad one never leaves a broken run in history
    args = _arguments(args)
    _typed("cpus", cpus, (int, float))
    _typed("memory", memory, (str, int))
    _typed("gpus", gpus, (int,))
    for key, number in (("trials", trials), ("seed", seed), ("max_parallel", max_parallel), ("retries", retries)):
        _typed(key, number, (int,))
    _typed("sweep", sweep, (bool, str))
    _typed("timeout", timeout, (int, str))
    for key, value in (
        ("registry", registry),
        ("context", context),
        ("namespace", namespace),
        ("base_image", base_image),
        ("python", python),
    ):
        _typed(key, value, (str,))
    _typed("script", script, (str, Path))
    _typed("requirements", requirements, (str, Path))
    _typed("config", config, (str, Path))
    datastore, secrets = _names("datastore", datastore), _names("secrets", secrets)
    env_items = _env_items(env)
    req, cfg = plan_request(
        Path(script),
        args,
        base_image=base_image,
        python=python,
        requirements=Path(requirements) if requirements else None,
        config_file=Path(config) if config is not None else None,
    )
    given = RunArgs(
        local=local or None,
        detach=True,
        cpus=cpus,
        memory=None if memory is None else str(memory),
        gpus=gpus,
        env=tuple(env_items),
        context=context,
        namespace=namespace,
        registry=registry,
        secrets=tuple(secrets),
        timeout=timeout,
        retries=retries,
        datastores=tuple(datastore),
        sweep=sweep is True,
        seed=seed,
        trials=trials,
        strategy=sweep if isinstance(sweep, str) else None,
        max_parallel=max_parallel,
    )
    opts = resolve_options(given, cfg)
    from runner.events import Recorded

    name = ""
    for event in _app(opts.kube).run(req, opts):  # detached: it ends once the run has started
        if isinstance(event, Recorded):
            name = event.sub.run.name
    return Run(name, kube=opts.kube)


def _arguments(args: Any) -> list[str]:
    """Each argument as ``str()`` makes it (as ``submit_script`` of the qsub wrapper did): 0.1 -> "0.1"."""
    if isinstance(args, (str, bytes)):
        raise UsageError("args must be a list of arguments, not one string", hint='e.g. args=["--lr", "0.1"]')
    if not isinstance(args, Iterable):
        raise UsageError(f"args must be a list of arguments, not {type(args).__name__}")
    return [os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args]


def _typed(key: str, value: Any, types: tuple[type, ...]) -> None:
    # bool is an int to Python, but gpus=True is a mistake, not 1
    if value is None or (isinstance(value, types) and (bool in types or not isinstance(value, bool))):
        return
    wanted = " or ".join(
        {str: "text", int: "a whole number", float: "a number", bool: "True/False", Path: "a path"}[t] for t in types
    )
    raise UsageError(f"{key} must be {wanted}, not {type(value).__name__} {clip(repr(value))}")


def _names(key: str, value: Any) -> tuple[str, ...]:
    """A list of names; one name alone is a list of one."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{key} must be a list of names (text)", hint=f'e.g. {key}=["name"]')
    return tuple(value)


def _env_items(env: Any) -> list[str]:
    if env is None:
        return []
    if isinstance(env, Mapping):
        bad = [k for k in env if not isinstance(k, str)]
        if bad:
            raise UsageError(f"env keys must be text, not {clip(repr(bad[0]))}")
        return [f"{k}={v}" for k, v in env.items()]
    if isinstance(env, str) or not isinstance(env, Iterable) or not all(isinstance(v, str) for v in env):
        raise UsageError("env must be a mapping or a list of KEY=VALUE strings", hint='e.g. env={"SEED": "1"}')
    return list(env)


def runs(*, limit: int | None = None, context: str | None = None, namespace: str | None = None) -> list[Run]:
    """History, newest first."""
    kube = cluster_options(context, namespace)
    return [Run(s.run.name, kube=kube) for s in _app(kube).history(limit=limit)]
