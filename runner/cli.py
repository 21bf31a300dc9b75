"""The command line.  The only layer that prints, asks the terminal, and exits.

``runner run [OPTIONS] SCRIPT [ARGS]...``: runner's options come before the script;
everything after it is handed to the script untouched (option parsing stops at the
first positional argument).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer

from runner import __version__
from runner.errors import RunnerError, UsageError, clip
from runner.targets.base import WAITING
from runner.timefmt import fmt_span, fmt_time

if TYPE_CHECKING:
    from collections.abc import Generator

    from runner.app import App
    from runner.config import Config
    from runner.events import RunEvent
    from runner.inspection import Inspection
    from runner.model import RunSummary
    from runner.options import KubeOptions, RunOptions
    from runner.plan import Plan, PlanRequest
    from runner.progress import Renderer
    from runner.targets.base import Submission

app = typer.Typer(
    name="runner",
    help="Run a Python script unchanged in a container: locally on Docker (--local) or on Kubernetes.",
    no_args_is_help=True,
    add_completion=True,  # typer's own: --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _app(context: str | None = None, namespace: str | None = None) -> App:
    """The App, reading the Kubernetes context and namespace given (None: the current ones)."""
    from runner.app import App
    from runner.home import Home

    return App(Home.from_env(), cluster=_kube_opts(context, namespace))


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


#: RUNNER_PROGRESS: how builds, pushes and uploads show their progress on stderr
PROGRESS_MODES = ("auto", "tty", "plain", "log", "none")


def _progress_mode() -> str:
    """RUNNER_PROGRESS, checked (a usage error before anything is built); ``auto`` decided here.

    auto: one status line rewritten in place on a terminal, a few plain lines otherwise.
    """
    import os

    value = os.environ.get("RUNNER_PROGRESS", "auto").strip().lower() or "auto"
    if value not in PROGRESS_MODES:
        raise UsageError(f"RUNNER_PROGRESS={clip(value)}: not one of {', '.join(PROGRESS_MODES)}")
    if value == "auto":
        value = "tty" if sys.stderr.isatty() and os.environ.get("TERM") != "dumb" else "plain"
    return value


def _renderer(mode: str) -> Renderer:
    """What shows progress on stderr in ``mode`` (see :func:`_progress_mode`)."""
    import os

    from runner.progress import Mode, Renderer

    try:
        width = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        width = 80
    kind = {"tty": Mode.TTY, "plain": Mode.PLAIN, "log": Mode.PLAIN, "none": Mode.QUIET}[mode]
    return Renderer(sys.stderr, kind, width=width)


def _json(data: Any) -> None:
    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if isinstance(o, Enum):
            return o.value
        if isinstance(o, Path):
            return str(o)
        raise TypeError(type(o).__name__)

    sys.stdout.write(json.dumps(data, indent=2, default=default, ensure_ascii=False) + "\n")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"runner {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print runner's version and exit.")
    ] = False,
) -> None:
    """``--debug`` is read by :func:`main` before parsing; here it only documents itself in --help."""


# -- run, inspect -----------------------------------------------------------------------

ScriptArg = Annotated[Path, typer.Argument(help="The .py or .sh script to run, as you would give it to python.")]
ArgsArg = Annotated[Optional[list[str]], typer.Argument(help="Arguments for the script, passed byte for byte.")]
BaseImageOpt = Annotated[
    Optional[str],
    typer.Option(
        "--base-image", help="Base image (default: python:X.Y-slim for the local X.Y; env RUNNER_BASE_IMAGE)."
    ),
]
PythonOpt = Annotated[
    Optional[str],
    typer.Option("--python", help="Interpreter whose installed packages are pinned (default: python on PATH)."),
]
ContextOpt = Annotated[
    Optional[str],
    typer.Option("--context", help="Kubernetes: kubeconfig context (default: RUNNER_CONTEXT, else current)."),
]
NamespaceOpt = Annotated[
    Optional[str],
    typer.Option("--namespace", "-n", help="Kubernetes: namespace (default: RUNNER_NAMESPACE, else the context's)."),
]
ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", help="Settings file (default: runner.yaml at the project root).")
]
RequirementsOpt = Annotated[
    Optional[Path], typer.Option("--requirements", help="Use this requirements file instead of scanning imports.")
]


def _plan_request(
    script: Path,
    args: list[str] | None,
    base_image: str | None,
    python: str | None,
    requirements: Path | None,
    config_file: Path | None = None,
) -> tuple[PlanRequest, Config]:
    from runner.options import plan_request

    return plan_request(
        script, args or (), base_image=base_image, python=python, requirements=requirements, config_file=config_file
    )


@app.command(context_settings={"allow_interspersed_args": False})
def run(
    script: ScriptArg,
    args: ArgsArg = None,
    local: Annotated[bool, typer.Option("--local", help="Run on the local Docker engine.")] = False,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Return once submitted; do not follow the output.")
    ] = False,
    config_file: ConfigOpt = None,
    base_image: BaseImageOpt = None,
    python: PythonOpt = None,
    requirements: RequirementsOpt = None,
    cpus: Annotated[Optional[float], typer.Option("--cpus", help="CPUs for each experiment.")] = None,
    memory: Annotated[Optional[str], typer.Option("--memory", help="Memory limit, e.g. 512M, 2G, 1.5Gi.")] = None,
    gpus: Annotated[Optional[int], typer.Option("--gpus", help="GPUs for each experiment.")] = None,
    env: Annotated[
        Optional[list[str]], typer.Option("--env", "-e", help="KEY=VALUE for the script's environment.")
    ] = None,
    sweep: Annotated[
        bool, typer.Option("--sweep", help="Grid search: expand [..], range(..), uniform(..) ... values.")
    ] = False,
    strategy: Annotated[Optional[str], typer.Option("--strategy", help="none, grid_search or random_search.")] = None,
    trials: Annotated[Optional[int], typer.Option("--trials", help="Experiments of a random search.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of the sweep's random draws (default 0).")] = None,
    max_parallel: Annotated[
        Optional[int], typer.Option("--max-parallel", help="At most this many experiments at once.")
    ] = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    registry: Annotated[
        Optional[str],
        typer.Option(
            "--registry",
            help="Registry the cluster pulls from, e.g. 127.0.0.1:5000 (Kubernetes; env RUNNER_REGISTRY).",
        ),
    ] = None,
    secret: Annotated[
        Optional[list[str]], typer.Option("--secret", help="Environment from this Kubernetes Secret.")
    ] = None,
    timeout: Annotated[
        Optional[str], typer.Option("--timeout", help="Stop it after 90, 90s, 30m, 1h30m ... (Kubernetes).")
    ] = None,
    retries: Annotated[
        Optional[int], typer.Option("--retries", help="Run it again this many times if it fails (Kubernetes).")
    ] = None,
    datastore: Annotated[
        Optional[list[str]], typer.Option("--datastore", help="Mount NAME[:VERSION][:MOUNTDIR] read-only.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the Kubernetes manifests it would apply; do nothing.")
    ] = False,
    name: Annotated[
        Optional[str], typer.Option("--name", help="Name the run (unique; lower-case letters, digits, '-').")
    ] = None,
) -> None:
    """Build (or reuse) the script's image and run it: on Kubernetes, or with --local on Docker.

    With --sweep or --strategy, argument values like "[32, 64]", "range(1, 4)" or
    "uniform(0.001, 0.1, 4)" expand into one experiment per combination (or per trial).
    """
    from runner.names import check_run_name
    from runner.options import RunArgs, resolve_options

    if name is not None and check_run_name(name):  # a bad name is refused before anything is read or built
        raise UsageError(str(check_run_name(name)), hint="e.g. --name lr-search-2")
    req, config = _plan_request(script, args, base_image, python, requirements, config_file)
    given = RunArgs(
        local=local or None,
        detach=detach or None,
        cpus=cpus,
        memory=memory,
        gpus=gpus,
        env=tuple(env or ()),
        context=context,
        namespace=namespace,
        registry=registry,
        secrets=tuple(secret or ()),
        timeout=timeout,
        retries=retries,
        datastores=tuple(datastore or ()),
        sweep=sweep,
        strategy=strategy,
        trials=trials,
        seed=seed,
        max_parallel=max_parallel,
    )
    opts = resolve_options(given, config)
    if dry_run and opts.kube is None:
        raise UsageError("--dry-run: only for the Kubernetes target", hint="leave out --local")
    a = _app()
    if opts.kube is not None:
        r = opts.resources
        if r.cpus is None and r.memory is None and not r.gpus:
            _err("warning: no --cpus, --memory or --gpus given: each experiment requests 1 CPU and no memory limit")
    if dry_run:
        text, notes = a.dry_run(req, opts)
        for n in notes:
            _err(f"note: {n}")
        sys.stdout.write(text)
        return
    raise typer.Exit(_show_run(a, a.run(req, opts, name=name), opts))


def _show_run(a: App, events: Generator[RunEvent, None, None], opts: RunOptions) -> int:
    """Show what `runner run` does as it happens; the exit code: the script's (with several experiments, the
    first non-zero one), 130 after Ctrl-C.

    Ctrl-C while a line is being shown goes to the run too (its target stops it and waits
    for the end states, whose lines are still shown).
    """
    from inspect import GEN_SUSPENDED, getgeneratorstate

    from runner.events import BuildOutput, BuildWaiting, Built, Detached, Output, Recorded
    from runner.targets.base import Published

    sub: Submission | None = None
    started = False
    several = False
    mode = _progress_mode()
    renderer: Renderer | None = None  # made at the first progress: a cached run has none

    def clear() -> None:
        if renderer is not None:
            renderer.clear()

    def show(event: RunEvent) -> None:
        nonlocal sub, started, several, renderer
        if isinstance(event, Output):
            line = event.line
            if line.stream == WAITING:
                _err(f"waiting    {event.experiment}: {line.text}")
                return
            out = sys.stdout if line.stream == "stdout" else sys.stderr
            name = event.experiment
            text = line.text.replace("\n", f"\n{name} | ") if several else line.text  # may hold several lines
            out.write(f"{name} | {text}\n" if several else text + "\n")
            out.flush()
            return
        if isinstance(event, BuildOutput):  # the whole log is in the run's build log (`runner logs RUN --build`)
            if mode == "log":
                _err(f"  build | {event.line}")
            return
        if isinstance(event, (Recorded, BuildWaiting, Built, Published, Detached)):
            clear()  # a line of its own: the status line goes first
        if isinstance(event, Recorded):
            sub = event.sub
            several = len(sub.experiments) > 1  # say whose line it is
            _show_submission(event.sub, event.where, opts, event.notes)
        elif isinstance(event, BuildWaiting):
            _err("waiting    for another build of this image (another run is building it on this engine)")
        elif isinstance(event, Built):
            _err(f"image      {event.image} ({'built by another run' if event.by_another else 'built'})")
        elif isinstance(event, Published):
            started = True
            if event.note:
                _err(event.note)
        elif isinstance(event, Detached):
            _err(f"submitted  {event.name}: follow with `runner logs {event.name} --follow`")
        else:  # Progress: a build, a push
            if mode == "log" and event.stage == "build":  # its lines are all shown already
                return
            if renderer is None:
                renderer = _renderer(mode)
            renderer.show(event)

    try:
        for event in events:
            show(event)
    except KeyboardInterrupt:
        clear()
        if getgeneratorstate(events) == GEN_SUSPENDED:  # it came while a line was shown: the run hears it too
            try:
                show(events.throw(KeyboardInterrupt))
                for event in events:
                    show(event)
            except KeyboardInterrupt:
                pass
        clear()
        name = sub.run.name if sub else "the run"
        _err(
            f"\nstopped {name} (artifacts so far are kept)" if started else f"interrupted: {name} stopped before it ran"
        )
        return 130
    finally:
        clear()  # before an error's line too
    if sub is None or opts.detach:
        return 0
    return _exit_code(a, sub)


def _show_submission(sub: Submission, where: str, opts: RunOptions, notes: tuple[str, ...] = ()) -> None:
    for notice in sub.plan.notices:
        _err(f"note: {notice}")
    for warning in (*sub.plan.lock.warnings, *sub.python_warnings):
        _err(f"warning: {warning}")
    sensitive = [f for f in sub.plan.files.excluded if f != ".git/"]  # .git/ is always left out: no news
    if sensitive:
        _err(f"note: left out of the image as sensitive: {', '.join(sensitive)}")
    _err(f"run        {sub.run.name}")
    _err(f"script     {' '.join([sub.plan.script, *(_quote(x) for x in sub.plan.args)])}")
    if len(sub.experiments) > 1:
        parallel = f", at most {opts.max_parallel} at once" if opts.max_parallel else ""
        _err(f"sweep      {len(sub.experiments)} experiments ({opts.sweep.strategy.value}{parallel})")
    _err(f"image      {sub.image} ({'cached' if sub.cached else 'building'})")
    _err(f"target     {where}")
    for note in notes:  # what the target did to get ready, one line each (`set up     serviceaccount/runner in NS`)
        _err(note)
    _err(f"resources  {opts.resources.describe()}")


def _exit_code(a: App, sub: Submission) -> int:
    from runner.model import ExpState

    codes = []
    exps, notes = a.outcome(sub)
    for note in notes:
        _err(f"warning: {note}")
    for exp in exps:
        if exp.state.active:  # the follower stopped before the end: never an exit code of 0
            _err(f"{exp.name} is still {exp.state.value}: runner stopped following it ({exp.message or 'no end seen'})")
            codes.append(1)
        elif exp.state is ExpState.STOPPED:
            _err(f"{exp.name} stopped")
            codes.append(130)
        elif exp.state is ExpState.FAILED:
            _err(f"{exp.name} failed: {exp.message}")
            codes.append(exp.exit_code or 1)
        else:
            codes.append(exp.exit_code or 0)
    return next((c for c in codes if c), 0)


def _kube_opts(context: str | None, namespace: str | None) -> KubeOptions | None:
    from runner.options import cluster_options

    return cluster_options(context, namespace)


def _notes(a: App) -> None:
    for n in a.notes:
        _err(f"note: {n}")


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


@app.command(context_settings={"allow_interspersed_args": False})
def inspect(
    script: ScriptArg,
    args: ArgsArg = None,
    base_image: BaseImageOpt = None,
    python: PythonOpt = None,
    requirements: RequirementsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the plan (root, files, imports, pins, Dockerfile, image tag) without building or running anything."""
    req, _ = _plan_request(script, args, base_image, python, requirements)
    result = _app().inspect(req)
    plan, lock = result.plan, result.plan.lock
    if as_json:
        _json(
            {
                "root": plan.root,
                "script": plan.script,
                "args": plan.args,
                "command": plan.command,
                "workdir": plan.container_workdir,
                "closure": plan.closure,
                "notices": plan.notices,
                "files": plan.files.files,
                "excluded": plan.files.excluded,
                "imports": lock.imports,
                "requirements": lock.requirements,
                "lock": lock.text(),
                "lock_origin": lock.origin,
                "warnings": lock.warnings,
                "notes": lock.notes,
                "provenance": [{"line": r.line, "from": [o.text() for o in r.provenance]} for r in lock.requirements],
                "dropped": lock.dropped,
                "base_image": plan.base_image,
                "dockerfile": plan.dockerfile,
                "image": result.image,
                "image_note": result.note,
                "python": _python_doc(result),
                "runtime": _runtime_doc(plan),
            }
        )
        return
    typer.echo(f"project root   {plan.root}")
    typer.echo(f"script         {plan.script}")
    typer.echo(f"command        {' '.join(_quote(c) for c in plan.command)}")
    typer.echo(f"workdir        {plan.container_workdir}")
    for notice in plan.notices:
        typer.echo(f"note: {notice}")
    typer.echo(f"files ({len(plan.files.files)})")
    for f in plan.files.files:
        typer.echo(f"  {f}")
    if plan.files.excluded:
        typer.echo(f"left out as sensitive: {', '.join(plan.files.excluded)}")
    typer.echo(f"imports ({len(lock.imports)})")
    for imp in lock.imports:
        dists = ", ".join(imp.distributions)
        typer.echo(f"  {imp.name:<24} {imp.kind.value:<12} {dists}")
    typer.echo(f"lock ({lock.origin}, {len(lock.requirements)} requirements)")
    for r in lock.requirements:
        why = r.provenance[0].text() if r.provenance else r.source.value
        more = f" (+{len(r.provenance) - 1})" if len(r.provenance) > 1 else ""
        typer.echo(f"  {r.line:<40} {why}{more}")
    for d in lock.dropped:
        typer.echo(f"  dropped {d.what} ({d.at}): {d.reason}")
    for w in lock.warnings:
        typer.echo(f"warning: {w}")
    for n in lock.notes:
        typer.echo(f"note: {n}")
    runtime = _runtime_doc(plan)
    if runtime:
        typer.echo(
            f"runtime        runner's in-container runtime as `runner` ({', '.join(runtime['provides'])}), "
            f"imported at {', '.join(runtime['imported_at'])}"
        )
    check = result.python
    typer.echo(f"python         {check.summary if check else result.python_note}")
    for e in check.errors if check else ():
        typer.echo(f"error: {e}")
    for w in check.warnings if check else ():
        typer.echo(f"warning: {w}")
    typer.echo("Dockerfile")
    for line in plan.dockerfile.splitlines():
        typer.echo(f"  {line}")
    typer.echo(f"image          {result.image or '(unknown)'}")
    if result.note:
        typer.echo(f"note: {result.note}")


