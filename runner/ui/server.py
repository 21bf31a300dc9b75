"""The web view: a Starlette app over :class:`runner.app.App`, served by uvicorn.

Pages are rendered on the server with Jinja2 (autoescaping on: logs, metric names and
artifact names the script produced are text, never markup); the small script in
``static/ui.js`` polls tables, follows the live output (server-sent events) and draws
metrics with plotly.js, served from the ``plotly`` package (no request leaves the machine).

Bound to a loopback address, the server answers only requests whose Host is that address
(no DNS rebinding); bound to any other, every request must carry the token it printed
(``?token=`` once, then a cookie).  Requests that change something (stop, delete) are POSTs with an
``X-Runner-UI`` header, which a page of another site cannot send.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from runner.app import App
from runner.artifacts import list_artifacts
from runner.errors import NotFoundError, RunnerError, UsageError
from runner.home import Home
from runner.logs import parse_line
from runner.model import ExperimentRecord, RunRecord
from runner.options import KubeOptions
from runner.timefmt import fmt_duration, fmt_time
from runner.ui import views
from runner.ui.metrics import Series, metric_files, read_metrics

HERE = Path(__file__).parent
COOKIE = "runner_ui_token"
#: an experiment page starts with at most this many lines of output (all of it: `runner logs`)
LOG_TAIL = 10_000
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: what a page may load: only this server's own files; plotly.js sets styles inline
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def plotly_js() -> Path:
    """plotly.min.js as the ``plotly`` package ships it (found without importing plotly)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("the web view needs the plotly package", hint="pip install 'runner[ui]'")
    return Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js"


def is_local(host: str) -> bool:
    """An IPv4 loopback address or localhost: no token needed there."""
    if host == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return addr.version == 4 and addr.is_loopback


# -- middleware (plain ASGI, so streams pass through unbuffered) --------------------------


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
            await send(message)

        await self.app(scope, receive, add if scope["type"] == "http" else send)


