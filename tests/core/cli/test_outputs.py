"""The commands refuse an output they cannot write before the long work, with a message and no traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.cli import main

CLIP = str(Path(__file__).resolve().parents[4] / "shared" / "media" / "clips" / "liveportrait_driving_d3.mp4")


@pytest.fixture
def blocker(tmp_path):
    """A file where the output's folder should be: no one can write under it (root included)."""
    f = tmp_path / "file.txt"
    f.write_text("not a folder")
    return f


@pytest.mark.parametrize("argv", [
    ["capture", CLIP, "-o", "{b}/out.npz"],
    ["capture", CLIP, "-o", "{t}/ok.npz", "--csv", "{b}/out.csv"],
    ["capture", CLIP, "-o", "{t}/ok.npz", "--overlay", "{b}/looks"],
    ["model", CLIP, "{t}/missing.npz", "-o", "{b}/person.npz"],
    ["convert", "{t}/missing.npz", "{b}/out.csv"],
])
def test_unwritable_output_is_refused_up_front(argv, blocker, tmp_path, capsys):
    argv = [a.format(b=blocker, t=tmp_path) for a in argv]
    t0 = time.perf_counter()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and str(blocker) in err and "Traceback" not in err
    assert time.perf_counter() - t0 < 5  # before the video was read, let alone tracked
    assert not (tmp_path / "ok.npz").exists()


def test_an_output_folder_is_made_where_missing(tmp_path):
    from core.cli import writable_output

    out = writable_output(tmp_path / "a" / "b" / "cap.npz")
    assert out.parent.is_dir()


def test_a_late_os_error_is_a_message_not_a_traceback(monkeypatch, tmp_path, capsys):
    """Disk full or a folder removed mid-run: the system's words and a non-zero exit."""
    from core.cli import convert

    def fail(args):
        raise OSError(28, "No space left on device", str(tmp_path / "out.csv"))

    monkeypatch.setattr(convert, "run", fail)
    assert main(["convert", "a.npz", str(tmp_path / "out.csv")]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "out.csv" in err and "Traceback" not in err
