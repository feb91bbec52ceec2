"""Procedural albedo maps in the atlas layout (core.render.atlas): skin, brows, lips, eyes, teeth, mouth.

Features are placed from the model itself, not from pixel boxes: every texel gets the 3D point of the
generic neutral head it shows (by rasterizing the UV layout), and brows, lips and lid lines are drawn
where that point falls near the 68-point landmark contours seen from the front. Colour fields are
functions of the 3D point, so they agree across UV seams (face tile vs. back-of-head tile).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..render.atlas import cell_rect
from ..render.rasterize import interpolate, uv_rasterize

# ICT eyeball UVs: the visible front sits around (0.5, 0.5) of the tile; the limbus ring is at radius ~0.095.
IRIS_UV_RADIUS = 0.095
PUPIL_UV_RADIUS = 0.038

SKIN_LIGHT = np.array([0.87, 0.68, 0.58])
SKIN_DARK = np.array([0.36, 0.23, 0.16])
IRIS_COLOURS = np.array([
    [0.30, 0.17, 0.08],  # brown
    [0.18, 0.10, 0.05],  # dark brown
    [0.30, 0.45, 0.60],  # blue
    [0.33, 0.42, 0.25],  # green
    [0.45, 0.35, 0.18],  # hazel
])


@dataclass
class TexelGeometry:
    """Per texel of a size x size atlas: the neutral-head point it shows and which part it belongs to."""

    size: int
    covered: np.ndarray  # (S, S) bool
    position: np.ndarray  # (S, S, 3) metres on the generic neutral head (0 where not covered)
    normal_z: np.ndarray  # (S, S) z of the neutral normal (front-facing > 0)
    part: dict[str, np.ndarray]  # part name -> (S, S) bool: face, head, mouth_socket, eye_socket, gums, teeth, eye


@lru_cache(maxsize=2)
def texel_geometry(model, size: int) -> TexelGeometry:
    """Cached per (model, size); treat the arrays as read-only."""
    from ..render.sh import vertex_normals

    frags = uv_rasterize(model, size)
    covered = frags.triangle >= 0
    position = interpolate(frags, model.neutral, model.triangles)
    normals = vertex_normals(model.neutral, model.triangles)
    normal_z = interpolate(frags, normals[:, 2], model.triangles)
    first = np.where(covered, model.triangles[np.maximum(frags.triangle, 0), 0], -1)

    def in_range(*names):
        out = np.zeros(covered.shape, bool)
        for name in names:
            a, b = model.submeshes[name]
            out |= (first >= a) & (first < b)
        return out

    part = {
        "face": in_range("face"),
        "head": in_range("head_and_neck"),
        "mouth_socket": in_range("mouth_socket"),
        "eye_socket": in_range("eye_socket_left", "eye_socket_right"),
        "gums": in_range("gums_and_tongue"),
        "teeth": in_range("teeth"),
        "eye": in_range("eyeball_left", "eyeball_right"),
    }
    return TexelGeometry(size, covered, position, normal_z, part)


def _smooth_noise(rng, points: np.ndarray, count: int, sigma: tuple[float, float], centre, spread) -> np.ndarray:
    """A sum of random 3D Gaussian blobs (zero mean, unit-ish amplitude) evaluated at points (N, 3).

    Evaluated on a 3 mm grid and interpolated: the blobs are centimetres wide, the texels far denser.
    """
    from scipy.ndimage import map_coordinates

    centres = centre + rng.normal(0, spread, (count, 3))
    sigmas = rng.uniform(*sigma, count)
    amps = rng.normal(0, 1, count)
    lo, hi = points.min(0) - 0.004, points.max(0) + 0.004
    step = 0.003
    gx, gy, gz = (np.arange(lo[i], hi[i] + step, step) for i in range(3))
    grid = np.zeros((len(gx), len(gy), len(gz)))
    for c, s, a in zip(centres, sigmas, amps):  # separable Gaussians: three 1-D factors
        ex, ey, ez = (np.exp(-((g - ci) ** 2) / (2 * s * s)) for g, ci in zip((gx, gy, gz), c))
        grid += a * ex[:, None, None] * ey[None, :, None] * ez[None, None, :]
    grid /= max(np.sqrt(count) * 0.5, 1.0)
    coords = ((points - lo) / step).T
    return map_coordinates(grid, coords, order=1, mode="nearest")


def _polyline_distance(p: np.ndarray, line: np.ndarray, reach: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Distance from points p (N, 2) to a polyline (K, 2) and the arc-length fraction of the nearest point.

    Points farther than `reach` from the line's bounding box get distance inf (skipped: cheaper).
    """
    best = np.full(len(p), np.inf)
    frac = np.zeros(len(p))
    lo, hi = line.min(0) - reach, line.max(0) + reach
    near = np.flatnonzero(np.all((p >= lo) & (p <= hi), axis=1))
    q = p[near]
    seg_len = np.linalg.norm(np.diff(line, axis=0), axis=1)
    total = seg_len.sum()
    start = 0.0
    qbest = np.full(len(q), np.inf)
    qfrac = np.zeros(len(q))
    for a, b, length in zip(line[:-1], line[1:], seg_len):
        ab = b - a
        t = np.clip(((q - a) @ ab) / max(ab @ ab, 1e-12), 0, 1)
        d = np.hypot(q[:, 0] - a[0] - t * ab[0], q[:, 1] - a[1] - t * ab[1])
        closer = d < qbest
        qbest[closer] = d[closer]
        qfrac[closer] = (start + t[closer] * length) / total
        start += length
    best[near] = qbest
    frac[near] = qfrac
    return best, frac


