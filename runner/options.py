"""A run's options: what the user gave (flags or API keywords), merged with ``runner.yaml``.

One place decides precedence for the CLI and the Python API alike: a value the user
gave wins, then the file's, then the default (:func:`runner.config.resolve`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.config import (
    CONFIG_NAME,
    Config,
    SweepSettings,
    check_context,
    check_datastore,
    check_namespace,
    check_secret,
    env_items,
    load_config,
    parse_timeout,
    resolve,
    resolve_items,
    sweep_settings,
)
from runner.errors import UsageError
from runner.plan import PlanRequest, check_script
from runner.project import find_root
from runner.resources import Resources, make_resources, parse_env
from runner.sweep import Experiment, Strategy, expand


@dataclass(frozen=True)
class KubeOptions:
    """Where and how a run goes on Kubernetes (None: the current kubeconfig context and its namespace)."""

    context: str | None = None
    namespace: str | None = None
    registry: str | None = None
    secrets: tuple[str, ...] = ()
    timeout: int | None = None
    retries: int = 0
    datastores: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunOptions:
    resources: Resources = field(default_factory=Resources)
    env: dict[str, str] = field(default_factory=dict)
    detach: bool = False
    kube: KubeOptions | None = None  # None: the local Docker target
    sweep: SweepSettings = field(default_factory=lambda: SweepSettings(Strategy.NONE, None, None))
    max_parallel: int | None = None  # None: all experiments at once


@dataclass(frozen=True)
class RunArgs:
    """What the user gave; None (or empty) means "not given", so the config file may decide."""

    local: bool | None = None
    detach: bool | None = None
    cpus: float | None = None
    memory: str | None = None
    gpus: int | None = None
    env: tuple[str, ...] = ()  # KEY=VALUE
    context: str | None = None
    namespace: str | None = None
    registry: str | None = None
    secrets: tuple[str, ...] = ()
    timeout: int | str | None = None
    retries: int | None = None
    datastores: tuple[str, ...] = ()
    sweep: bool = False
    strategy: str | None = None
    trials: int | None = None
    seed: int | None = None
    max_parallel: int | None = None


KUBE_ONLY = ("secrets", "timeout", "retries", "datastores")


#: settings a RUNNER_* environment variable gives when neither a flag nor a keyword does (they win over runner.yaml)
ENV_VARS = {
    "registry": "RUNNER_REGISTRY",
    "context": "RUNNER_CONTEXT",
    "namespace": "RUNNER_NAMESPACE",
    "base_image": "RUNNER_BASE_IMAGE",
}


def from_env(key: str, given: str | None) -> str | None:
    """The value given, else its RUNNER_* environment variable's (the one precedence for the CLI and the API)."""
    return given if given else (os.environ.get(ENV_VARS[key]) or None)


def cluster_options(context: str | None, namespace: str | None) -> KubeOptions | None:
    """The Kubernetes context and namespace to read (flag or keyword, else RUNNER_CONTEXT / RUNNER_NAMESPACE;
    None: the kubeconfig's current ones), checked."""
    context, namespace = from_env("context", context), from_env("namespace", namespace)
    check_namespace(namespace)
    check_context(context)
    return KubeOptions(context=context, namespace=namespace) if context or namespace else None


def resolve_options(given: RunArgs, config: Config) -> RunOptions:
    given = dataclasses.replace(
        given,
        registry=from_env("registry", given.registry),
        context=from_env("context", given.context),
        namespace=from_env("namespace", given.namespace),
    )
    local = given.local if given.local else resolve("target", None, config, "kubernetes") == "local"
    timeout = resolve("timeout", given.timeout, config, None)
    timeout_s = None if timeout is None else parse_timeout(timeout)
    retries = resolve("retries", given.retries, config, 0)
    if timeout_s is not None and timeout_s <= 0:
        raise UsageError("--timeout must be more than zero seconds")
    if retries < 0:
        raise UsageError("--retries cannot be negative")
    max_parallel = resolve("max_parallel", given.max_parallel, config, None)
    if max_parallel is not None and max_parallel < 1:
        raise UsageError("--max-parallel must be 1 or more")
    kube = None
    # names that become Kubernetes objects or paths are checked here, before anything is built
    check_namespace(given.namespace)
    check_context(given.context)
    for ds in given.datastores:
        check_datastore(ds)
    for name in given.secrets:
        check_secret(name)
    if not local:
        kube = KubeOptions(
            context=resolve("context", given.context, config, None),
            namespace=resolve("namespace", given.namespace, config, None),
            registry=resolve("registry", given.registry, config, None),
            secrets=tuple(dict.fromkeys(resolve_items("secret", given.secrets, config))),
            timeout=timeout_s,
            retries=retries,
            datastores=tuple(resolve_items("datastore", given.datastores, config)),
        )
    else:
        used = [f"--{name}" for name in KUBE_ONLY if getattr(given, name)]
        if used:
            raise UsageError(f"{', '.join(used)}: only for the Kubernetes target", hint="leave out --local")
    memory = resolve("memory", given.memory, config, None)
    return RunOptions(
        resources=make_resources(
            cpus=resolve("cpus", given.cpus, config, None),
            memory=None if memory is None else str(memory),
            gpus=resolve("gpus", given.gpus, config, 0),
        ),
        env=parse_env(resolve_items("env", given.env, config)),
        detach=bool(resolve("detach", given.detach, config, False)),
        kube=kube,
        sweep=sweep_settings(
            sweep=given.sweep, strategy=given.strategy, trials=given.trials, seed=given.seed, config=config
        ),
        max_parallel=max_parallel,
    )


def plan_request(
    script: Path,
    args: Sequence[str],
    *,
    base_image: str | None,
    python: str | None,
    requirements: Path | None,
    config_file: Path | None = None,
) -> tuple[PlanRequest, Config]:
    """What to plan, and the settings file that applies (``--config``, else runner.yaml at the project root).

    A value given wins over the file's.
    """
    if config_file is not None:
        config = load_config(config_file, required=True)
    else:
        config = load_config(find_root(check_script(script)) / CONFIG_NAME)
    from_file = config.get("requirements")
    req = PlanRequest(
        script=script,
        args=tuple(args),
        base_image=from_env("base_image", base_image) or config.get("base_image"),
        python=python or config.get("python"),
        requirements=requirements or (Path(from_file) if from_file else None),
    )
    return req, config


def describe_sweep(options: RunOptions) -> dict[str, Any]:
    s = options.sweep
    return {"strategy": s.strategy.value, "trials": s.trials, "seed": s.seed}


def options_doc(opts: RunOptions) -> dict[str, object]:
    """What history keeps of a run's options: resources, the names (not values) of its environment, the sweep."""
    r = opts.resources
    return {
        "resources": {"cpus": r.cpus, "memory": r.memory, "gpus": r.gpus},
        "env": sorted(opts.env),
        "max_parallel": opts.max_parallel,
        "sweep": describe_sweep(opts),
    }


def expand_experiments(args: Sequence[str], opts: RunOptions) -> list[Experiment]:
    """The run's experiments: one with the arguments as given, or one per point of the sweep."""
    s = opts.sweep
    return expand(args, strategy=s.strategy, trials=s.trials, seed=s.seed)


__all__ = ["KubeOptions", "RunArgs", "RunOptions", "cluster_options", "env_items", "from_env", "resolve_options"]
