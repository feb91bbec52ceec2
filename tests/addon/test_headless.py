"""tools/blender_batch.py (the headless job) through the bpy module, as `blender -b --python` runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")
ROOT = Path(__file__).resolve().parents[2]


def batch(*args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "blender_batch.py"), "--", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_saved_capture_to_blend(model, make_capture, tmp_path):
    capture = make_capture(model.expression_names, frames=8, untracked=(2,), start_frame=30)
    path = capture.save(tmp_path / "capture.npz")
    out = tmp_path / "out" / "head.blend"
    r = batch("--capture", str(path), "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.is_file() and "7 keyed frames" in r.stdout

    bpy.ops.wm.open_mainfile(filepath=str(out))
    head = bpy.data.objects["Likeness Head"]
    assert len(head.data.shape_keys.key_blocks) == 53
    # Video frame 30 is scene frame 31: a movie clip starting at frame 1 lines up with the keys.
    assert (bpy.context.scene.frame_start, bpy.context.scene.frame_end) == (31, 38)
    assert [o.name for o in bpy.data.objects] == ["Likeness Camera", "Likeness Head"]


@pytest.mark.parametrize("args, message", [
    (["--video", "/no/such/clip.mp4"], "video not found: /no/such/clip.mp4"),
    (["--capture", "/no/such/capture.npz"], "no such capture file"),
    ([], "give --video or --capture"),
])
def test_bad_input_exits_non_zero_with_the_message(args, message, tmp_path):
    out = tmp_path / "x.blend"
    r = batch(*args, "--out", str(out))
    assert r.returncode != 0
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_an_unwritable_out_is_refused_before_the_capture(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    video = ROOT.parent / "shared" / "media" / "clips" / "liveportrait_driving_d3.mp4"
    r = batch("--video", str(video), "--out", str(blocker / "head.blend"), timeout=120)
    assert r.returncode != 0
    assert "cannot write the .blend" in r.stderr and "Traceback" not in r.stderr
    assert "landmarks" not in r.stdout  # refused up front: no capture ran


def test_personalize_on_a_too_short_clip_builds_the_generic_head_and_says_so(model, tmp_path):
    """--personalize where the person cannot be modeled (3 frames): the .blend is written with the generic
    head, the reason is said, and the exit code says the model asked for was not made."""
    video = ROOT.parent / "shared" / "media" / "clips" / "liveportrait_driving_d3.mp4"
    out = tmp_path / "short.blend"
    r = batch("--video", str(video), "--end", "2", "--personalize", "--out", str(out))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "no personal model, the head is the generic one: a personal model needs at least 5 frames" in r.stderr
    assert out.is_file() and "3 keyed frames" in r.stdout
