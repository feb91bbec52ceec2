"""core.video on small generated videos: counts, timestamps, ranges, rotation, odd paths and clear errors."""

import struct
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.video import Frame, VideoError, open_video

W, H = 64, 48


def paint(i: int, size=(W, H)) -> np.ndarray:
    """Frame i: its number in binary as 8 black/white bars across the lower half, a red top-left corner."""
    w, h = size
    image = np.full((h, w, 3), 128, np.uint8)
    for bit in range(8):
        image[h // 2:, bit * w // 8:(bit + 1) * w // 8] = 235 if (i >> bit) & 1 else 20
    image[: h // 4, : w // 4] = (0, 0, 255)
    return image


def write_video(path: Path, n: int, fps: float = 25.0, fourcc: str = "mp4v", size=(W, H)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        pytest.skip(f"this OpenCV cannot write {fourcc} {path.suffix}")
    for i in range(n):
        writer.write(paint(i, size))
    writer.release()
    return path


def frame_number(frame: Frame) -> int:
    """Which painted frame this is, read back from its bars (centre of each bar, robust to codecs)."""
    h, w = frame.image.shape[:2]
    row = frame.image[3 * h // 4, :, 1].astype(int)
    return sum(1 << bit for bit in range(8) if row[bit * w // 8 + w // 16] > 128)


@pytest.mark.parametrize("suffix,fourcc", [(".mp4", "mp4v"), (".avi", "MJPG"), (".mkv", "MJPG"),
                                           (".webm", "VP80")])
def test_counts_timestamps_and_content(tmp_path, suffix, fourcc):
    path = write_video(tmp_path / f"clip{suffix}", 20, fps=25, fourcc=fourcc)
    video = open_video(path)
    assert (video.width, video.height) == (W, H)
    assert video.fps == pytest.approx(25, rel=1e-3)
    frames = list(video)
    assert [f.index for f in frames] == list(range(20))
    assert video.frame_count in (20, 21)  # some containers' counts are estimates
    assert video.duration == pytest.approx(video.frame_count / 25, rel=1e-6)
    assert np.allclose([f.timestamp_s for f in frames], np.arange(20) / 25, atol=2e-3)
    assert [frame_number(f) for f in frames] == list(range(20))
    assert all(f.image.shape == (H, W, 3) and f.image.dtype == np.uint8 for f in frames)


def test_range_and_stride(tmp_path):
    path = write_video(tmp_path / "clip.mp4", 30, fps=30)
    video = open_video(path, start=5, stop=17, stride=3)
    frames = list(video)
    assert [f.index for f in frames] == [5, 8, 11, 14]
    assert video.frame_count == 4
    assert [frame_number(f) for f in frames] == [5, 8, 11, 14]
    assert np.allclose([f.timestamp_s for f in frames], np.array([5, 8, 11, 14]) / 30, atol=2e-3)
    # stop past the end and a stride that does not divide the length
    assert [f.index for f in open_video(path, start=25, stop=100, stride=2)] == [25, 27, 29]
    # re-iterable: a second pass gives the same frames
    assert [f.index for f in video] == [5, 8, 11, 14]


def test_far_start_seeks_to_the_right_frame(tmp_path):
    path = write_video(tmp_path / "long.mp4", 160, fps=30)
    frames = list(open_video(path, start=140, stop=150, stride=4))
    assert [f.index for f in frames] == [140, 144, 148]
    assert [frame_number(f) for f in frames] == [140, 144, 148]
    assert frames[0].timestamp_s == pytest.approx(140 / 30, abs=2e-3)


def test_one_frame_video(tmp_path):
    video = open_video(write_video(tmp_path / "one.mp4", 1))
    frames = list(video)
    assert len(frames) == 1 and frames[0].index == 0 and frames[0].timestamp_s == 0.0
    assert video.frame_count == 1


def test_prefetch_thread_matches_and_stops_early(tmp_path):
    path = write_video(tmp_path / "clip.mp4", 40)
    plain = [(f.index, f.image.sum()) for f in open_video(path, prefetch=0)]
    threaded = [(f.index, f.image.sum()) for f in open_video(path, prefetch=3)]
    assert plain == threaded
    before = threading.active_count()
    for frame in open_video(path, prefetch=2):
        if frame.index == 3:
            break  # the generator is closed here; its decode thread must end
    assert threading.active_count() == before


def rotate_tag(path: Path, out: Path) -> Path:
    """Copy an mp4 with its track's display matrix set to a 90 degree rotation (as phones write it)."""
    data = bytearray(path.read_bytes())
    k = data.find(b"tkhd")
    version = data[k + 4]
    matrix = k + 8 + (32 if version == 1 else 20) + 16  # after times/ids/duration, reserved, layer..volume
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    out.write_bytes(bytes(data))
    return out


def test_rotation_metadata_is_applied(tmp_path):
    path = rotate_tag(write_video(tmp_path / "clip.mp4", 5), tmp_path / "rotated.mp4")
    video = open_video(path)
    assert video.rotation == 90
    assert (video.width, video.height) == (H, W)
    frame = next(iter(video))
    assert frame.image.shape == (W, H, 3)
    # Turned clockwise: the red corner moves from top-left to top-right.
    assert frame.image[3, -3, 2] > 200 and frame.image[3, -3, 1] < 60
    assert not (frame.image[3, 3, 2] > 200 and frame.image[3, 3, 1] < 60)


def test_non_ascii_path(tmp_path):
    folder = tmp_path / "ünïcødé 映像"
    folder.mkdir()
    path = write_video(folder / "clip.mp4", 6)
    frames = list(open_video(path))
    assert len(frames) == 6 and frames[0].image.shape == (H, W, 3)


def test_clear_errors(tmp_path):
    with pytest.raises(VideoError, match="not found"):
        open_video(tmp_path / "missing.mp4")
    with pytest.raises(VideoError, match="not a file"):
        open_video(tmp_path)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        open_video(tmp_path / "empty.mp4")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    with pytest.raises(VideoError, match="could not open"):
        open_video(tmp_path / "noise.mp4")
    (tmp_path / "text.avi").write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match="could not open"):
        open_video(tmp_path / "text.avi")
    path = write_video(tmp_path / "clip.mp4", 5)
    with pytest.raises(VideoError, match="bad frame range"):
        open_video(path, start=3, stop=2)
    with pytest.raises(VideoError, match="bad frame range"):
        open_video(path, stride=0)
    with pytest.raises(VideoError, match="no frame at 50"):
        open_video(path, start=50)


def test_no_decodable_frames(tmp_path):
    # A valid container whose picture data is zeroed: it opens, lists 5 frames, and none decodes.
    data = bytearray(write_video(tmp_path / "clip.mp4", 5).read_bytes())
    k = data.find(b"mdat")
    size = struct.unpack(">I", data[k - 4:k])[0]
    data[k + 4:k - 4 + size] = bytes(size - 8)
    (tmp_path / "zeroed.mp4").write_bytes(bytes(data))
    with pytest.raises(VideoError, match="no decodable frames"):
        open_video(tmp_path / "zeroed.mp4")


def test_real_clip_portrait_size():
    path = Path(__file__).resolve().parents[2] / ".." / "shared" / "media" / "clips" / "liveportrait_driving_d13.mp4"
    if not path.exists():
        pytest.skip("shared clip absent")
    video = open_video(path, stop=3)
    assert (video.width, video.height) == (720, 1280)
    assert video.fps == pytest.approx(30, rel=1e-3) and video.source_frame_count == 352
    assert [f.image.shape for f in video] == [(1280, 720, 3)] * 3


def _stderr_of(code: str) -> str:
    """stderr of a fresh interpreter (its own file descriptor 2, where FFmpeg writes) in the repository root."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stderr.decode(errors="replace")


@pytest.mark.parametrize("name", ["cut.mp4", "cüt é.mp4"])
def test_a_broken_file_says_only_our_message(tmp_path, name):
    """A truncated mp4 (no index): FFmpeg's and OpenCV's own lines ("moov atom not found") are not passed on
    where the file cannot be opened; the user gets one clear message."""
    whole = write_video(tmp_path / "whole.mp4", 20)
    cut = tmp_path / name
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    err = _stderr_of(
        "import sys\n"
        "from core.video import VideoError, open_video\n"
        "try:\n"
        f"    open_video({str(cut)!r})\n"
        "except VideoError as e:\n"
        "    print('likeness:', e, file=sys.stderr)\n")
    assert err.splitlines() == [f"likeness: could not open {cut}: not a video file, or a format OpenCV's FFmpeg "
                                "cannot read"]


def test_native_lines_of_a_good_file_are_passed_on():
    """stderr_held writes out what it held when nothing discarded it, less the lines its pattern drops."""
    err = _stderr_of(
        "import os, re\n"
        "from core.nativelog import stderr_held\n"
        "with stderr_held(drop=re.compile(rb'noise')):\n"
        "    os.write(2, b'noise line\\n')\n"
        "    os.write(2, b'[h264] something worth knowing\\n')\n"
        "with stderr_held() as held:\n"
        "    os.write(2, b'gone\\n')\n"
        "    held.discard()\n"
        "os.write(2, b'after\\n')\n")
    assert err.splitlines() == ["[h264] something worth knowing", "after"]


def test_threads_holding_stderr_at_once_leave_it_where_it_was():
    """Descriptor 2 is the process's: blocks on several threads take turns, and it ends on the terminal again."""
    err = _stderr_of(
        "import os, threading, time\n"
        "from core.nativelog import stderr_held\n"
        "def worker(k):\n"
        "    for _ in range(20):\n"
        "        with stderr_held() as held:\n"
        "            os.write(2, b'x\\n'); time.sleep(0.001); held.discard()\n"
        "threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "os.write(2, b'after\\n')\n")
    assert err.splitlines() == ["after"]
