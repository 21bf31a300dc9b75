"""Large output on the local target (issue 14, point 5): every byte reaches the terminal and the log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from support import Runner, run_name

Project = Callable[[dict[str, str]], Path]

#: deterministic output: many lines (every 1000th on stderr), a character whose bytes are
#: written apart, one long line, and a last line without its newline
BIG = """\
import sys
out, err = sys.stdout.buffer, sys.stderr.buffer
lines, long = int(sys.argv[1]), int(sys.argv[2])
for i in range(lines):
    (err if i % 1000 == 0 else out).write(b"line %d %s\\n" % (i, b"x" * (i % 97)))
out.flush()
err.flush()
e = "\\u00e9".encode()
out.write(e[:1])
out.flush()
out.write(e[1:] + b"\\n")
out.write(b"L" * long + b"\\n")
out.write(b"no newline at the end")
"""


def expected(lines: int, long: int) -> tuple[list[str], list[str]]:
    out = [f"line {i} {'x' * (i % 97)}" for i in range(lines) if i % 1000]
    err = [f"line {i} {'x' * (i % 97)}" for i in range(lines) if i % 1000 == 0]
    return [*out, "\u00e9", "L" * long, "no newline at the end"], err


def test_large_output_is_logged_completely(runner: Runner, project: Project) -> None:
    lines, long = 200_000, 16 << 20  # ~11 MB of short lines, and one line of 16 MiB
    root = project({"big.py": BIG})
    r = runner("run", "--local", str(root / "big.py"), str(lines), str(long), timeout=240)
    assert r.code == 0, r.err[-2000:]
    want_out, want_err = expected(lines, long)
    got_out = r.out.split("\n")
    assert got_out[-1] == ""  # the unterminated last line is ended on the terminal
    assert len(r.out) == sum(len(x) + 1 for x in want_out)
    assert got_out[:-1] == want_out
    assert [ln for ln in r.err.split("\n") if ln.startswith("line ")] == want_err
    log = runner("logs", run_name(r.err), timeout=240)
    assert log.code == 0, log.err[-2000:]
    texts: dict[str, list[str]] = {"stdout": [], "stderr": []}
    for ln in log.out.split("\n")[:-1]:
        if ln.startswith("[build] "):
            continue
        stream, rest = ln[1:].split("] [", 1)
        texts[stream].append(rest.split("] ", 1)[1])
    assert texts["stdout"] == want_out
    assert texts["stderr"] == want_err
    assert sum(len(t) for t in texts["stdout"]) == sum(len(t) for t in want_out)
