"""Progress people can read: build, push and upload state, and how to show it.  Pure.

The adapters produce raw streams (BuildKit's plain-progress lines, the engine's push
events as JSON, bytes sent over exec); the trackers here turn them into
:class:`Progress` values, and :class:`Renderer` shows those: on a terminal one status
line rewritten in place (throttled), in a pipe a few plain lines (at each build step,
every tenth of a push or upload), or nothing.  The front end decides which; nothing
here knows about engines, terminals' sizes or the environment.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, TextIO

Stage = Literal["build", "push", "upload"]


@dataclass(frozen=True)
class Progress:
    """Where a build, push or upload is: ``step`` says what it does now, ``detail`` how that goes.

    ``done``/``total`` count build steps, or bytes when ``in_bytes``; ``total`` is None while unknown.
    """

    stage: Stage
    step: str
    detail: str = ""
    done: int = 0
    total: int | None = None
    in_bytes: bool = False
    #: the last value of its stage (the push or upload has ended)
    final: bool = False

    @property
    def percent(self) -> int | None:
        if not self.total:
            return None
        return max(0, min(100, self.done * 100 // self.total))


def human_bytes(n: int) -> str:
    """1,536 -> '1.5 KB' (powers of 1000, as the engine's own push progress counts)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


# -- builds ----------------------------------------------------------------------------------

#: "#6 [stage-0 2/5] RUN ...", "#5 [internal] load build context", "#10 exporting to image", "#6 0.838 output"
_VERTEX = re.compile(r"^#(\d+) (.*)$")
_TITLED = re.compile(r"^\[(?:[^\]\s]+ )?(\d+)/(\d+)\] (.*)$")
_TIMED = re.compile(r"^\d+\.\d+ (.*)$")
_ENDED = re.compile(r"^(DONE [\d.]+s|CACHED|ERROR: .*|CANCELED.*)$")
#: the classic builder's "Step 3/7 : RUN ..."
_CLASSIC_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
#: runner's own install steps: "RUN sh /run/runner/install.sh uv - /run/runner/5-arrays.txt --no-deps"
_INSTALL = re.compile(r"install\.sh (uv|pip) (?:'[^']*'|\S+) (\S+)")


def step_label(title: str) -> str:
    """A step's title for people: runner's install steps by what they install, others as they are."""
    m = _INSTALL.search(title)
    if m:
        installer, path = m.groups()
        name = path.rsplit("/", 1)[-1]
        if name == "requirements.lock":
            return f"install the lock ({installer})"
        family = re.sub(r"^\d+-", "", name.rsplit(".", 1)[0])
        return f"install the {family} layer ({installer})"
    if title.startswith("COPY project/"):
        return "copy the code"
    return title if len(title) <= 60 else title[:57] + "..."


def _count(n: int | str, what: str) -> str:
    return f"{n} {what}" if int(n) == 1 else f"{n} {what}s"


@dataclass
class _Installer:
    """What uv or pip has said so far in one install step."""

    pip: bool = False
    downloading: dict[str, str] = field(default_factory=dict)  # uv: name -> size, started and not yet done
    downloads: int = 0
    downloaded: int = 0
    collected: int = 0
    detail: str = ""

    def feed(self, text: str) -> None:
        """Take one output line of the installer."""
        text = text.strip()
        if text.startswith("runner: installing with pip"):  # install.sh says so before pip starts
            self.pip = True
            self.detail = "installing with pip"
        elif m := re.match(r"^Collecting (\S+)", text):  # pip: one package at a time
            self.pip = True
            self.collected += 1
            self.detail = f"collecting {m.group(1)} ({self.collected} so far)"
        elif m := re.match(r"^Downloading (\S+) \(([^)]+)\)$", text):
            name, size = m.groups()
            if self.pip:  # "Downloading numpy-1.26.4-cp311-....whl (18.3 MB)"
                short = re.sub(r"(-[^-]+)-.*$", r"\1", name)
                self.detail = f"downloading {short} ({size}), {self.collected} so far"
            else:  # uv announces large files, in parallel, then says "Downloaded name"
                self.downloads += 1
                self.downloading[name] = size
                self.detail = self._downloads()
        elif m := re.match(r"^Downloaded (\S+)$", text):  # uv
            self.downloading.pop(m.group(1), None)
            self.downloaded += 1
            self.detail = self._downloads()
        elif m := re.match(r"^Resolved (\d+) packages?", text):  # uv
            self.detail = f"resolved {_count(m.group(1), 'package')}"
        elif m := re.match(r"^Prepared (\d+) packages?", text):  # uv
            self.detail = f"prepared {_count(m.group(1), 'package')}, installing"
        elif m := re.match(r"^Installed (\d+) packages?", text):  # uv, then its bytecode compilation
            self.detail = f"installed {_count(m.group(1), 'package')}, compiling bytecode"
        elif m := re.match(r"^Bytecode compiled (\d+) files", text):
            self.detail = f"compiled {_count(m.group(1), 'file')}"
        elif m := re.match(r"^Audited (\d+) packages?", text):  # uv: nothing to install
            self.detail = f"{_count(m.group(1), 'package')} already installed"
        elif m := re.match(r"^Installing collected packages: (.*)$", text):  # pip
            self.detail = f"installing {_count(len(m.group(1).split(',')), 'package')}"
        elif m := re.match(r"^Successfully installed (.*)$", text):  # pip
            self.detail = f"installed {_count(len(m.group(1).split()), 'package')}"

    def _downloads(self) -> str:
        now = ", ".join(f"{n} {s}" for n, s in list(self.downloading.items())[:2])
        if len(self.downloading) > 2:
            now += f" and {len(self.downloading) - 2} more"
        if self.downloaded and self.downloading:
            return f"downloading {now} ({self.downloaded} of {self.downloads} done)"
        if self.downloading:
            return f"downloading {now}"
        return f"downloaded {self.downloaded} of {self.downloads}"


class BuildTracker:
    """Turns a build's log lines (BuildKit's plain progress, or the classic builder's) into :class:`Progress`.

    Steps are BuildKit's ``[k/N]`` steps; exporting the image counts as one more.  A
    step's installer output (uv's or pip's own lines) becomes the ``detail``.
    """

    def __init__(self) -> None:
        self._titles: dict[str, tuple[int, str]] = {}  # vertex -> (k, label) of the steps that have one
        self._ended: set[str] = set()
        self._total: int | None = None
        self._current: str | None = None  # the vertex that spoke last
        self._label = ""  # nothing to say before the first step
        self._installers: dict[str, _Installer] = {}  # per step: output of steps run side by side stays apart
        self._installer = _Installer()
        self._export = ""  # the vertex that exports the image
        self._last: Progress | None = None

    def feed(self, line: str) -> Progress | None:
        """One line of the build log; the new progress, or None when nothing a person would see changed."""
        m = _VERTEX.match(line)
        if m:
            self._vertex(m.group(1), m.group(2))
        else:
            self._classic(line)
        p = self.progress()
        if p == self._last or not p.step:
            return None
        self._last = p
        return p

    def progress(self) -> Progress:
        total = None if self._total is None else self._total + 1  # + exporting the image
        done = sum(1 for v in self._ended if v in self._titles or v == "export")
        return Progress("build", self._label, self._installer.detail, min(done, total or done), total)

    def _vertex(self, vid: str, rest: str) -> None:
        ended = _ENDED.match(rest)
        if ended:
            if vid in self._titles or vid == self._export:
                self._ended.add("export" if vid == self._export else vid)
            return
        titled = _TITLED.match(rest)
        if titled:
            k, n, title = int(titled.group(1)), int(titled.group(2)), titled.group(3)
            self._total = max(self._total or 0, n)
            if vid not in self._titles:  # BuildKit names a step again later (FROM after the context): not news
                self._titles[vid] = (k, step_label(title))
                self._switch(vid, f"[{k}/{n}] {self._titles[vid][1]}")
            return
        if rest == "exporting to image":
            self._export = vid
            self._switch(vid, "export the image")
            return
        if rest.startswith("[internal] load build context"):
            self._switch(vid, "send the build context")
            return
        timed = _TIMED.match(rest)
        if timed and vid in self._titles:  # a step's own output: the installer speaks
            if vid != self._current:
                k, label = self._titles[vid]
                self._switch(vid, f"[{k}/{self._total}] {label}")
            self._installer.feed(timed.group(1))

    def _classic(self, line: str) -> None:
        m = _CLASSIC_STEP.match(line)
        if m:
            k, n, title = int(m.group(1)), int(m.group(2)), m.group(3)
            if self._current is not None:
                self._ended.add(self._current)
            self._total = n
            vid = f"classic-{k}"
            self._titles[vid] = (k, step_label(title))
            self._switch(vid, f"[{k}/{n}] {self._titles[vid][1]}")
        elif self._current is not None:
            self._installer.feed(line)

    def _switch(self, vid: str, label: str) -> None:
        if vid != self._current:
            self._current = vid
            self._installer = self._installers.setdefault(vid, _Installer())
        self._label = label


# -- pushes ----------------------------------------------------------------------------------


@dataclass
class _Layer:
    current: int = 0
    total: int | None = None
    state: str = "waiting"  # waiting, pushing, pushed, there


class PushTracker:
    """Aggregates the engine's push events (``{"status", "id", "progressDetail"}`` per layer) into bytes sent of the total.

    The total is the sum of the sizes of the layers being sent, as the engine reports
    them (it may send a few more bytes than it announced: each layer is capped at its
    size until it is pushed).  Layers the registry has are counted apart.
    """

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self._layers: dict[str, _Layer] = {}
        self._last: Progress | None = None
        self.digest: str | None = None

    def feed(self, event: Mapping[str, Any]) -> Progress | None:
        """One decoded event of the push stream; the new progress, or None when nothing changed."""
        status = str(event.get("status") or "")
        lid = event.get("id")
        aux = event.get("aux")
        if isinstance(aux, Mapping) and aux.get("Digest"):
            self.digest = str(aux["Digest"])
        if isinstance(lid, str) and status:
            layer = self._layers.setdefault(lid, _Layer())
            detail = event.get("progressDetail") or {}
            if status == "Pushing":
                layer.state = "pushing"
                if isinstance(detail.get("total"), int) and detail["total"] > 0:
                    layer.total = detail["total"]
                if isinstance(detail.get("current"), int):
                    layer.current = detail["current"]
            elif status == "Pushed":
                layer.state = "pushed"
            elif status.startswith(("Layer already exists", "Mounted from")):
                layer.state = "there"
        p = self.progress()
        if p == self._last:
            return None
        self._last = p
        return p

    def progress(self, *, final: bool = False) -> Progress:
        sent = [ly for ly in self._layers.values() if ly.state in ("pushing", "pushed")]
        # a layer still waiting has no size yet: a total without it would shrink the percent later
        known = not any(ly.state == "waiting" for ly in self._layers.values())
        # a layer whose size the engine did not say counts as what it sent so far
        total = sum(ly.total or ly.current for ly in sent)
        done = sum(
            (ly.total or ly.current) if ly.state == "pushed" else min(ly.current, ly.total or ly.current) for ly in sent
        )
        pushed = sum(1 for ly in self._layers.values() if ly.state == "pushed")
        there = sum(1 for ly in self._layers.values() if ly.state == "there")
        parts = [f"{pushed} of {len(self._layers) - there} layers pushed"] if len(self._layers) > there else []
        if there:
            parts.append(f"{there} already there")
        return Progress(
            "push", self.ref, ", ".join(parts), done, (total or None) if known else None, in_bytes=True, final=final
        )


def upload_progress(what: str, sent: int, total: int, *, final: bool = False) -> Progress:
    return Progress("upload", what, "", sent, total, in_bytes=True, final=final)


# -- showing it --------------------------------------------------------------------------------


class Mode(Enum):
    """How progress is shown: a status line (a terminal), plain lines (a pipe, a CI log), or not at all."""

    TTY = "tty"
    PLAIN = "plain"
    QUIET = "none"


#: the column the CLI's other lines use ("image      runner/...")
_NAMES = {"build": "build      ", "push": "push       ", "upload": "upload     "}


def describe(p: Progress, *, elapsed: float | None = None) -> str:
    """One line: ``build      [3/5] install the lock (uv): downloading jedi 4.7MiB  60%  12s``."""
    text = _NAMES[p.stage] + p.step
    if p.in_bytes:
        amount = human_bytes(p.done) + (f" of {human_bytes(p.total)}" if p.total else " sent")
        text += f"  {amount}"
        if p.detail:
            text += f" ({p.detail})"
    elif p.detail:
        text += f": {p.detail}"
    if p.percent is not None:
        text += f"  {p.percent}%"
    if elapsed is not None:
        text += f"  {elapsed:.0f}s"
    return text


class Renderer:
    """Shows :class:`Progress` values on ``out``.

    TTY: one line, rewritten in place with ``\\r`` (a push or upload at most every
    ``interval`` seconds unless its step changes); :meth:`clear` takes it away before
    anything else is printed.  PLAIN: a line when the step changes and each time a push or upload
    passes another tenth.  QUIET: nothing.
    """

    def __init__(
        self,
        out: TextIO,
        mode: Mode,
        *,
        width: int = 80,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out, self.mode, self.width, self.interval, self.clock = out, mode, width, interval, clock
        self._shown = False  # a status line is on the screen (TTY)
        self._drawn_at = float("-inf")
        self._key: tuple[str, str] | None = None
        self._decile = -1
        self._printed = ""
        self._started: dict[str, float] = {}

    def show(self, p: Progress) -> None:
        if self.mode is Mode.QUIET:
            return
        now = self.clock()
        started = self._started.setdefault(p.stage, now)
        key = (p.stage, p.step)
        changed, self._key = key != self._key, key
        if self.mode is Mode.PLAIN:
            decile = (p.percent // 10) if (p.in_bytes and p.percent is not None) else -1
            if changed:
                self._decile = -1
            line = describe(p)
            if (changed or decile > self._decile or p.final) and line != self._printed:
                self._decile = max(self._decile, decile)
                self._printed = line
                self.out.write(line + "\n")
                self.out.flush()
            return
        # bytes come in many small events: at most one draw per interval.  A build's events are few
        # and each says something new (the last before a long quiet step must not be held back)
        if p.in_bytes and not (changed or p.final) and now - self._drawn_at < self.interval:
            return
        self._draw(p, now - started)

    def _draw(self, p: Progress, elapsed: float) -> None:
        line = describe(p, elapsed=elapsed)
        width = self.width if self.width > 20 else 80  # a terminal that does not say its size
        if len(line) > width - 1:
            line = line[: width - 2] + "…"
        self.out.write("\r\x1b[K" + line)
        self.out.flush()
        self._shown = True
        self._drawn_at = self.clock()

    def clear(self) -> None:
        """Take the status line away (TTY) so the next line starts clean; the next progress starts afresh."""
        if self._shown:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._shown = False
        self._key = None
        self._decile = -1
