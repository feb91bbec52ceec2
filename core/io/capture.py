"""Capture: the result of tracking one face through a video, saved as .npz (no pickle) plus readable .json."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .framefile import release_pages

FORMAT_VERSION = 1
SAVE_BLOCK = 1 << 22  # bytes of a memory-mapped array written at a time


class CaptureFileError(ValueError):
    """A capture file is missing, not a capture, or inconsistent; the message says which."""


@dataclass
class Capture:
    """Per-frame face tracking result. Camera space is right-handed, Y up, looking down -Z (metres).

    The head's model-space vertices v map to camera space as R @ v + translation, with
    R = Rz @ Ry @ Rx from `rotation` (degrees, XYZ Euler as Blender's XYZ mode and scipy's 'xyz').
    """

    names: tuple[str, ...]  # (shapes,) ICT blendshape names
    weights: np.ndarray  # (frames, shapes) float32 in [0, 1]
    tracked: np.ndarray  # (frames,) bool: False where no face was found (other arrays hold a hold-over)
    rotation: np.ndarray  # (frames, 3) degrees
    translation: np.ndarray  # (frames, 3) metres
    timestamps: np.ndarray  # (frames,) seconds from the video start
    fps: float
    image_size: tuple[int, int]  # (width, height) pixels, after rotation metadata
    focal: float  # pixels; principal point at the image centre
    identity: np.ndarray = field(default_factory=lambda: np.zeros(100, np.float32))  # (100,)
    gaze: np.ndarray | None = None  # (frames, 2, 2) degrees: [left, right] eye x [yaw, pitch]
    lighting: np.ndarray | None = None  # (frames, 9, 3) second-order SH per RGB channel
    confidence: np.ndarray | None = None  # (frames,) 0..1
    # (frames, points, 2) detector points in pixels; from a capture, a read-only np.memmap of a temporary file
    landmarks: np.ndarray | None = None
    frame_indices: np.ndarray | None = None  # (frames,) index of each sample in the source video
    metadata: dict = field(default_factory=dict)  # source video, backend, versions, personal model, ...

    def __post_init__(self):
        n = len(self.weights)
        self.names = tuple(self.names)
        self.weights = np.asarray(self.weights, np.float32)
        self.tracked = np.asarray(self.tracked, bool)
        self.rotation = np.asarray(self.rotation, np.float32)
        self.translation = np.asarray(self.translation, np.float32)
        self.timestamps = np.asarray(self.timestamps, np.float64)
        self.identity = np.asarray(self.identity, np.float32)
        if self.confidence is None:
            self.confidence = self.tracked.astype(np.float32)
        if self.frame_indices is None:
            self.frame_indices = np.arange(n)
        if self.weights.ndim != 2 or self.weights.shape[1] != len(self.names):
            raise CaptureFileError(f"weights {self.weights.shape} do not match {len(self.names)} names")
        for key in ("tracked", "rotation", "translation", "timestamps"):
            if len(getattr(self, key)) != n:
                raise CaptureFileError(f"{key} has {len(getattr(self, key))} frames, weights have {n}")

    @property
    def n_frames(self) -> int:
        return len(self.weights)

    def save(self, path: str | Path) -> Path:
        """Write PATH.npz and PATH.json beside it; returns the .npz path."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        arrays = {
            "names": np.array(self.names), "weights": self.weights, "tracked": self.tracked,
            "rotation": self.rotation, "translation": self.translation, "timestamps": self.timestamps,
            "identity": self.identity, "confidence": self.confidence, "frame_indices": self.frame_indices,
        }
        for key in ("gaze", "lighting", "landmarks"):
            if getattr(self, key) is not None:
                arrays[key] = getattr(self, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        _savez_compressed(path, arrays)
        meta = {"format": "likeness.capture", "version": FORMAT_VERSION, "fps": self.fps,
                "image_size": list(self.image_size), "focal": self.focal, "frames": self.n_frames,
                "tracked_frames": int(self.tracked.sum()), **self.metadata}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Capture:
        path = Path(path)
        if not path.exists():
            raise CaptureFileError(f"{path}: no such capture file")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # zipfile/ValueError/OSError: all mean "not a capture"
            raise CaptureFileError(f"{path}: not a readable capture .npz ({e})") from e
        missing = {"names", "weights", "tracked", "rotation", "translation", "timestamps"} - set(arrays)
        if missing:
            raise CaptureFileError(f"{path}: not a capture (missing {', '.join(sorted(missing))})")
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        fps = float(meta.pop("fps", 0.0)) or _fps_from_timestamps(arrays["timestamps"])
        size = tuple(meta.pop("image_size", (0, 0)))
        focal = float(meta.pop("focal", 0.0))
        for k in ("format", "version", "frames", "tracked_frames"):
            meta.pop(k, None)
        return cls(names=tuple(str(n) for n in arrays.pop("names")), fps=fps, image_size=size, focal=focal,
                   metadata=meta, **arrays)


def _savez_compressed(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed (the same file), writing a memory-mapped array a block of rows at a time.

    Such an array (a long capture's landmarks) has the pages read for each block let go after it, so saving
    does not pull it whole into memory.
    """
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for key, value in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as f:
                if not isinstance(value, np.memmap) or value.ndim == 0:
                    np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
                    continue
                header = np.lib.format.header_data_from_array_1_0(value) | {"fortran_order": False}
                np.lib.format.write_array_header_1_0(f, header)
                rows = max(1, SAVE_BLOCK // max(value[:1].nbytes, 1))
                for a in range(0, len(value), rows):
                    f.write(np.ascontiguousarray(value[a:a + rows]).tobytes())
                    release_pages(value)


def _fps_from_timestamps(t: np.ndarray) -> float:
    return float(1.0 / np.median(np.diff(t))) if len(t) > 1 else 30.0
