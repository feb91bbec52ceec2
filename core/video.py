"""Video decoding: stream frames with real timestamps, rotation applied, a frame range and a stride."""

from __future__ import annotations

import math
import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .nativelog import stderr_held

# Seeking costs a keyframe search; decoding forward is cheaper for short skips.
_SEEK_AFTER = 120


class VideoError(RuntimeError):
    """The video cannot be read; the message is meant for the user."""


@dataclass
class Frame:
    index: int  # frame number in the file, 0-based
    timestamp_s: float  # presentation time from the container (variable frame rate safe)
    image: np.ndarray  # (H, W, 3) BGR uint8, rotation metadata applied


def _capture(path: str) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if cap.isOpened():
        # OpenCV 4.11 reads the rotation tag but leaves ORIENTATION_AUTO off (measured): turn it on so
        # phone videos come out upright, and frame sizes then already include the rotation.
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


class VideoReader:
    """A re-iterable stream of `Frame`s over [start, stop) every `stride` frames; never holds the clip.

    prefetch > 0 decodes on a background thread into a queue of that many frames (decode then overlaps
    with the landmark work of the consumer); 0 decodes on the caller's thread.
    """

    def __init__(self, path: str | os.PathLike, start: int = 0, stop: int | None = None, stride: int = 1,
                 prefetch: int = 4):
        self.path = Path(path)
        if start < 0 or (stop is not None and stop < start) or stride < 1:
            raise VideoError(f"bad frame range: start={start}, stop={stop}, stride={stride} "
                             "(need 0 <= start <= stop and stride >= 1)")
        self.start, self.stop, self.stride, self.prefetch = int(start), stop, int(stride), int(prefetch)
        # FFmpeg and OpenCV explain a file they cannot open on stderr ("moov atom not found", "can't be used to
        # capture by name"); where it failed our message below says it for the user and theirs is dropped.
        with stderr_held() as native:
            self._open_path = self._check_file()
            cap = _capture(self._open_path)
            if not cap.isOpened():
                native.discard()
        try:
            if not cap.isOpened():
                raise VideoError(f"could not open {self.path}: not a video file, or a format OpenCV's FFmpeg "
                                 "cannot read")
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else 30.0
            self.source_frame_count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
            self.rotation = int(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)
            self._seek(cap, self.start)
            ok, first = cap.read()
            if not ok or first is None:
                if self.start > 0 and self.source_frame_count:
                    raise VideoError(f"{self.path} has no frame at {self.start} "
                                     f"(about {self.source_frame_count} frames)")
                raise VideoError(f"{self.path} has no decodable frames (damaged or unsupported video)")
            # From the delivered frame, so rotation is always accounted for.
            self.height, self.width = first.shape[:2]
        finally:
            cap.release()

    def _check_file(self) -> str:
        if not self.path.exists():
            raise VideoError(f"video file not found: {self.path}")
        if not self.path.is_file():
            raise VideoError(f"not a file: {self.path}")
        if self.path.stat().st_size == 0:
            raise VideoError(f"video file is empty (0 bytes): {self.path}")
        path = str(self.path)
        if path.isascii() or _opens(path):
            return path
        # Some builds (FFmpeg on Windows) cannot open non-ASCII paths: try an ASCII-named link instead.
        link = _ascii_link(self.path)
        if link is None:
            raise VideoError(f"could not open {self.path}: its name has non-ASCII characters that this "
                             "system's video decoder cannot read; rename the file or its folder")
        return link if _opens(link) else path

    @staticmethod
    def _seek(cap: cv2.VideoCapture, start: int) -> None:
        if start > _SEEK_AFTER:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        else:
            for _ in range(start):
                if not cap.grab():
                    break

    @property
    def frame_count(self) -> int:
        """Frames this reader will yield, estimated from the container's count (exact for most files)."""
        end = self.source_frame_count if self.stop is None else min(self.stop, self.source_frame_count or self.stop)
        return max(0, len(range(self.start, end, self.stride)))

    @property
    def duration(self) -> float:
        """Seconds of the whole file, from its frame count and rate."""
        return self.source_frame_count / self.fps if self.fps else 0.0

    def _frames(self, stop_event: threading.Event | None = None) -> Iterator[Frame]:
        cap = _capture(self._open_path)
        try:
            self._seek(cap, self.start)
            index = self.start
            while self.stop is None or index < self.stop:
                if stop_event is not None and stop_event.is_set():
                    return
                ok, image = cap.read()
                if not ok or image is None:
                    return
                timestamp = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if not math.isfinite(timestamp) or (timestamp == 0 and index > 0):
                    timestamp = index / self.fps
                yield Frame(index, timestamp, image)
                for _ in range(self.stride - 1):  # grab() decodes but skips the colour conversion
                    index += 1
                    if (self.stop is not None and index >= self.stop) or not cap.grab():
                        return
                index += 1
        finally:
            cap.release()

    def __iter__(self) -> Iterator[Frame]:
        if self.prefetch <= 0:
            yield from self._frames()
            return
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop_event = threading.Event()
        done = object()

        def put(item) -> bool:
            while not stop_event.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def worker():
            try:
                for frame in self._frames(stop_event):
                    if not put(frame):
                        return
                put(done)
            except BaseException as e:  # handed to the consumer, raised there
                put(e)

        thread = threading.Thread(target=worker, name="likeness-decode", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # The consumer may stop early (cancel, error): let the worker go and close the file.
            stop_event.set()
            thread.join(timeout=5)

    def __repr__(self) -> str:
        return (f"VideoReader({str(self.path)!r}, {self.width}x{self.height}, {self.fps:.3f} fps, "
                f"~{self.frame_count} frames, start={self.start}, stop={self.stop}, stride={self.stride})")


def _opens(path: str) -> bool:
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    ok = cap.isOpened()
    cap.release()
    return ok


def _ascii_link(path: Path) -> str | None:
    """A hard link (else a symlink) with an ASCII name to `path`, in a temporary folder; None if impossible."""
    folder = Path(tempfile.mkdtemp(prefix="likeness-video-"))
    target = folder / ("video" + "".join(c for c in path.suffix if c.isascii()))
    for make in (os.link, os.symlink):
        try:
            make(path, target)
            return str(target)
        except OSError:
            continue
    return None


def open_video(path: str | os.PathLike, start: int = 0, stop: int | None = None, stride: int = 1,
               prefetch: int = 4) -> VideoReader:
    """Open a video for streaming; raises VideoError with a message for the user when it cannot be read."""
    return VideoReader(path, start, stop, stride, prefetch)
