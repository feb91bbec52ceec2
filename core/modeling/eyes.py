"""The person's eye colour: the iris ring of the albedo atlas's eyeball cell, where the frames saw it.

The albedo pass unwraps the eyeballs (turned by the tracked gaze) into the atlas's eye cell, both eyes into
the same texels, the pupil at the cell's centre. Blender draws the eyes procedurally (sclera, iris and
pupil by the distance from the eye's axis), so what it takes from the map is one colour: the median over a
ring inside the iris, clear of the pupil and of the limbus, which gaze errors smear into it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..render.atlas import CELLS, texture_coords
from ..tracking.iris import eyeball_geometry

# Degrees from the eye's axis on the eyeball. The iris of the renders' eye texture spans 7-15 degrees
# around a pupil of 7; a few degrees of gaze error blur both edges, so the ring keeps to the middle.
IRIS_RING = (8.0, 13.5)
MIN_TEXELS = 24  # seen texels in the ring, fewer: no colour (the eyes shut or turned away the whole clip)


@lru_cache(maxsize=2)
def iris_ring(model) -> tuple[float, float]:
    """(inner, outer) radius of IRIS_RING in the eye cell, as fractions of its side from its centre.

    Read off the model: on the eyeball's outer shell the atlas coordinates' distance from the cell's centre
    grows with the angle from the eye's axis (0.0055 of the cell a degree on the ICT eyeball)."""
    centres, _, axes = eyeball_geometry(model, np.zeros(model.identity.shape[0]))
    a, _ = model.submeshes["eyeball_left"]
    inner, _ = model.submeshes["iris_left"]  # the eyeball's range holds the iris shell after the outer one
    on = ((model.triangles >= a) & (model.triangles < inner)).all(1)
    vid = model.triangles[on].ravel()
    d = model.neutral[vid].astype(np.float64) - centres[0]
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    angle = np.degrees(np.arccos(np.clip(d @ axes[0], -1.0, 1.0)))
    x0, y0, size = CELLS[("eye", 0)]
    uv = texture_coords(model)[on].reshape(-1, 2)
    radius = np.hypot((uv[:, 0] - x0) / size - 0.5, (uv[:, 1] - y0) / size - 0.5)
    order = np.argsort(angle)
    r0, r1 = np.interp(IRIS_RING, angle[order], radius[order])
    return float(r0), float(r1)


def iris_colour(model, albedo: np.ndarray, seen: np.ndarray) -> np.ndarray | None:
    """(3,) the irises' albedo (display RGB 0..1): the median of the seen texels in the iris ring.

    albedo: (S, S, 3) atlas; seen: (S, S) bool, the texels some frame saw (before the unseen ones were
    filled). None where fewer than MIN_TEXELS of the ring were seen."""
    size = albedo.shape[0]
    x0, y0, side = CELLS[("eye", 0)]
    a, b, n = int(round(x0 * size)), int(round(y0 * size)), int(round(side * size))
    r0, r1 = iris_ring(model)
    centre = (np.arange(n) + 0.5) / n - 0.5
    r = np.hypot(centre[None, :], centre[:, None])
    use = (r >= r0) & (r <= r1) & seen[b:b + n, a:a + n]
    if use.sum() < MIN_TEXELS:
        return None
    return np.clip(np.median(albedo[b:b + n, a:a + n][use], axis=0), 0.0, 1.0).astype(np.float32)