class TokenGate:
    """Every request carries the token: ``?token=T`` (answered with a redirect that sets a cookie) or the cookie."""

    def __init__(self, app: ASGIApp, *, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _ok(self, given: str | None) -> bool:
        return given is not None and secrets.compare_digest(given.encode("utf-8", "replace"), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        if self._ok(conn.cookies.get(COOKIE)):
            await self.app(scope, receive, send)
            return
        response: Response
        if self._ok(conn.query_params.get("token")):
            rest = [(k, v) for k, v in conn.query_params.multi_items() if k != "token"]
            response = RedirectResponse(conn.url.path + ("?" + urlencode(rest) if rest else ""), status_code=303)
            response.set_cookie(COOKIE, self.token.decode(), httponly=True, samesite="strict")
        else:
            response = PlainTextResponse("403: this server needs its token: open the URL `runner ui` printed\n", 403)
        await response(scope, receive, send)


# -- the application ----------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    home: Home
    kube: KubeOptions | None = None
    token: str | None = None  # None: loopback only, no token
    host: str = "127.0.0.1"


class UI:
    """Route handlers.  Each server thread has its own App (and so its own history connection)."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self._local = threading.local()
        self._download_lock = threading.Lock()
        self._metrics_cache: dict[Path, tuple[tuple[tuple[str, int, int], ...], list[Series]]] = {}
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
        )
        self.env.filters["time"] = fmt_time
        self.env.filters["duration"] = fmt_duration
        self.env.filters["path"] = lambda p: quote(str(p))
        self.env.filters["size"] = _fmt_size

    @property
    def app(self) -> App:
        a: App | None = getattr(self._local, "app", None)
        if a is None:
            a = self._local.app = App(self.s.home, cluster=self.s.kube)
        a.notes.clear()
        return a

    def render(self, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(template).render(**ctx), status_code=status)

    # -- runs ------------------------------------------------------------------------------

    def _runs(self, request: Request) -> tuple[views.RunsQuery, list[views.RunRow], list[str]]:
        a = self.app
        query = views.RunsQuery.parse(dict(request.query_params))
        rows = query.apply(views.run_rows(a.history()))
        return query, rows, list(a.notes)

    def runs_page(self, request: Request) -> Response:
        query, rows, notes = self._runs(request)
        return self.render(
            "runs.html",
            query=query,
            rows=rows,
            notes=notes,
            statuses=views.STATUS_FILTERS,
            targets=views.TARGETS,
            title="Runs",
        )

    def runs_rows(self, request: Request) -> Response:
        _, rows, _ = self._runs(request)
        return self.render("runs_rows.html", rows=rows)

    # -- a run -----------------------------------------------------------------------------

    def _summary(self, name: str) -> tuple[Any, list[str]]:
        a = self.app
        s = a.run_summary(name)
        if s.run.name != name:  # an experiment's name selects its run: not this page's address
            raise NotFoundError(f"{name!r} is an experiment, not a run")
        return s, list(a.notes)

    def run_page(self, request: Request) -> Response:
        s, notes = self._summary(request.path_params["run"])
        params = views.param_columns(s)
        return self.render(
            "run.html",
            s=s,
            params=params,
            rows=views.exp_rows(s, params),
            notes=notes,
            resources=views.resources_text(s.run.options),
            title=s.run.name,
        )

    def run_rows(self, request: Request) -> Response:
        s, _ = self._summary(request.path_params["run"])
        params = views.param_columns(s)
        response = self.render("run_rows.html", rows=views.exp_rows(s, params))
        response.headers["x-run-active"] = "1" if s.active else "0"
        response.headers["x-run-state"] = s.state.value
        return response

    def stop(self, request: Request) -> Response:
        if request.headers.get("x-runner-ui") != "1":
            return PlainTextResponse("403: stop only from runner's own page\n", 403)
        name = request.path_params["name"]
        stopped = self.app.stop(name)
        return JSONResponse({"stopped": stopped})

    def delete(self, request: Request) -> Response:
        if request.headers.get("x-runner-ui") != "1":
            return PlainTextResponse("403: delete only from runner's own page\n", 403)
        try:
            done = self.app.delete(request.path_params["name"])
        except UsageError as e:  # still running: the page says why
            return JSONResponse({"error": e.message, "hint": e.hint or ""}, 409)
        return JSONResponse(done)

    # -- an experiment -----------------------------------------------------------------------

    def _experiment(self, name: str) -> tuple[RunRecord, ExperimentRecord]:
        a = self.app
        run, exps = a.select(name)
        if len(exps) != 1 or exps[0].name != name:
            raise NotFoundError(f"no experiment named {name!r}")
        return run, a.experiment(name)

    def experiment_page(self, request: Request) -> Response:
        name = request.path_params["exp"]
        run, exp = self._experiment(name)
        a = self.app
        build = [ln.removeprefix("[build] ") for ln in a.logs(name, build=True)]
        folder = self._artifacts_dir(run, exp)
        files = []
        if folder is not None:
            files = [(f, (folder / f).stat().st_size) for f in list_artifacts(folder)]
        return self.render(
            "experiment.html",
            run=run,
            e=exp,
            command=views.command_line(exp.command),
            resources=views.resources_text(run.options),
            build=build,
            files=files,
            artifacts_pending=folder is None,
            notes=list(a.notes),
            duration=fmt_duration(views.exp_duration(exp, time.time())),
            title=name,
        )

    def experiment_state(self, request: Request) -> Response:
        _, exp = self._experiment(request.path_params["exp"])
        return JSONResponse(
            {"state": exp.state.value, "active": exp.state.active, "exit_code": exp.exit_code, "message": exp.message}
        )

    def _artifacts_dir(self, run: RunRecord, exp: ExperimentRecord) -> Path | None:
        """Where the experiment's artifacts are on this machine; None while it runs.

        They are copied from the target once, after the experiment ended, into ``$RUNNER_HOME/ui-cache``.
        """
        if exp.state.active:
            return None
        cache = self.s.home.root / "ui-cache"
        done = cache / run.name / f"{exp.name}.done"
        with self._download_lock:
            if not done.exists():
                self.app.artifacts(exp.name, cache)
                done.touch()
        return cache / run.name / exp.name

    def download(self, request: Request) -> Response:
        name, rel = request.path_params["exp"], request.path_params["path"]
        run, exp = self._experiment(name)
        folder = self._artifacts_dir(run, exp)
        # only a name the listing gives, and only if it really lies inside the folder: no ../, no symlinks out
        if folder is None or rel not in set(list_artifacts(folder)):
            raise NotFoundError(f"{name} has no artifact {rel!r}")
        path = (folder / rel).resolve()
        if not path.is_relative_to(folder.resolve()) or not path.is_file():
            raise NotFoundError(f"{name} has no artifact {rel!r}")
        return FileResponse(
            path, filename=Path(rel).name, content_disposition_type="attachment", media_type="application/octet-stream"
        )

    async def log_stream(self, request: Request) -> Response:
        """The experiment's output as server-sent events: what is there, then new lines until it ends."""
        name = request.path_params["exp"]
        await asyncio.to_thread(self._experiment, name)  # unknown name: 404 now, not an empty stream
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        stop = threading.Event()

        def put(item: tuple[str, str]) -> bool:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
                return True
            except RuntimeError:  # the server is shutting down
                return False

        def pump() -> None:
            # its own App: this thread reads history while the server's threads serve other requests
            a = App(self.s.home, cluster=self.s.kube)
            try:
                for line in a.logs(name, tail=LOG_TAIL, follow=True):
                    if stop.is_set():
                        return
                    parsed = parse_line(line)
                    doc = (
                        {"s": parsed.stream, "t": parsed.time, "x": parsed.text}
                        if parsed
                        else {"s": "", "t": "", "x": line}
                    )
                    if not put(("line", json.dumps(doc))):
                        return
                if not stop.is_set():
                    put(("end", a.experiment(name).state.value))
            except RunnerError as e:
                put(("fail", e.message))
            except Exception as e:  # noqa: BLE001 - the page says so rather than waiting forever
                put(("fail", f"{type(e).__name__}: {e}"))
            finally:
                a.store.close()

        # a thread of its own, not one of the server's: following a quiet experiment blocks until it prints
        # or ends (a page closed meanwhile is noticed at its next line)
        threading.Thread(target=pump, name=f"follow-{name}", daemon=True).start()

        async def events() -> AsyncIterator[str]:
            try:
                yield "retry: 3600000\n\n"
                while True:
                    kind, data = await queue.get()
                    if kind == "line":
                        yield f"data: {data}\n\n"
                        continue
                    yield f"event: {kind}\ndata: {json.dumps(data)}\n\n"
                    return
            finally:
                stop.set()

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"cache-control": "no-cache", "x-accel-buffering": "no"}
        )

    # -- metrics ---------------------------------------------------------------------------

    def _metrics_of(self, folder: Path | None) -> list[Series]:
        if folder is None:
            return []
        sig = tuple((rel, p.stat().st_mtime_ns, p.stat().st_size) for rel, p in metric_files(folder))
        hit = self._metrics_cache.get(folder)
        if hit is not None and hit[0] == sig:
            return hit[1]
        series = read_metrics(folder)
        self._metrics_cache[folder] = (sig, series)
        return series

    def run_metrics(self, request: Request) -> Response:
        s, _ = self._summary(request.path_params["run"])
        return JSONResponse(
            _metrics_doc([(e.name, self._metrics_of(self._artifacts_dir(s.run, e))) for e in s.experiments])
        )

    def experiment_metrics(self, request: Request) -> Response:
        run, exp = self._experiment(request.path_params["exp"])
        return JSONResponse(_metrics_doc([(exp.name, self._metrics_of(self._artifacts_dir(run, exp)))]))

    def plotly(self, request: Request) -> Response:
        return FileResponse(plotly_js(), media_type="text/javascript", headers={"cache-control": "max-age=86400"})


