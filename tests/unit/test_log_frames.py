"""The engine's multiplexed output stream -> log lines (runner.adapters.docker_engine._frames_to_lines)."""

from __future__ import annotations

import io
import struct
from typing import Any

from runner.adapters.docker_engine import _frames_to_lines
from runner.logs import LogLine


def frames(*parts: tuple[int, bytes]) -> Any:
    return io.BufferedReader(io.BytesIO(b"".join(struct.pack(">BxxxI", k, len(p)) + p for k, p in parts)))


def test_log_endpoint_entries_split_at_16k_become_one_line_with_the_first_stamp() -> None:
    long = b"y" * 40000
    stream = frames(
        (1, b"2026-11-21T17:24:11.000000001Z " + long[:16384]),
        (2, b"2026-11-21T17:24:11.500000000Z err\n"),
        (1, b"2026-11-21T17:24:12.000000001Z " + long[16384:32768]),
        (1, b"2026-11-21T17:24:13.000000001Z " + long[32768:] + b"\n"),
        (1, b"2026-11-21T17:24:14.000000001Z last\n"),
    )
    got = list(_frames_to_lines("c" * 12, stream, stamped=True))
    assert got == [
        LogLine("stderr", "2026-11-21T17:24:11.500000+00:00", "err"),
        LogLine("stdout", "2026-11-21T17:24:11.000000+00:00", long.decode()),
        LogLine("stdout", "2026-11-21T17:24:14.000000+00:00", "last"),
    ]


def test_attached_frames_hold_any_number_of_lines_and_characters_split_across_frames() -> None:
    e = "\u00e9".encode()
    stream = frames((1, b"a\nb\nc" + e[:1]), (1, e[1:] + b"d\n"), (2, b"oops\n"), (1, b"tail"))
    got = list(_frames_to_lines("c" * 12, stream, stamped=False))
    assert [(ln.stream, ln.text) for ln in got] == [
        ("stdout", "a\nb"),
        ("stdout", "c\u00e9d"),
        ("stderr", "oops"),
        ("stdout", "tail"),
    ]


def test_a_batch_of_lines_formats_as_one_log_line_each() -> None:
    batch = LogLine("stdout", "T", "a\nb\n\nc")
    assert batch.format() == "[stdout] [T] a\n[stdout] [T] b\n[stdout] [T] \n[stdout] [T] c"
