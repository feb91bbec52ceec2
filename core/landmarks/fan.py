"""FAN (face-alignment 2DFAN-4, 68 iBUG points): the optional accurate backend, boxed by MediaPipe.

face-alignment fetches its weights on first use and needs an s3fd detector (more weights). Here the weights
go into our own cache folder (downloaded once from face-alignment's URL, or put there by hand when offline),
the network is face-alignment's own FAN class with load_state_dict, and the face box comes from the
MediaPipe tracker (detector on the first frame only), so no second detector is needed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import cv2
import numpy as np

from .base import FaceLandmarks, LandmarkBackendError, frame_image

# face_alignment.api.models_urls['2DFAN-4'] of face-alignment 1.5.0.
FAN_URL = "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar"
N_POINTS = 68


def default_weights_dir() -> Path:
    """<the Likeness cache folder>/fan (the same folder rules as the face-model cache)."""
    from ..facemodel.cache import default_cache_dir

    return default_cache_dir() / "fan"


def weights_path(url: str = FAN_URL, cache_dir: str | os.PathLike | None = None) -> Path:
    folder = Path(cache_dir) if cache_dir else default_weights_dir()
    return folder / os.path.basename(urlparse(url).path)


def fetch_weights(url: str = FAN_URL, cache_dir: str | os.PathLike | None = None) -> Path:
    """The local weights file, downloaded on first use; LandmarkBackendError with what to do when offline."""
    path = weights_path(url, cache_dir)
    if path.exists():
        return path
    import torch.hub

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".part{os.getpid()}")
    try:
        torch.hub.download_url_to_file(url, str(partial), progress=False)
        os.replace(partial, path)
    except Exception as e:  # URLError, HTTPError, OSError, ... all mean the same to the user
        partial.unlink(missing_ok=True)
        raise LandmarkBackendError(
            f"could not download the FAN landmark weights from {url} ({e}); without internet, download "
            f"that file elsewhere and put it at {path}") from e
    return path


def load_fan(path: str | os.PathLike, num_modules: int = 4, device: str = "cpu"):
    """face_alignment's FAN network with the state dict from `path`, in eval mode."""
    import torch
    from face_alignment.models import FAN

    net = FAN(num_modules)
    try:
        state = torch.load(str(path), map_location=device, weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    except Exception as e:
        raise LandmarkBackendError(f"the FAN weights file {path} could not be loaded ({e}); delete it so it is "
                                   "downloaded again, or put a good copy there") from e
    return net.to(device).eval()


def decode_heatmaps(heat: np.ndarray, center: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """heat (68, R, R) -> (68, 2) image pixels and (68,) peak values.

    face_alignment.utils.get_preds_fromhm in numpy: its numba version costs ~16 s of compiling on first use
    here. Same rule (peak, quarter-pixel step towards the larger neighbour, crop -> image), without its
    final rounding to whole pixels.
    """
    n, res, _ = heat.shape
    flat = heat.reshape(n, -1)
    idx = flat.argmax(axis=1)
    scores = flat[np.arange(n), idx]
    py, px = np.divmod(idx, res)
    pts = np.stack([px, py], axis=1).astype(np.float64)
    inner = (px > 0) & (px < res - 1) & (py > 0) & (py < res - 1)
    i, x, y = np.arange(n)[inner], px[inner], py[inner]
    pts[inner, 0] += 0.25 * np.sign(heat[i, y, x + 1] - heat[i, y, x - 1])
    pts[inner, 1] += 0.25 * np.sign(heat[i, y + 1, x] - heat[i, y - 1, x])
    pts += 0.5  # upstream: 1-based peak, then -0.5
    h = 200.0 * scale  # the crop's side in image pixels (face_alignment.utils.transform)
    return ((pts - 0.5 * res) * (h / res) + center).astype(np.float32), scores


class FanBackend:
    """68 points from FAN on the face box that MediaPipe tracks (about 50x slower than MediaPipe on a CPU).

    weights: a local .pth.tar (else fetched into cache_dir); flip_input averages with the mirrored image
    (upstream's default, twice the cost).
    """

    name = "fan"
    n_points = N_POINTS

    def __init__(self, weights: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                 url: str = FAN_URL, device: str = "cpu", flip_input: bool = False, face_index: int = 0):
        import torch

        from .mediapipe import MediaPipeBackend

        self._torch = torch
        self.device = device
        self.flip_input = flip_input
        self.net = load_fan(weights if weights else fetch_weights(url, cache_dir), device=device)
        self.boxes = MediaPipeBackend(face_index=face_index)

    @property
    def detector_calls(self) -> int:
        return self.boxes.detector_calls

    def _fan(self, image_bgr: np.ndarray, box: tuple[float, float, float, float]) -> tuple[np.ndarray, float]:
        """(68, 2) pixels and mean heatmap peak for one face box (x0, y0, x1, y1)."""
        from face_alignment.utils import CENTER_Y_OFFSET, REFERENCE_SCALE, crop, flip

        torch = self._torch
        x0, y0, x1, y1 = box
        # face_alignment's own box -> (centre, scale) rule, as in FaceAlignment.get_landmarks_from_image.
        center = np.array([(x0 + x1) / 2, (y0 + y1) / 2 - (y1 - y0) * CENTER_Y_OFFSET])
        scale = (x1 - x0 + y1 - y0) / REFERENCE_SCALE
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        patch = crop(rgb, center, scale).transpose(2, 0, 1).astype(np.float32) / 255.0
        inp = torch.from_numpy(patch)[None].to(self.device)
        with torch.no_grad():
            heat = self.net(inp)[-1]
            if self.flip_input:
                heat = heat + flip(self.net(flip(inp))[-1], is_label=True)
        points, scores = decode_heatmaps(heat[0].float().cpu().numpy(), center, scale)
        return points, float(np.clip(scores.mean(), 0, 1))

    def _result(self, image: np.ndarray, mp_result: FaceLandmarks | None) -> FaceLandmarks | None:
        if mp_result is None:
            return None
        points, score = self._fan(image, mp_result.box)
        return FaceLandmarks.from_points(points, None, score, mp_result.detected)

    def detect(self, image_bgr: np.ndarray) -> FaceLandmarks | None:
        image = frame_image(image_bgr)
        return self._result(image, self.boxes.detect(image))

    def track(self, frames: Iterable[Any], job: Any = None, total: int = 0) -> Iterator[FaceLandmarks | None]:
        images: list[np.ndarray] = []

        def remember():
            for frame in frames:
                images.append(frame_image(frame))
                yield images[-1]

        for mp_result in self.boxes.track(remember(), job, total):
            yield self._result(images.pop(), mp_result)

    def close(self) -> None:
        self.boxes.close()

    def __enter__(self) -> FanBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
