"""The web view over a history made with the real store (no engine): escaping, downloads, the token, the host."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from runner.home import Home
from runner.logs import LogLine, LogWriter
from runner.model import ExpState
from runner.store import Store
from runner.ui.server import Settings, make_app

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "home")
    store = Store(home.db)
    run = store.create_run(
        make_name=lambda: "calm-fox-001",
        project="proj",
        root="/p",
        script="train.py",
        args=["--lr", "[0.1, 0.01]"],
        target="local",
        options={"resources": {"cpus": 2}},
        experiments=[(["python3", "train.py", "--lr", lr], {"--lr": lr}) for lr in ("0.1", "0.01")],
        state=ExpState.QUEUED,
    )
    for e in store.experiments(run.name):
        store.finish_experiment(e.name, state=ExpState.FAILED, exit_code=1, message=HOSTILE)
    log = LogWriter(home.experiment_log(run.name, "calm-fox-001-exp0"))
    log.write(LogLine("stdout", "2026-12-04T10:00:00.000000+00:00", HOSTILE))
    log.close()
    art = home.artifacts(run.name, "calm-fox-001-exp0")
    (art / "out").mkdir(parents=True)
    (art / "out" / f"{'<b>'}x.bin").write_bytes(b"\x00\x01payload")
    (art / "metrics.csv").write_text(f"step,{HOSTILE}\n0,1\n1,2\n")
    (home.root / "secret.txt").write_text("not an artifact")
    (art / "link").symlink_to(home.root / "secret.txt")
    store.close()
    return home


def client(home: Home, **kw: object) -> TestClient:
    return TestClient(make_app(Settings(home=home, **kw)), base_url="http://127.0.0.1")  # type: ignore[arg-type]


def test_pages_escape_what_the_script_wrote(home: Home) -> None:
    c = client(home)
    for url in ("/", "/runs/calm-fox-001", "/experiments/calm-fox-001-exp0"):
        r = c.get(url)
        assert r.status_code == 200, url
        assert "<script>alert" not in r.text and "<img src=x" not in r.text, url
        assert "default-src 'self'" in r.headers["content-security-policy"]
    page = c.get("/runs/calm-fox-001").text
    assert "&lt;script&gt;alert" in page  # the reason is shown, as text
    assert '<th class="param">--lr</th>' in page  # one column per swept argument
    assert 'data-delete="calm-fox-001"' in page  # delete, with confirmation in the page script
    exp = c.get("/experiments/calm-fox-001-exp0").text
    assert "out/%3Cb%3Ex.bin" in exp and "out/&lt;b&gt;x.bin" in exp


def test_log_stream_sends_lines_as_json_then_the_end(home: Home) -> None:
    with client(home).stream("GET", "/experiments/calm-fox-001-exp0/log") as r:
        body = "".join(r.iter_text())
    assert r.headers["content-type"].startswith("text/event-stream")
    assert '"x": "<script>alert(\\"x\\")</script>' in body  # JSON for textContent, never HTML
    assert body.rstrip().endswith('event: end\ndata: "failed"')


def test_artifact_download_and_no_way_out_of_the_folder(home: Home) -> None:
    c = client(home)
    r = c.get("/experiments/calm-fox-001-exp0/artifacts/out/%3Cb%3Ex.bin")
    assert r.status_code == 200 and r.content == b"\x00\x01payload"
    assert r.headers["content-disposition"].startswith("attachment")
    for bad in (
        "../../secret.txt",
        "..%2F..%2Fsecret.txt",
        "%2E%2E/%2E%2E/secret.txt",
        "link",
        "/etc/passwd",
        "out/../../../secret.txt",
        "..%2F..%2F..%2Frunner.db",
    ):
        r = c.get(f"/experiments/calm-fox-001-exp0/artifacts/{bad}")
        assert r.status_code == 404 and b"not an artifact" not in r.content, bad


def test_metrics_per_metric_one_series_per_experiment(home: Home) -> None:
    doc = client(home).get("/runs/calm-fox-001/metrics").json()
    assert [m["name"] for m in doc["metrics"]] == [HOSTILE]
    assert [(s["experiment"], s["x"], s["y"]) for s in doc["metrics"][0]["series"]] == [
        ("calm-fox-001-exp0", [0.0, 1.0], [1.0, 2.0])
    ]


def test_unknown_names_are_404(home: Home) -> None:
    c = client(home)
    assert c.get("/runs/nope").status_code == 404
    assert c.get("/experiments/calm-fox-001-exp7").status_code == 404
    assert c.get("/runs/calm-fox-001-exp0").status_code == 404


def test_loopback_answers_only_its_own_host_name(home: Home) -> None:
    c = client(home)
    assert c.get("/", headers={"host": "evil.example"}).status_code == 400  # DNS rebinding
    assert c.get("/", headers={"host": "localhost:8765"}).status_code == 200


def test_stop_needs_the_pages_header(home: Home) -> None:
    c = client(home)
    assert c.post("/stop/calm-fox-001").status_code == 403  # a form on another site cannot add it
    r = c.post("/stop/calm-fox-001", headers={"x-runner-ui": "1"})
    assert r.status_code == 200 and r.json() == {"stopped": []}  # nothing active: the engine is never asked


def test_token_on_every_request(home: Home) -> None:
    c = TestClient(make_app(Settings(home=home, token="s3cret", host="0.0.0.0")), base_url="http://10.0.0.5")
    for url in ("/", "/runs/calm-fox-001", "/static/ui.js", "/experiments/calm-fox-001-exp0/artifacts/metrics.csv"):
        assert c.get(url).status_code == 403, url
    assert c.get("/?token=wrong").status_code == 403
    r = c.get("/?token=s3cret&status=failed", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/?status=failed"  # the token leaves the address bar
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    assert c.get("/experiments/calm-fox-001-exp0").status_code == 200  # the cookie from now on
    c.cookies.clear()
    assert c.get("/experiments/calm-fox-001-exp0").status_code == 403


def test_without_the_extra_runner_ui_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from runner.cli import main

    # as if the extra were not installed: its first import fails, and runner.ui.server is imported anew
    monkeypatch.setitem(sys.modules, "jinja2", None)
    monkeypatch.delitem(sys.modules, "runner.ui.server", raising=False)
    monkeypatch.delattr(sys.modules["runner.ui"], "server", raising=False)
    with pytest.raises(SystemExit) as e:
        main(["ui", "--no-open"])
    assert e.value.code == 2
    assert (
        "runner ui needs the ui extra (jinja2 is not installed) (pip install 'runner[ui]')" in capsys.readouterr().err
    )


def test_another_address_prints_a_token_and_a_busy_port_is_one_line(home: Home) -> None:
    from runner.errors import UsageError
    from runner.ui.server import bind

    srv = bind(home=home, host="0.0.0.0", port=0)
    try:
        assert srv.settings.token and srv.url.endswith(f"/?token={srv.settings.token}")
        with pytest.raises(UsageError, match="cannot listen on 0.0.0.0"):
            bind(home=home, host="0.0.0.0", port=srv.sock.getsockname()[1])
    finally:
        srv.sock.close()
    local = bind(home=home, host="127.0.0.1", port=0)
    local.sock.close()
    assert local.settings.token is None and "token" not in local.url
