import io
import tarfile
import threading
import time
from pathlib import Path

from runner.artifacts import export_roots, extract_selected
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


def _tar(members: dict[str, bytes | None]) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return tarfile.open(fileobj=buf, mode="r|")


def test_export_roots_picks_top_changed_folders() -> None:
    changed = ["/project", "/project/logs", "/project/logs/a.txt", "/project/src/model.pt", "/tmp/x", "/project/src"]
    roots, rel = export_roots([c for c in changed if c != "/project/src"], "/project")
    assert roots == ["logs", "src/model.pt"]
    assert rel == {"logs", "logs/a.txt", "src/model.pt"}


def test_extract_selected_only_wanted_and_never_outside(tmp_path: Path) -> None:
    tar = _tar({"logs": None, "logs/a.txt": b"A", "logs/old.txt": b"old", "../evil": b"x"})
    saved = extract_selected(tar, root="logs", wanted={"logs", "logs/a.txt", "../evil"}, dest=tmp_path / "out")
    assert saved == ["logs/a.txt"]
    assert (tmp_path / "out/logs/a.txt").read_bytes() == b"A"
    assert not (tmp_path / "evil").exists()
    tar = _tar({"model.pt": b"M"})
    assert extract_selected(tar, root="src/model.pt", wanted={"src/model.pt"}, dest=tmp_path / "o2") == ["src/model.pt"]