def _python_doc(result: Inspection) -> dict[str, Any]:
    c = result.python
    if c is None:
        return {"checked": False, "note": result.python_note, "local": result.plan.lock.python_version}
    return {
        "checked": True,
        "image": c.image,
        "image_python": c.image_python,
        "local": c.local_python,
        "errors": c.errors,
        "warnings": c.warnings,
        "requires_python": dict(result.plan.lock.requires_python),
    }


def _runtime_doc(plan: Plan) -> dict[str, Any] | None:
    """runner's in-container runtime, when the project imports runner (None otherwise)."""
    from runner.deps.model import ImportKind
    from runner.render import RUNTIME_DIR

    sites = [s for i in plan.lock.imports if i.kind is ImportKind.RUNNER for s in i.sites]
    if not sites:
        return None
    return {
        "path": f"{RUNTIME_DIR}/runner",
        "provides": ["typecast", "run_name", "experiment_name", "params"],
        "imported_at": [f"{s.file}:{s.line}" for s in sites],
    }


# -- logs, status, history, stop, artifacts ---------------------------------------------


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="A run (all its experiments) or one experiment, RUN-expN.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until it ends.")] = False,
    tail: Annotated[Optional[int], typer.Option("--tail", help="Only the last N lines of each experiment.")] = None,
    build: Annotated[bool, typer.Option("--build", help="Only the image build log.")] = False,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Print an experiment's output: `[stdout] [timestamp] text`, after the build log if the run built."""
    if tail is not None and tail < 0:
        raise UsageError("--tail must be zero or more")
    try:
        for line in _app(context, namespace).logs(name, build=build, tail=tail, follow=follow):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    if len(rows) > PLAIN_TABLE_ROWS:
        _plain_table(title, columns, rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        table.add_column(c, overflow="fold", no_wrap=i == 0)
    for r in rows:
        table.add_row(*r)
    # a pipe gets the whole table, not one folded to 80 columns
    Console(width=None if sys.stdout.isatty() else 250).print(table)


#: past this many rows rich's layout costs more than it gives (0.4 s for a 1,000-experiment sweep)
PLAIN_TABLE_ROWS = 200


def _plain_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = [title, "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    sys.stdout.write("\n".join(lines) + "\n")


def _summary_doc(s: RunSummary) -> dict[str, Any]:
    from runner.model import ExpState

    return {
        "run": s.run.name,
        "project": s.run.project,
        "status": s.state.value,
        "target": s.run.target,
        "created_at": s.run.created_at,
        "finished_at": s.finished_at,
        "image": s.run.image,
        "cached": s.run.cached,
        "experiments": len(s.experiments),
        **{st.value: s.count(st) for st in ExpState},
    }


@app.command()
def status(
    name: Annotated[Optional[str], typer.Argument(help="A run or experiment; without it, all active runs.")] = None,
    as_json: JsonOpt = False,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Active runs, or one run's experiments with their commands and states."""
    from runner.model import ExpState

    a = _app(context, namespace)
    if name is None:
        runs = a.status()
        _notes(a)
        if as_json:
            _json([_summary_doc(s) for s in runs])
            return
        if not runs:
            typer.echo("no active runs (`runner history` lists finished ones)")
            return
        cols = [
            "Run",
            "Project",
            "Status",
            "Duration",
            "Experiments",
            "Running",
            "Queued",
            "Completed",
            "Failed",
            "Stopped",
        ]
        _table(
            "Active runs",
            cols,
            [
                [
                    s.run.name,
                    s.run.project,
                    s.state.value,
                    fmt_span(s.run.created_at, s.finished_at),
                    str(len(s.experiments)),
                    str(s.count(ExpState.RUNNING)),
                    str(s.count(ExpState.QUEUED) + s.count(ExpState.BUILDING)),
                    str(s.count(ExpState.COMPLETED)),
                    str(s.count(ExpState.FAILED)),
                    str(s.count(ExpState.STOPPED)),
                ]
                for s in runs
            ],
        )
        return
    s = a.run_summary(name)
    _notes(a)
    if as_json:
        _json(
            {
                **_summary_doc(s),
                "experiment_list": [
                    {
                        "name": e.name,
                        "command": e.command,
                        "params": e.params,
                        "status": e.state.value,
                        "exit_code": e.exit_code,
                        "message": e.message,
                        "started_at": e.started_at,
                        "finished_at": e.finished_at,
                    }
                    for e in s.experiments
                ],
            }
        )
        return
    # a sweep: one column per swept argument (in argument order) instead of the whole command
    params = list(dict.fromkeys(k for e in s.experiments for k in e.params))
    first = params or ["Command"]
    _table(
        f"{s.run.name} ({s.state.value}, {s.run.target}, image {s.run.image})",
        ["Experiment", *first, "Status", "Exit", "Duration", "Message"],
        [
            [
                e.name,
                *([str(e.params.get(p, "")) for p in params] if params else [" ".join(_quote(c) for c in e.command)]),
                e.state.value,
                "-" if e.exit_code is None else str(e.exit_code),
                fmt_span(e.started_at, e.finished_at),
                e.message or "",
            ]
            for e in s.experiments
        ],
    )


@app.command()
def history(
    limit: Annotated[Optional[int], typer.Option("--limit", help="Only the newest N runs.")] = None,
    as_json: JsonOpt = False,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Every run, newest first."""
    from runner.model import ExpState

    a = _app(context, namespace)
    runs = a.history(limit=limit)
    _notes(a)
    if as_json:
        _json([_summary_doc(s) for s in runs])
        return
    _table(
        "History",
        ["Run", "Created At", "Experiments", "Failed", "Stopped", "Completed"],
        [
            [
                s.run.name,
                fmt_time(s.run.created_at),
                str(len(s.experiments)),
                str(s.count(ExpState.FAILED)),
                str(s.count(ExpState.STOPPED)),
                str(s.count(ExpState.COMPLETED)),
            ]
            for s in runs
        ],
    )


@app.command()
def stop(
    name: Annotated[str, typer.Argument(help="A run (all its experiments) or one experiment, RUN-expN.")],
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Stop what is running; its status becomes stopped and artifacts made so far are kept."""
    stopped = _app(context, namespace).stop(name)
    typer.echo(f"stopped {', '.join(stopped)}" if stopped else f"nothing of {name} is running")


@app.command()
def artifacts(
    name: Annotated[str, typer.Argument(help="A run (all its experiments) or one experiment, RUN-expN.")],
    download_dir: Annotated[Path, typer.Option("--download-dir", help="Where to put them.")] = Path("runner_artifacts"),
    as_json: JsonOpt = False,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Download the files each experiment created or changed, as DIR/<run>/<run>-expN/<path>."""
    files = _app(context, namespace).artifacts(name, download_dir)
    if as_json:
        _json({"download_dir": download_dir, "files": files})
        return
    total = sum(len(v) for v in files.values())
    from runner.names import split_experiment

    for exp, names in files.items():
        for f in names:
            typer.echo(str(download_dir / split_experiment(exp)[0] / exp / f))
    typer.echo(f"{total} file(s) in {download_dir}")


@app.command()
def delete(
    name: Annotated[str, typer.Argument(help="A run (all its experiments) or one experiment, RUN-expN.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
    as_json: JsonOpt = False,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Remove a run or experiment: its Jobs, pods and ConfigMaps or containers, its logs and artifacts, its history.

    Images stay: `docker image prune` (local), the registry's own garbage collection (Kubernetes).
    """
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"runner delete {name}: not asking on a non-interactive input", hint="add --yes to delete")
        if not typer.confirm(f"delete {name}: its logs, artifacts and history (and its Kubernetes objects)?", err=True):
            _err("nothing deleted")
            raise typer.Exit(1)
    done = _app(context, namespace).delete(name)
    if as_json:
        _json(done)
        return
    for note in done["notes"]:
        _err(f"warning: {note}")
    what = done["run"] if done["run_deleted"] else ", ".join(done["experiments"])
    typer.echo(f"deleted {what} ({done['target']})")


@app.command()
def repair() -> None:
    """Rebuild a damaged or lost history database (runner.db) from the records kept in RUNNER_HOME/runs/."""
    from runner.home import Home
    from runner.store import repair as repair_history

    home = Home.from_env()
    r = repair_history(home.db, home.runs)
    if r.damaged:
        typer.echo(f"the history database was damaged ({r.damaged}); kept as {r.moved_to}")
    rebuilt = r.from_records + r.from_database + r.from_folders
    typer.echo(
        f"history has {r.kept + rebuilt} run(s): {r.kept} already there, {r.from_records} from their records, "
        f"{r.from_database} read back from the damaged database, {r.from_folders} from their folders only"
    )


@app.command()
def ui(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; any but 127.0.0.1/localhost needs the printed token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free one).")] = 8765,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open the page in a web browser.")] = False,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """A web view of the same history: runs, experiments, live output, artifacts, metric plots (the ui extra)."""
    try:
        from runner.ui import server
    except ModuleNotFoundError as e:  # only runner ui needs the web packages
        raise UsageError(
            f"runner ui needs the ui extra ({e.name} is not installed)", hint="pip install 'runner[ui]'"
        ) from e
    from runner.home import Home

    srv = server.bind(home=Home.from_env(), host=host, port=port, kube=_kube_opts(context, namespace))
    _err(f"runner ui  {srv.url}  (Ctrl-C to stop)")
    if srv.settings.token:
        _err("note: not a loopback address: every request needs the token in that URL")
    if open_browser:
        import webbrowser

        webbrowser.open(srv.url)
    try:
        srv.serve()
    except KeyboardInterrupt:
        pass


# -- datastores (Kubernetes) -------------------------------------------------------------

datastore_app = typer.Typer(
    help="Read-only data sets in the cluster, mounted with `runner run --datastore NAME`.", no_args_is_help=True
)
app.add_typer(datastore_app, name="datastore")


@datastore_app.command("create")
def datastore_create(
    source: Annotated[Path, typer.Option("--source", help="The folder to upload.")],
    name: Annotated[str, typer.Option("--name", help="The datastore's name.")],
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Upload a folder as the next version of a datastore (content already stored is not stored again)."""
    from runner.targets.kubernetes import check_datastore_source

    check_datastore_source(name, source)  # before the cluster is asked anything
    renderer = _renderer(_progress_mode())
    try:
        v, uploaded = _app(context, namespace).kubernetes().datastore_create(name, source, progress=renderer.show)
    finally:
        renderer.clear()
    how = "uploaded" if uploaded else "content already stored, not uploaded again"
    typer.echo(f"datastore {v.name} version {v.version} ({v.files} files, {v.size} bytes, {how})")


@datastore_app.command("list")
def datastore_list(as_json: JsonOpt = False, context: ContextOpt = None, namespace: NamespaceOpt = None) -> None:
    """Every datastore version in the namespace."""
    versions = _app(context, namespace).kubernetes().datastores()
    if as_json:
        _json(versions)
        return
    _table(
        "Datastores",
        ["Name", "Version", "Files", "Bytes", "Created At", "Content"],
        [[v.name, str(v.version), str(v.files), str(v.size), fmt_time(v.created_at), v.digest[:12]] for v in versions],
    )


@datastore_app.command("delete")
def datastore_delete(
    name: Annotated[str, typer.Argument(help="The datastore.")],
    version: Annotated[Optional[int], typer.Option("--version", help="Only this version (default: all).")] = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Delete a datastore or one of its versions (its content goes when no version refers to it)."""
    gone = _app(context, namespace).kubernetes().datastore_delete(name, version)
    typer.echo(f"deleted {name} version(s) {', '.join(str(v.version) for v in gone)}")


# -- entry point ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> NoReturn:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv[: _first_command(argv) + 1]
    try:
        # without standalone mode, typer.Exit(n) comes back as the return value
        rc = app(argv, prog_name="runner", standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.TyperException as e:  # typer's own (vendored click) usage errors: exit 2
        import io

        show, shown = getattr(e, "show", None), io.StringIO()
        show(file=shown) if callable(show) else shown.write(f"runner: error: {e.format_message()}\n")
        _err(_bounded(shown.getvalue().rstrip("\n"), 600))  # click repeats the value it refused: cut it
        sys.exit(e.exit_code)
    except typer.Abort:
        _err("aborted")
        sys.exit(130)
    except RunnerError as e:
        if debug:
            raise
        _err(f"runner: error: {_bounded(str(e))}")
        if e.detail:
            _err(e.detail)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the one place that turns surprises into a line
        if debug:
            raise
        if isinstance(e, OSError) and e.errno in _ENVIRONMENT_ERRNOS:
            # the machine, not runner: a full disk, a read-only folder, no permission
            where = f" ({_bounded(str(e.filename), 200)})" if e.filename else ""
            _err(f"runner: error: {e.strerror or e}{where}")
            sys.exit(1)
        _err(f"runner: internal error: {type(e).__name__}: {_bounded(str(e))} (rerun with --debug for the traceback)")
        sys.exit(1)


#: errors of the machine, not of runner: reported as one line, not as an internal error
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT, errno.EPERM}

#: a message longer than this repeats input it should have cut (the last guard: messages clip what they quote)
MAX_MESSAGE = 2000


def _bounded(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _first_command(argv: list[str]) -> int:
    for i, a in enumerate(argv):
        if not a.startswith("-"):
            return i
    return len(argv)
