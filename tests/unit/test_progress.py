"""Progress (runner.progress) from recorded streams of this project's engine, against golden output.

The fixtures in golden/progress/ were recorded for real: ``buildkit_uv.log`` and
``buildkit_pip.log`` are build logs of ``runner run --local`` (BuildKit plain progress,
uv and RUNNER_INSTALLER=pip), ``push*.jsonl`` the engine's push events (docker-py's
decoded stream) of a push to the local registry 127.0.0.1:5000: a new image, the
same image again (every layer there), and a registry that refuses the connection.
Regenerate the ``.expected`` files after an intended change with RUNNER_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runner.progress import (
    BuildTracker,
    Mode,
    Progress,
    PushTracker,
    Renderer,
    describe,
    human_bytes,
    step_label,
    upload_progress,
)

if TYPE_CHECKING:
    from runner.events import RunEvent

GOLDEN = Path(__file__).parent / "golden" / "progress"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("RUNNER_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs (RUNNER_UPDATE_GOLDEN=1 to accept)"


def build_events(name: str) -> list[Progress]:
    tracker = BuildTracker()
    out = []
    for line in (GOLDEN / name).read_text().splitlines():
        p = tracker.feed(line)
        if p is not None:
            out.append(p)
    return out


def push_events(name: str) -> tuple[list[Progress], PushTracker]:
    tracker = PushTracker("127.0.0.1:5000/runner/proj:0123")
    out = []
    for line in (GOLDEN / name).read_text().splitlines():
        p = tracker.feed(json.loads(line))
        if p is not None:
            out.append(p)
    return out, tracker


def plain(events: list[Progress]) -> str:
    buf = io.StringIO()
    r = Renderer(buf, Mode.PLAIN)
    for p in events:
        r.show(p)
    return buf.getvalue()


@pytest.mark.parametrize("log", ["buildkit_uv", "buildkit_pip"])
def test_build_logs_become_steps_and_installer_progress(log: str) -> None:
    events = build_events(f"{log}.log")
    check_golden(f"{log}.expected", "".join(describe(p) + "\n" for p in events))
    assert events[-1].step == "export the image" and events[-1].percent == 100
    assert [p.done for p in events] == sorted(p.done for p in events)  # steps only ever finish


def test_build_in_a_pipe_is_a_line_per_step() -> None:
    text = plain(build_events("buildkit_uv.log"))
    check_golden("buildkit_uv.plain", text)
    assert len(text.splitlines()) <= 8  # not the log's 79 lines
    assert "install the arrays layer (uv)" in text and "install the lock (uv)" in text


def test_uv_downloads_and_phases_show_as_detail() -> None:
    details = [p.detail for p in build_events("buildkit_uv.log") if "install the lock" in p.step]
    assert "resolved 32 packages" in details
    assert "downloading jedi 4.7MiB, sympy 5.5MiB (1 of 3 done)" in details
    assert "installed 30 packages, compiling bytecode" in details  # uv's quiet 6 s are named


def test_pip_packages_show_as_detail() -> None:
    details = [p.detail for p in build_events("buildkit_pip.log")]
    assert "downloading sympy-1.11.1 (6.5 MB), 24 so far" in details
    assert details[-1] == "installed 30 packages" or "installed 30 packages" in details


def test_classic_builder_steps() -> None:
    tracker = BuildTracker()
    seen = [
        tracker.feed(line)
        for line in [
            "Step 1/4 : FROM runner-python:3.11",
            " ---> 1234",
            "Step 2/4 : RUN python3 -m venv /opt/runner/venv && pip install -r requirements.lock",
            "Collecting six==1.16.0",
            "Successfully installed six-1.16.0",
            "Step 3/4 : COPY project/ /project/",
        ]
    ]
    shown = [describe(p) for p in seen if p is not None]
    assert shown[-1] == "build      [3/4] copy the code  40%"
    assert shown[-2].endswith("...: installed 1 package  20%") and shown[-2].startswith("build      [2/4] RUN python3")


def test_step_labels() -> None:
    assert step_label("RUN sh /run/runner/install.sh uv - /run/runner/1-torch.txt --no-deps") == (
        "install the torch layer (uv)"
    )
    assert step_label(
        "RUN sh /run/runner/install.sh pip 'uv cannot --prefer-binary' /runner-deps/requirements.lock"
    ) == ("install the lock (pip)")
    assert step_label("WORKDIR /project") == "WORKDIR /project"


def test_push_sums_layers_into_bytes_of_the_total() -> None:
    events, tracker = push_events("push.jsonl")
    final = tracker.progress(final=True)
    assert final.total == 185582661 + 1183 + 1536  # the two sized layers, and one the engine gave no size
    assert final.done == final.total and final.percent == 100
    assert final.detail == "3 of 3 layers pushed, 1 already there"
    assert tracker.digest == "sha256:8ad3d1b834c76cc604efd9ebc65fda91f122a0f12ec2fce87a0ce6218244d144"
    assert all(p.total is None or p.done <= p.total for p in events)  # a layer never counts more than its size
    assert all(p.total is None for p in events[:8])  # no percent while a layer's size is unknown
    text = plain([*events, final])
    check_golden("push.plain", text)
    assert len(text.splitlines()) <= 15  # every tenth, not 79 events


def test_push_of_layers_the_registry_has() -> None:
    _, tracker = push_events("push_existing.jsonl")
    final = tracker.progress(final=True)
    assert final.detail == "4 already there" and final.total is None and final.done == 0
    assert describe(final) == "push       127.0.0.1:5000/runner/proj:0123  0 B sent (4 already there)"


def test_refused_push_has_no_layers() -> None:
    events, tracker = push_events("push_refused.jsonl")
    assert tracker.digest is None and all(p.total is None for p in events)


def test_tty_rewrites_one_line_and_throttles_bytes() -> None:
    now = [0.0]
    buf = io.StringIO()
    r = Renderer(buf, Mode.TTY, width=60, clock=lambda: now[0])
    r.show(upload_progress("datastore d", 0, 1000))
    for sent in range(100, 1000, 100):  # no time passes: held back
        r.show(upload_progress("datastore d", sent, 1000))
    now[0] = 1.0
    r.show(upload_progress("datastore d", 950, 1000))
    r.show(upload_progress("datastore d", 1000, 1000, final=True))  # the last one is always shown
    out = buf.getvalue()
    assert "\n" not in out
    draws = out.split("\r\x1b[K")[1:]
    assert [d.split("  ")[-2] for d in draws] == ["0%", "95%", "100%"]
    assert all(len(d) < 60 for d in draws)
    r.clear()
    assert buf.getvalue().endswith("\r\x1b[K")


def test_tty_shows_every_build_event_cut_to_the_width() -> None:
    buf = io.StringIO()
    r = Renderer(buf, Mode.TTY, width=40, clock=lambda: 0.0)
    events = build_events("buildkit_uv.log")
    for p in events:
        r.show(p)
    draws = buf.getvalue().split("\r\x1b[K")[1:]
    assert len(draws) == len(events)  # a build's events are not held back: each says something new
    assert all(len(d) <= 39 for d in draws) and any(d.endswith("…") for d in draws)


def test_quiet_shows_nothing() -> None:
    buf = io.StringIO()
    r = Renderer(buf, Mode.QUIET)
    for p in build_events("buildkit_uv.log"):
        r.show(p)
    r.clear()
    assert buf.getvalue() == ""


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (0, 999, 1536, 185582661, 5 * 10**9)] == [
        "0 B",
        "999 B",
        "1.5 KB",
        "185.6 MB",
        "5.0 GB",
    ]


# -- the CLI's choice -----------------------------------------------------------------------------


def recorded_build() -> Iterator[RunEvent]:
    """The events App.build yields for the recorded uv build."""
    from runner.events import BuildOutput, Built

    tracker = BuildTracker()
    for line in (GOLDEN / "buildkit_uv.log").read_text().splitlines():
        yield BuildOutput(line)
        p = tracker.feed(line)
        if p is not None:
            yield p
    yield Built("runner/proj:0123")


def show_run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], mode: str) -> list[str]:
    from runner.cli import _show_run

    monkeypatch.setenv("RUNNER_PROGRESS", mode)
    assert _show_run(None, recorded_build(), None) == 0  # type: ignore[arg-type]
    return capsys.readouterr().err.split("\n")[:-1]


def test_a_pipe_gets_a_line_per_step_not_the_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    err = show_run(monkeypatch, capsys, "auto")  # stderr is not a terminal here
    assert err == [*(GOLDEN / "buildkit_uv.plain").read_text().splitlines(), "image      runner/proj:0123 (built)"]


def test_the_whole_log_on_request(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    err = show_run(monkeypatch, capsys, "log")
    assert sum(1 for ln in err if ln.startswith("  build | #")) == 79
    assert not any(ln.startswith("build      ") for ln in err)  # the steps are in those lines already


def test_none_shows_only_the_outcome(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert show_run(monkeypatch, capsys, "none") == ["image      runner/proj:0123 (built)"]


def test_tty_leaves_no_status_line_behind(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    err = show_run(monkeypatch, capsys, "tty")
    assert len(err) == 1  # one line rewritten in place, then the outcome's own line
    assert err[0].startswith("\r\x1b[Kbuild      ") and err[0].endswith("\r\x1b[Kimage      runner/proj:0123 (built)")


def test_a_bad_progress_mode_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.cli import _progress_mode
    from runner.errors import UsageError

    monkeypatch.setenv("RUNNER_PROGRESS", "fancy")
    with pytest.raises(UsageError) as e:
        _progress_mode()
    assert e.value.exit_code == 2 and "auto, tty, plain, log, none" in e.value.message


def test_a_cached_run_does_not_import_progress() -> None:
    """The hot path (a cached `runner run`) loads neither the trackers nor the renderer."""
    import subprocess
    import sys

    code = (
        "import sys, runner.app, runner.cli; print('runner.progress' in sys.modules, 'runner.buildlock' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
