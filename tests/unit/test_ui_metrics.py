"""Metrics read from what an experiment wrote: CSV with a header, JSON lines, TensorBoard event files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runner.model import ExpState
from runner.ui.metrics import read_metrics
from runner.ui.views import RunRow, RunsQuery


def by_name(folder: Path) -> dict[str, tuple[str, list[float], list[float]]]:
    return {s.name: (s.x_label, s.x, s.y) for s in read_metrics(folder)}


def test_lightning_style_csv_skips_empty_cells_and_uses_step(tmp_path: Path) -> None:
    (tmp_path / "lightning_logs" / "version_0").mkdir(parents=True)
    (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").write_text(
        "epoch,step,train_loss,val_loss,note\n0,0,2.5,,a\n0,1,2.0,,b\n0,1,,1.75,c\n1,2,1.5,,d\n"
    )
    m = by_name(tmp_path)
    assert m == {"train_loss": ("step", [0.0, 1.0, 2.0], [2.5, 2.0, 1.5]), "val_loss": ("step", [1.0], [1.75])}


def test_csv_without_header_or_step(tmp_path: Path) -> None:
    (tmp_path / "raw.csv").write_text("1,2\n3,4\n")  # no header: nothing to name a metric by
    (tmp_path / "m.csv").write_text("loss,acc\n0.5,0.1\nnan,0.2\n0.25,0.3\n")
    assert by_name(tmp_path) == {
        "loss": ("row", [0.0, 2.0], [0.5, 0.25]),
        "acc": ("row", [0.0, 1.0, 2.0], [0.1, 0.2, 0.3]),
    }


def test_jsonl_numbers_only_and_bad_lines_skipped(tmp_path: Path) -> None:
    (tmp_path / "log.jsonl").write_text(
        '{"epoch": 1, "loss": 0.9, "tag": "x", "ok": true}\nnot json\n[1, 2]\n{"epoch": 2, "loss": 0.5, "lr": 0.1}\n'
    )
    assert by_name(tmp_path) == {"loss": ("epoch", [1.0, 2.0], [0.9, 0.5]), "lr": ("epoch", [2.0], [0.1])}


def test_same_name_in_two_files_keeps_both(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("step,loss\n0,1\n")
    (tmp_path / "b.jsonl").write_text('{"step": 0, "loss": 2}\n')
    assert set(by_name(tmp_path)) == {"loss", "loss [b.jsonl]"}


def test_other_files_are_not_read(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("step,loss\n0,1\n")
    (tmp_path / "data.json").write_text('{"step": 0, "loss": 1}\n')
    assert read_metrics(tmp_path) == []


def test_tensorboard_scalars(tmp_path: Path) -> None:
    # written with TensorBoard's own writer, as SummaryWriter (torch, tensorboardX) writes them
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    run_dir = tmp_path / "runs" / "Dec04_12-00-00_host"
    writer = EventFileWriter(str(run_dir))
    for step in range(4):
        values = [summary_pb2.Summary.Value(tag="train/loss", simple_value=1.0 / (step + 1))]
        writer.add_event(
            event_pb2.Event(step=step * 10, wall_time=time.time(), summary=summary_pb2.Summary(value=values))
        )
    writer.close()
    label, x, y = by_name(tmp_path)["train/loss"]
    assert (label, x) == ("step", [0.0, 10.0, 20.0, 30.0])
    assert y == pytest.approx([1.0, 0.5, 1 / 3, 0.25])


def row(name: str, status: str, target: str, started: float) -> RunRow:
    counts = {s.value: 0 for s in ExpState}
    return RunRow(
        name=name,
        project="p",
        status=status,
        active=status == "running",
        target=target,
        started=started,
        duration=10 - started,
        experiments=int(started),
        counts=counts,
    )


def test_runs_filter_and_sort() -> None:
    rows = [
        row("a-1", "completed", "local", 1),
        row("b-2", "running", "kubernetes", 2),
        row("c-3", "failed", "local", 3),
    ]
    assert [r.name for r in RunsQuery.parse({}).apply(rows)] == ["c-3", "b-2", "a-1"]
    assert [r.name for r in RunsQuery.parse({"target": "local", "order": "asc"}).apply(rows)] == ["a-1", "c-3"]
    assert [r.name for r in RunsQuery.parse({"status": "active"}).apply(rows)] == ["b-2"]
    assert [r.name for r in RunsQuery.parse({"q": "C-"}).apply(rows)] == ["c-3"]
    assert [r.name for r in RunsQuery.parse({"sort": "duration", "order": "asc"}).apply(rows)] == ["c-3", "b-2", "a-1"]
    assert RunsQuery.parse({"sort": "nonsense; drop", "status": "<x>"}) == RunsQuery()