def _metrics_doc(per_exp: list[tuple[str, list[Series]]]) -> dict[str, Any]:
    """One entry per metric name, with a series per experiment that has it (experiment order)."""
    metrics: dict[str, dict[str, Any]] = {}
    for exp, series in per_exp:
        for s in series:
            m = metrics.setdefault(s.name, {"name": s.name, "x_label": s.x_label, "series": []})
            m["series"].append({"experiment": exp, "source": s.source, "x": s.x, "y": s.y})
    return {"metrics": [metrics[k] for k in sorted(metrics)]}


def _fmt_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


def make_app(settings: Settings) -> Starlette:
    ui = UI(settings)

    async def not_found(request: Request, exc: Exception) -> Response:
        message = exc.message if isinstance(exc, RunnerError) else "no such page"
        return ui.render("error.html", status=404, message=message, title="Not found")

    async def failed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RunnerError)
        return ui.render("error.html", status=502, message=str(exc), title="Error")

    routes = [
        Route("/", ui.runs_page),
        Route("/runs/rows", ui.runs_rows),
        Route("/runs/{run}", ui.run_page),
        Route("/runs/{run}/rows", ui.run_rows),
        Route("/runs/{run}/metrics", ui.run_metrics),
        Route("/stop/{name}", ui.stop, methods=["POST"]),
        Route("/delete/{name}", ui.delete, methods=["POST"]),
        Route("/experiments/{exp}", ui.experiment_page),
        Route("/experiments/{exp}/log", ui.log_stream),
        Route("/experiments/{exp}/state", ui.experiment_state),
        Route("/experiments/{exp}/metrics", ui.experiment_metrics),
        Route("/experiments/{exp}/artifacts/{path:path}", ui.download),
        Route("/static/plotly.min.js", ui.plotly),
        Mount("/static", StaticFiles(directory=HERE / "static")),
    ]
    middleware = [Middleware(SecurityHeaders), Middleware(GZipMiddleware, minimum_size=2048, compresslevel=6)]
    if settings.token:
        middleware.insert(1, Middleware(TokenGate, token=settings.token))
    else:  # loopback: only requests addressed to it (a page elsewhere cannot rebind a name to 127.0.0.1)
        middleware.insert(1, Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", settings.host]))
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: not_found, NotFoundError: not_found, RunnerError: failed},
    )


# -- serving ------------------------------------------------------------------------------


@dataclass
class Server:
    """A bound socket and the app; :meth:`serve` blocks until Ctrl-C."""

    sock: socket.socket
    url: str
    settings: Settings

    def serve(self) -> None:
        import uvicorn

        config = uvicorn.Config(
            make_app(self.settings), log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        uvicorn.Server(config).run(sockets=[self.sock])


def bind(*, home: Home, host: str, port: int, kube: KubeOptions | None = None) -> Server:
    """Listen on host:port (0: any free port).  Another address than a loopback one gets a token."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: not a port number", hint="give 0 to 65535; 0 picks a free one")
    plotly_js()  # a missing extra is told now, not on the first page
    token = None if is_local(host) else secrets.token_urlsafe(24)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        raise UsageError(
            f"cannot listen on {host}:{port}: {e.strerror or e}", hint="give another --port or --host"
        ) from e
    real_port = sock.getsockname()[1]
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host  # all addresses: a name others can use
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{real_port}/" + (f"?token={token}" if token else "")
    return Server(sock, url, Settings(home=home, kube=kube, token=token, host=host))
