import io
import os
import tarfile
import threading
import time
from pathlib import Path

from runner.artifacts import copy_from_layer, extract_changed
from runner.logs import LogLine, LogWriter, engine_time, follow_file, parse_line, read_lines


def test_engine_time_to_iso() -> None:
    assert engine_time("2026-11-21T17:24:11.162831123Z") == "2026-11-21T17:24:11.162831+00:00"
    assert engine_time("2026-11-21T17:24:11Z") == "2026-11-21T17:24:11.000000+00:00"
    assert engine_time("2026-11-21T17:24:11.5+02:00") == "2026-11-21T17:24:11.500000+02:00"


def test_line_format_round_trip() -> None:
    line = LogLine("stderr", "2026-11-21T17:24:11.162831+00:00", "a [b] c ")
    assert line.format() == "[stderr] [2026-11-21T17:24:11.162831+00:00] a [b] c "
    assert parse_line(line.format()) == line


def test_writer_tail_and_follow(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    w = LogWriter(path)
    for i in range(5):
        w.write(LogLine("stdout", "t", str(i)))
    assert read_lines(path, tail=2) == ["[stdout] [t] 3", "[stdout] [t] 4"]
    done = threading.Event()

    def later() -> None:
        time.sleep(0.3)
        w.write(LogLine("stdout", "t", "late"))
        w.close()
        done.set()

    threading.Thread(target=later).start()
    seen = list(follow_file(path, done=done.is_set, poll=0.05, start=path.stat().st_size))
    assert seen == ["[stdout] [t] late"]


def _tar(members: dict[str, tuple[bytes | None, int]]) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, (data, mtime) in members.items():
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return tarfile.open(fileobj=buf, mode="r|")


def test_extract_changed_keeps_files_with_a_real_mtime_only(tmp_path: Path) -> None:
    tar = _tar(
        {
            "project": (None, 0),
            "project/train.py": (b"from the image", 0),  # build context files have mtime 0
            "project/logs": (None, 1_700_000_000),
            "project/logs/a.txt": (b"A", 1_700_000_000),
            "project/train.py.bak": (b"B", 1_700_000_001),
            "project/../evil": (b"x", 1_700_000_000),
        }
    )
    saved = extract_changed(tar, dest=tmp_path / "out")
    assert saved == ["logs/a.txt", "train.py.bak"]
    assert (tmp_path / "out/logs/a.txt").read_bytes() == b"A"
    assert not (tmp_path / "out/train.py").exists()
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out/../evil").exists()


def test_copy_from_layer_skips_whiteouts_and_links(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "logs").mkdir(parents=True)
    (upper / "logs/a.txt").write_text("A")
    (upper / "model.bin").write_bytes(b"M")
    (upper / "link").symlink_to("/etc/passwd")
    os.mkfifo(upper / "not-a-file")
    assert copy_from_layer(upper, tmp_path / "out") == ["logs/a.txt", "model.bin"]
    assert (tmp_path / "out/model.bin").read_bytes() == b"M"
    assert copy_from_layer(tmp_path / "absent", tmp_path / "o2") == []
