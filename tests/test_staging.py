"""Outputs move in all together or not at all, one writer at a time, and leave nothing stale."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from coverage15 import OutputError
from coverage15.outputs import _staging as _io
from coverage15.outputs._staging import JOURNAL, MANIFEST, InterruptedAfterWrite, staged_outputs


def write(out: Path, files: dict[str, str], kind: str | None = "run") -> dict[str, Path]:
    moved: dict[str, Path] = {}
    with staged_outputs(out, moved, kind=kind) as stage:
        for name, text in files.items():
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            (stage / name).write_text(text, encoding="utf-8")
    return moved


def contents(out: Path) -> dict[str, str]:
    files = (p.relative_to(out) for p in sorted(out.rglob("*")) if p.is_file())
    return {f.as_posix(): (out / f).read_text(encoding="utf-8") for f in files
            if not any(part.startswith(".") for part in f.parts)}  # not coverage15's own


def test_files_move_in_and_are_listed_in_order(tmp_path):
    moved = write(tmp_path, {"b.csv": "1", "a.gpkg": "2", "png/x.png": "3"})
    assert list(moved) == ["a.gpkg", "b.csv", "png/x.png"]
    assert moved["png/x.png"] == tmp_path / "png" / "x.png"
    assert contents(tmp_path) == {"a.gpkg": "2", "b.csv": "1", "png/x.png": "3"}
    assert not list(tmp_path.glob(".coverage15-staging-*"))


def test_a_failed_move_restores_every_previous_output(tmp_path, monkeypatch):
    write(tmp_path, {"a.csv": "old a", "b.csv": "old b"})
    real_replace = Path.replace

    def locked_b(self, target):
        if Path(target).name == "b.csv" and ".coverage15-staging-" in str(self):
            raise PermissionError(13, "Permission denied", str(target))  # open in Excel
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", locked_b)
    with pytest.raises(OutputError, match=r"cannot write .*b\.csv.*previous outputs .* unchanged"):
        write(tmp_path, {"a.csv": "new a", "b.csv": "new b", "c.csv": "new c"})
    assert contents(tmp_path) == {"a.csv": "old a", "b.csv": "old b"}  # a.csv put back
    assert not list(tmp_path.glob(".coverage15-staging-*"))


def test_a_folder_in_a_files_place_is_refused_before_anything_moves(tmp_path):
    write(tmp_path, {"a.csv": "old a"})
    (tmp_path / "report.xlsx").mkdir()
    (tmp_path / "report.xlsx" / "mine.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(OutputError, match=r"report\.xlsx is in the way"):
        write(tmp_path, {"a.csv": "new a", "report.xlsx": "new"})
    assert contents(tmp_path) == {"a.csv": "old a", "report.xlsx/mine.txt": "keep"}


def test_outputs_a_write_no_longer_makes_are_removed(tmp_path):
    (tmp_path / "notes.txt").write_text("the user's", encoding="utf-8")
    write(tmp_path, {"map.html": "m", "png/x.png": "p", "report.csv": "r"})
    write(tmp_path, {"map-x.html": "d"}, kind="map-x")  # another kind of output
    write(tmp_path, {"report.csv": "r2"})  # run again with --no-map --no-png
    assert contents(tmp_path) == {"map-x.html": "d", "notes.txt": "the user's",
                                  "report.csv": "r2"}
    assert not (tmp_path / "png").exists()  # emptied, so removed
    record = json.loads((tmp_path / MANIFEST).read_text(encoding="utf-8"))
    assert record == {"run": ["report.csv"], "map-x": ["map-x.html"]}
    write(tmp_path, {"other.csv": "o"}, kind=None)  # no kind: nothing recorded or removed
    assert "report.csv" in contents(tmp_path)


def test_a_second_writer_waits_for_the_first(tmp_path):
    first_in, first_done, order = threading.Event(), threading.Event(), []

    def first():
        with staged_outputs(tmp_path) as stage:
            (stage / "a.csv").write_text("first", encoding="utf-8")
            first_in.set()
            first_done.wait(10)
            order.append("first done")

    def second():
        with staged_outputs(tmp_path) as stage:
            order.append("second in")
            (stage / "a.csv").write_text("second", encoding="utf-8")

    t1 = threading.Thread(target=first)
    t1.start()
    assert first_in.wait(10)
    t2 = threading.Thread(target=second)
    t2.start()
    time.sleep(0.3)
    assert order == []  # the second waits (and has not swept the first's staging folder)
    assert len(list(tmp_path.glob(".coverage15-staging-*"))) == 1
    first_done.set()
    t1.join(10)
    t2.join(10)
    assert order == ["first done", "second in"]
    assert contents(tmp_path) == {"a.csv": "second"}


def test_an_interrupted_write_changes_nothing(tmp_path):
    write(tmp_path, {"a.csv": "old"})
    def interrupted():
        with staged_outputs(tmp_path, kind="run") as stage:
            (stage / "a.csv").write_text("half", encoding="utf-8")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert contents(tmp_path) == {"a.csv": "old"}
    assert not list(tmp_path.glob(".coverage15-staging-*"))


def test_an_output_folder_that_cannot_be_made_is_one_clear_error(tmp_path):
    (tmp_path / "out").write_text("a file, not a folder", encoding="utf-8")
    with pytest.raises(OutputError, match="cannot create the output folder"):
        write(tmp_path / "out", {"a.csv": "x"})


def test_an_interrupt_right_after_a_file_moved_in_still_restores_it(tmp_path, monkeypatch):
    write(tmp_path, {"a.csv": "old a", "b.csv": "old b"})
    real_replace = Path.replace

    def interrupted_after_a(self, target):
        real_replace(self, target)
        if Path(target).name == "a.csv" and Path(self).parent.name.startswith(
                ".coverage15-staging-") and "previous" not in Path(self).parent.name:
            raise KeyboardInterrupt  # Ctrl-C right after the move

    monkeypatch.setattr(Path, "replace", interrupted_after_a)
    with pytest.raises(KeyboardInterrupt):
        write(tmp_path, {"a.csv": "new a", "b.csv": "new b", "c.csv": "new c"})
    assert contents(tmp_path) == {"a.csv": "old a", "b.csv": "old b"}
    assert not (tmp_path / JOURNAL).exists()


KILLED_MIDWAY = """
import os, sys
from pathlib import Path
from coverage15.outputs._staging import staged_outputs
out, dies_after, names = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
real_replace = Path.replace
def replace(self, target):
    result = real_replace(self, target)
    if Path(target).name == dies_after:
        os._exit(9)  # killed: no exception, no cleanup
    return result