def _inside_polygon(p: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Signed distance to a closed polygon (K, 2) for points (N, 2): > 0 inside (metres)."""
    d, _ = _polyline_distance(p, np.concatenate([poly, poly[:1]]), 0.01)
    inside = np.zeros(len(p), bool)
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):  # even-odd crossing rule
        crosses = (a[1] > p[:, 1]) != (b[1] > p[:, 1])
        x_at = a[0] + (p[:, 1] - a[1]) * (b[0] - a[0]) / np.where(b[1] == a[1], 1e-12, b[1] - a[1])
        inside ^= crosses & (p[:, 0] < x_at)
    return np.where(inside, d, -d)


def skin_tone(rng) -> np.ndarray:
    """A random skin colour from light to dark with a little hue jitter (display-referred RGB)."""
    t = rng.uniform(0, 1) ** 1.2
    tone = SKIN_LIGHT * (1 - t) + SKIN_DARK * t
    return np.clip(tone * (1 + rng.normal(0, 0.035, 3)), 0.05, 0.95)


def procedural_albedo(model, rng: np.random.Generator, size: int = 1024) -> np.ndarray:
    """(size, size, 3) float32 RGB albedo in [0, 1] for one random subject."""
    g = texel_geometry(model, size)
    lm = model.neutral[model.landmarks68].astype(np.float64)
    albedo = np.zeros((size, size, 3))
    skin = skin_tone(rng)
    hair = np.array([0.09, 0.06, 0.04]) * rng.uniform(0.6, 2.2)

    # Skin on the face, head and neck: base tone, blotchy low-frequency variation, redder cheeks/nose/ears.
    skin_mask = g.part["face"] | g.part["head"]
    p = g.position[skin_mask].astype(np.float64)
    head_centre = np.array([0.0, 0.0, 0.03])
    low = _smooth_noise(rng, p, 60, (0.015, 0.05), head_centre, 0.08)
    red = _smooth_noise(rng, p, 20, (0.01, 0.03), head_centre, 0.07)
    warm = np.zeros(len(p))
    for idx, s in ((30, 0.015), (2, 0.03), (14, 0.03)):
        warm += np.exp(-((p - lm[idx] * [0.75, 1, 1] - [0, 0, 0.01 if idx != 30 else 0]) ** 2).sum(1) / (2 * s * s))
    colour = skin[None] * (1 + 0.07 * low[:, None])
    colour *= 1 + (0.05 * red + 0.06 * warm)[:, None] * np.array([0.6, -0.4, -0.4])
    # Stubble / scalp darkening towards the top and back of the head for some subjects.
    if rng.uniform() < 0.7:
        scalp = np.clip((p[:, 1] - (lm[19, 1] + 0.045 + 0.02 * rng.uniform())) / 0.02, 0, 1)
        colour = colour * (1 - scalp[:, None]) + (hair * (1 + 0.3 * low[:, None])) * scalp[:, None]
    albedo[skin_mask] = colour

    front = skin_mask & (g.normal_z > 0.2) & (g.position[..., 2] > 0.03)
    fp = g.position[front][:, :2].astype(np.float64)
    fcol = albedo[front]

    # Brows: thick near the nose, thin at the tail, centred a little below the 68-point brow contour.
    brow_strength = rng.uniform(0.55, 0.85)
    for line in (lm[17:22, :2], lm[22:27, :2][::-1]):
        # both run from the temple (fraction 0) to the nose (fraction 1)
        d, frac = _polyline_distance(fp, line - [0, 0.002], 0.01)
        half = 0.0022 + 0.0030 * frac
        soft = np.clip((half - d) / 0.0012 + 0.5, 0, 1)
        strands = 0.75 + 0.25 * rng.uniform(size=len(d))
        a = (brow_strength * soft * strands)[:, None]
        fcol = fcol * (1 - a) + hair * a

    # Lash line: a dark band along the upper lids (the lash cards themselves are not rendered).
    for line in (lm[36:40, :2], lm[42:46, :2]):
        d, frac = _polyline_distance(fp, line + [0, 0.0006], 0.005)
        a = (0.75 * np.clip((0.0012 - d) / 0.0006 + 0.5, 0, 1))[:, None]
        fcol = fcol * (1 - a) + np.array([0.05, 0.035, 0.03]) * a
    for line in (lm[[39, 40, 41, 36], :2], lm[[45, 46, 47, 42], :2]):
        d, _ = _polyline_distance(fp, line, 0.005)
        a = (0.3 * np.clip((0.0008 - d) / 0.0005 + 0.5, 0, 1))[:, None]
        fcol = fcol * (1 - a) + np.array([0.15, 0.08, 0.07]) * a

    # Lips: inside the outer lip contour, redder and darker; the inner rim (mouth corners) a bit darker still.
    lip_colour = skin * np.array([0.86, 0.66, 0.68]) * rng.uniform(0.8, 0.95) + np.array([0.04, 0.0, 0.01])
    inside = _inside_polygon(fp, lm[48:60, :2])
    a = np.clip(inside / 0.0012 + 0.5, 0, 1)[:, None]
    fcol = fcol * (1 - a) + lip_colour * a
    albedo[front] = fcol

    # The inner lip surfaces curl into the mouth and are not front-facing: same lip colour there.
    inner = g.part["face"] & ~front & (np.abs(g.position[..., 0]) < abs(lm[54, 0] - lm[48, 0]) / 2 + 0.002)
    inner &= (g.position[..., 1] < lm[33, 1] - 0.005) & (g.position[..., 1] > lm[57, 1] - 0.002)
    inner &= g.position[..., 2] > 0.05
    albedo[inner] = lip_colour * 0.85

    # Mouth interior, gums/tongue, teeth, eye sockets.
    albedo[g.part["mouth_socket"]] = np.array([0.16, 0.05, 0.05])
    gums = g.part["gums"]
    albedo[gums] = np.array([0.45, 0.18, 0.18]) * (1 + 0.03 * rng.normal(size=(gums.sum(), 1)))
    teeth = g.part["teeth"]
    # Teeth and eye whites are darker than their paint colour in photos (the renderer has no occlusion).
    tint = np.array([0.78, 0.74, 0.64]) * rng.uniform(0.8, 0.95)
    albedo[teeth] = tint
    albedo[g.part["eye_socket"]] = np.array([0.55, 0.28, 0.26])

    _paint_eyes(albedo, g, rng)

    # Fine texture (pores, noise) everywhere, then fill the unused texels with their neighbours' colour.
    albedo *= 1 + 0.025 * cv2.GaussianBlur(rng.normal(size=(size, size)).astype(np.float32), (0, 0), 0.7)[..., None]
    albedo = _dilate_into_empty(albedo.astype(np.float32), g.covered)
    return np.clip(albedo, 0, 1).astype(np.float32)


def _paint_eyes(albedo: np.ndarray, g: TexelGeometry, rng) -> None:
    """Sclera, iris with radial streaks and a dark limbus, black pupil, in the eye cell (both eyes share it)."""
    x0, y0, x1, y1 = cell_rect("eye", 0, g.size)
    n = x1 - x0
    yy, xx = np.mgrid[0:n, 0:n]
    u = (xx + 0.5) / n - 0.5
    v = 0.5 - (yy + 0.5) / n
    r = np.hypot(u, v)
    theta = np.arctan2(v, u)
    iris_colour = IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))] * rng.uniform(0.8, 1.2)
    sclera = np.array([0.80, 0.76, 0.73]) * rng.uniform(0.85, 0.95)
    # Sclera: a little redder and darker towards the back.
    s = np.clip((r - 0.12) / 0.3, 0, 1)[..., None]
    col = sclera * (1 - 0.25 * s) + np.array([0.05, -0.02, -0.02]) * s
    streak = 1 + 0.18 * np.sin(theta * 40 + rng.uniform(0, 6)) * np.sin(theta * 13 + rng.uniform(0, 6))
    ir = r / IRIS_UV_RADIUS
    iris = iris_colour * (0.8 + 0.4 * ir)[..., None] * streak[..., None]
    iris *= 1 - 0.6 * np.clip((ir - 0.8) / 0.2, 0, 1)[..., None]  # dark limbal ring
    a = np.clip((IRIS_UV_RADIUS - r) * n / 1.5 + 0.5, 0, 1)[..., None]
    col = col * (1 - a) + iris * a
    pupil = PUPIL_UV_RADIUS * rng.uniform(0.85, 1.15)
    a = np.clip((pupil - r) * n / 1.2 + 0.5, 0, 1)[..., None]
    col = col * (1 - a) + np.array([0.02, 0.02, 0.025]) * a
    cell = albedo[y0:y1, x0:x1]
    eye = g.part["eye"][y0:y1, x0:x1]
    cell[eye] = col[eye]


def _dilate_into_empty(image: np.ndarray, covered: np.ndarray, steps: int = 4) -> np.ndarray:
    """Spread colours a few texels into uncovered texels so bilinear lookups at UV seams don't pick up black."""
    out = image.copy()
    mask = covered.astype(np.float32)
    for _ in range(steps):
        kernel = np.ones((3, 3), np.float32)
        summed = cv2.filter2D(out * mask[..., None], -1, kernel, borderType=cv2.BORDER_CONSTANT)
        count = cv2.filter2D(mask, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        grow = (mask == 0) & (count > 0)
        out[grow] = summed[grow] / count[grow][:, None]
        mask = np.maximum(mask, grow.astype(np.float32))
    return out