Path.replace = replace
with staged_outputs(out, kind="run") as stage:
    for name in names:
        (stage / name).write_text("new " + name[0], encoding="utf-8")
"""


def killed_midway(out: Path, names: tuple[str, ...] = ("a.csv", "b.csv", "c.csv", "d.csv"),
                  dies_after: str = "b.csv") -> subprocess.CompletedProcess[bytes]:
    """Write ``names`` (each "new " + its first letter) in a process killed once
    ``dies_after`` has moved in."""
    return subprocess.run([sys.executable, "-c", KILLED_MIDWAY, str(out), dies_after, *names],
                          check=False)


def test_a_write_killed_midway_is_rolled_back_by_the_next_write(tmp_path, caplog):
    write(tmp_path, {"a.csv": "old a", "b.csv": "old b", "c.csv": "old c"})
    killed = killed_midway(tmp_path)
    assert killed.returncode == 9
    # a and b are new, c old, d new: a mixed set, and the journal that tells it
    assert contents(tmp_path) == {"a.csv": "new a", "b.csv": "new b", "c.csv": "old c"}
    assert (tmp_path / JOURNAL).is_file()
    with caplog.at_level(logging.WARNING, logger="coverage15"):
        write(tmp_path, {"notes.csv": "n"}, kind="other")  # the next write into the folder
    assert contents(tmp_path) == {"a.csv": "old a", "b.csv": "old b", "c.csv": "old c",
                                  "notes.csv": "n"}
    assert "was interrupted while its files moved in" in caplog.text
    assert not (tmp_path / JOURNAL).exists()
    assert not list(tmp_path.glob(".coverage15-staging-*"))


@pytest.mark.parametrize("sidecar", ["-wal", "-shm", "-journal"])
def test_a_geopackage_open_in_qgis_is_not_replaced(tmp_path, sidecar):
    write(tmp_path, {"coverage.gpkg": "old", "a.csv": "old a"})
    (tmp_path / f"coverage.gpkg{sidecar}").write_text("pending pages", encoding="utf-8")
    with pytest.raises(OutputError, match=rf"coverage\.gpkg: it is open in another program "
                                          rf"\(coverage\.gpkg{sidecar} beside it"):
        write(tmp_path, {"coverage.gpkg": "new", "a.csv": "new a"})
    assert contents(tmp_path)["coverage.gpkg"] == "old"
    assert contents(tmp_path)["a.csv"] == "old a"


def test_a_play_back_does_not_replace_a_geopackage_open_in_qgis(tmp_path):
    write(tmp_path, {"a.csv": "old a", "coverage.gpkg": "old"})
    killed = killed_midway(tmp_path, ("a.csv", "coverage.gpkg"), dies_after="coverage.gpkg")
    assert killed.returncode == 9
    assert contents(tmp_path) == {"a.csv": "new a", "coverage.gpkg": "new c"}
    (tmp_path / "coverage.gpkg-wal").write_text("pending pages", encoding="utf-8")
    with pytest.raises(OutputError, match=r"cannot put back the previous outputs .*coverage"
                                          r"\.gpkg \(open in another program: coverage\.gpkg"
                                          r"-wal beside it\)"):
        write(tmp_path, {"map.html": "m"}, kind="map")
    # nothing was put back (not even a.csv: the set stays as the journal says), none written
    assert contents(tmp_path) == {"a.csv": "new a", "coverage.gpkg": "new c",
                                  "coverage.gpkg-wal": "pending pages"}
    assert (tmp_path / JOURNAL).is_file()
    (tmp_path / "coverage.gpkg-wal").unlink()  # closed in QGIS: the next write finishes it
    write(tmp_path, {"map.html": "m"}, kind="map")
    assert contents(tmp_path) == {"a.csv": "old a", "coverage.gpkg": "old", "map.html": "m"}
    assert not (tmp_path / JOURNAL).exists()


def test_a_play_back_goes_ahead_when_the_open_geopackage_is_one_it_leaves_alone(tmp_path):
    write(tmp_path, {"a.csv": "old a", "b.csv": "old b", "coverage.gpkg": "old"})
    killed_midway(tmp_path)
    # the killed write had not reached coverage.gpkg (not one of its files): open it in QGIS
    (tmp_path / "coverage.gpkg-wal").write_text("pending pages", encoding="utf-8")
    write(tmp_path, {"map.html": "m"}, kind="map")
    assert contents(tmp_path) == {"a.csv": "old a", "b.csv": "old b", "coverage.gpkg": "old",
                                  "coverage.gpkg-wal": "pending pages", "map.html": "m"}
    assert not (tmp_path / JOURNAL).exists()


def test_an_interrupted_move_that_cannot_be_put_back_says_both(tmp_path, monkeypatch):
    write(tmp_path, {"a.gpkg": "old a", "b.csv": "old b"})
    real_replace = Path.replace

    def opened_then_interrupted(self, target):
        real_replace(self, target)
        if Path(target).name == "a.gpkg" and "previous" not in Path(self).parent.name:
            (tmp_path / "a.gpkg-wal").write_text("", encoding="utf-8")  # QGIS opens it
            raise KeyboardInterrupt  # and Ctrl-C

    monkeypatch.setattr(Path, "replace", opened_then_interrupted)
    with pytest.raises(OutputError, match=r"this write stopped \(interrupted\) with some of "
                                          r"its files in place, and cannot put back .*a\.gpkg "
                                          r"\(open in another program.*next write"):
        write(tmp_path, {"a.gpkg": "new a", "b.csv": "new b"})
    assert (tmp_path / JOURNAL).is_file()
    monkeypatch.setattr(Path, "replace", real_replace)
    (tmp_path / "a.gpkg-wal").unlink()  # closed in QGIS
    write(tmp_path, {"map.html": "m"}, kind="map")
    assert contents(tmp_path) == {"a.gpkg": "old a", "b.csv": "old b", "map.html": "m"}


def test_writes_are_counted_so_a_caller_knows_what_it_wrote(tmp_path):
    write(tmp_path / "x", {"a.csv": "1"})
    write(tmp_path / "x", {"a.csv": "2"})  # the same folder twice
    mark = _io.write_count()
    assert _io.written_since(mark) == []
    write(tmp_path / "y", {"a.csv": "1"})
    write(tmp_path / "x", {"a.csv": "3"})
    assert _io.written_since(mark) == [tmp_path / "y", tmp_path / "x"]

    def interrupted() -> None:
        with staged_outputs(tmp_path / "z", kind="run") as stage:
            (stage / "a.csv").write_text("never", encoding="utf-8")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert _io.written_since(mark) == [tmp_path / "y", tmp_path / "x"]


def test_a_failed_write_of_the_outputs_is_one_clear_error(tmp_path):
    write(tmp_path, {"a.csv": "old a"})

    def disk_full():
        with staged_outputs(tmp_path, kind="run") as stage:
            (stage / "a.csv").write_text("new a", encoding="utf-8")
            raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match=r"cannot write the outputs into .*: No space left on "
                                          r"device; the previous outputs there are unchanged"):
        disk_full()
    assert contents(tmp_path) == {"a.csv": "old a"}


def test_an_output_folder_without_room_for_staging_is_one_clear_error(tmp_path, monkeypatch):
    import tempfile

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    with pytest.raises(OutputError, match=r"cannot write into the output folder .*Permission"):
        write(tmp_path, {"a.csv": "x"})


def test_a_roll_back_that_cannot_finish_keeps_its_journal_and_says_so(tmp_path, monkeypatch):
    write(tmp_path, {"a.csv": "old a", "b.csv": "old b", "c.csv": "old c"})
    killed_midway(tmp_path)
    real_replace = Path.replace

    def a_is_open(self, target):
        if Path(target).name == "a.csv":
            raise PermissionError(13, "Permission denied", str(target))  # open in Excel
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", a_is_open)
    with pytest.raises(OutputError, match=r"cannot put back the previous outputs .*a\.csv "
                                          r"\(Permission denied\)"):
        write(tmp_path, {"map.html": "m"}, kind="map")
    assert (tmp_path / JOURNAL).is_file()  # kept, with the previous versions, for next time
    assert not (tmp_path / "map.html").exists()
    monkeypatch.setattr(Path, "replace", real_replace)
    write(tmp_path, {"map.html": "m"}, kind="map")  # closed in Excel: now it finishes
    assert contents(tmp_path) == {"a.csv": "old a", "b.csv": "old b", "c.csv": "old c",
                                  "map.html": "m"}


def test_an_interrupt_once_the_files_are_in_place_says_they_are_complete(tmp_path,
                                                                         monkeypatch):
    import signal

    write(tmp_path, {"a.csv": "old a", "png/x.png": "old"})
    real_record = _io._record

    def interrupted_record(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C while the write is being recorded
        real_record(*args, **kwargs)

    monkeypatch.setattr(_io, "_record", interrupted_record)
    with pytest.raises(InterruptedAfterWrite):
        write(tmp_path, {"a.csv": "new a"})
    assert contents(tmp_path) == {"a.csv": "new a"}  # new, whole, and the stale PNG gone
    record = json.loads((tmp_path / MANIFEST).read_text(encoding="utf-8"))
    assert record == {"run": ["a.csv"]}
    assert not list(tmp_path.glob(".coverage15-*staging*"))
