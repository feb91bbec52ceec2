"""Per-subject corrections the generic blendshapes lack: shape deltas and expression-dependent albedo."""

from __future__ import annotations

import numpy as np

from .albedo import texel_geometry

# Shapes whose albedo changes with their weight (wrinkles), in this order in the truth file.
DYNAMIC_ALBEDO_NAMES = (
    "browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R",
    "mouthSmile_L", "mouthSmile_R", "eyeSquint_L", "eyeSquint_R",
)


# The face region: the face and the inner meshes joined to it (sockets) or moving with it (teeth, tongue),
# so that deltas reaching the lips or lids carry on smoothly inside instead of tearing at the seams.
FACE_REGION = ("face", "mouth_socket", "eye_socket_left", "eye_socket_right", "gums_and_tongue", "teeth")


def _face_weight(model) -> np.ndarray:
    """(V,) 1 in the face region, 0 elsewhere (back of the head, neck, eyeballs, transparent cards)."""
    w = np.zeros(model.n_vertices)
    for name in FACE_REGION:
        a, b = model.submeshes[name]
        w[a:b] = 1.0
    return w


def _bump(points: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-((points - centre) ** 2).sum(1) / (2 * sigma * sigma))


def personal_expressions(model, rng: np.random.Generator) -> np.ndarray:
    """(53, V, 3) float32 extra deltas (metres), non-zero for about a dozen shapes, a few mm at most.

    Always: an asymmetric extra pull on one smile corner, a different jaw path for jawOpen (sideways and
    forward), a changed brow-raise shape. Plus a few random smooth corrections on other shapes, placed
    where the generic shape moves. Smooth (sums of 3D Gaussian bumps, sigma 8-25 mm), zero outside
    FACE_REGION (the bumps fade out well before the face meets the back of the head and neck).
    """
    names = model.expression_names
    v = model.neutral.astype(np.float64)
    lm = v[model.landmarks68]
    face = _face_weight(model)
    out = np.zeros((len(names), model.n_vertices, 3), np.float32)

    def put(name, delta):
        out[names.index(name)] += (delta * face[:, None]).astype(np.float32)

    # Asymmetric smile: one corner goes further up and out.
    side = "L" if rng.uniform() < 0.5 else "R"
    corner = lm[54] if side == "L" else lm[48]
    sx = 1.0 if side == "L" else -1.0
    amount = rng.uniform(0.0025, 0.004)
    direction = np.array([0.5 * sx, 1.0, -0.15])
    direction /= np.linalg.norm(direction)
    put(f"mouthSmile_{side}", _bump(v, corner + [0.004 * sx, 0.003, 0], rng.uniform(0.010, 0.016))[:, None]
        * direction * amount)

    # jawOpen: the chin swings to one side and forward, proportionally to how far the generic shape moves.
    jaw = model.expressions[names.index("jawOpen")].astype(np.float64)
    reach = np.linalg.norm(jaw, axis=1)
    reach = reach / reach.max()
    shift = np.array([rng.choice([-1, 1]) * rng.uniform(0.002, 0.0035), 0.0, rng.uniform(0.001, 0.002)])
    put("jawOpen", reach[:, None] ** 1.5 * shift)

    # Brow raise shape: the peak of the raise moves (an extra lift mid-brow, a little less at the inner end).
    for s, brow in (("L", lm[24]), ("R", lm[19])):
        lift = rng.uniform(0.0015, 0.003)
        delta = (_bump(v, brow + [0, 0.004, 0], 0.012) - 0.4 * _bump(v, brow + [-np.sign(brow[0]) * 0.015, 0, 0],
                                                                     0.01))[:, None] * [0, lift, 0]
        put(f"browOuterUp_{s}", delta)
        put(f"browInnerUp_{s}", 0.5 * delta)

    # A few random smooth corrections where other shapes act.
    candidates = [n for n in names if not n.startswith(("eyeLook", "mouthSmile", "jawOpen", "brow"))]
    for name in rng.choice(candidates, size=6, replace=False):
        generic = np.linalg.norm(model.expressions[names.index(name)], axis=1) * face
        if generic.max() < 1e-4:
            continue
        p = generic / generic.sum()
        delta = np.zeros_like(v)
        for _ in range(rng.integers(1, 4)):
            c = v[rng.choice(len(v), p=p)]
            d = rng.normal(size=3)
            d /= np.linalg.norm(d)
            delta += _bump(v, c, rng.uniform(0.008, 0.02))[:, None] * d * rng.uniform(0.001, 0.003)
        put(str(name), delta)
    return out


def dynamic_albedo(model, rng: np.random.Generator, albedo: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """Per-shape albedo deltas (k, S, S, 3) float32 for DYNAMIC_ALBEDO_NAMES: wrinkles that darken the skin.

    Forehead lines with the brow raises, nasolabial folds with the smiles, crow's feet with eye squint;
    each shape gets its own side of the face. albedo (S, S, 3) is the static map the darkening scales.
    """
    size = albedo.shape[0]
    g = texel_geometry(model, size)
    lm = model.neutral[model.landmarks68].astype(np.float64)
    front = (g.part["face"]) & (g.normal_z > 0.1) & (g.position[..., 2] > 0.02)
    p = g.position[front].astype(np.float64)
    x, y = p[:, 0], p[:, 1]
    skin = albedo[front].astype(np.float64)
    strength = rng.uniform(0.15, 0.3)

    def side_weight(sign):
        return 1 / (1 + np.exp(-sign * x / 0.004))

    maps = np.zeros((len(DYNAMIC_ALBEDO_NAMES), size, size, 3), np.float32)

    # Forehead: horizontal lines between the brows and the hairline, wavy and broken.
    brow_top = lm[17:27, 1].max()
    period = rng.uniform(0.006, 0.009)
    wave = 0.002 * np.sin(x / rng.uniform(0.02, 0.04) + rng.uniform(0, 6))
    lines = np.clip(np.sin(2 * np.pi * (y - brow_top + wave) / period), 0, 1) ** 6
    band = np.clip((y - brow_top - 0.008) / 0.006, 0, 1) * np.clip((brow_top + 0.05 - y) / 0.01, 0, 1)
    broken = 0.6 + 0.4 * np.sin(x / 0.011 + rng.uniform(0, 6)) ** 2
    forehead = lines * band * broken * np.clip((0.055 - np.abs(x)) / 0.01, 0, 1)
    inner = np.exp(-(x ** 2) / (2 * 0.022 ** 2))
    for k, name in enumerate(DYNAMIC_ALBEDO_NAMES[:4]):
        sign = 1 if name.endswith("_L") else -1
        region = inner if "Inner" in name else (1 - inner)
        maps[k][front] = -strength * (forehead * region * side_weight(sign))[:, None] * skin

    # Nasolabial folds: from beside the nose wing to beyond the mouth corner.
    from .albedo import _polyline_distance

    for k, name in ((4, "mouthSmile_L"), (5, "mouthSmile_R")):
        sign = 1 if name.endswith("_L") else -1
        wing = lm[35] if sign > 0 else lm[31]
        corner = lm[54] if sign > 0 else lm[48]
        curve = np.array([wing[:2] + [sign * 0.006, 0.004], (wing[:2] + corner[:2]) / 2 + [sign * 0.013, 0],
                          corner[:2] + [sign * 0.011, -0.008], corner[:2] + [sign * 0.008, -0.018]])
        d, frac = _polyline_distance(p[:, :2], curve, 0.01)
        fold = np.exp(-(d ** 2) / (2 * 0.0016 ** 2)) * np.sin(np.pi * np.clip(frac, 0, 1)) ** 0.5
        maps[k][front] = -1.3 * strength * (fold * side_weight(sign))[:, None] * skin

    # Crow's feet: a fan of short lines from the outer eye corner.
    for k, name in ((6, "eyeSquint_L"), (7, "eyeSquint_R")):
        sign = 1 if name.endswith("_L") else -1
        corner = (lm[45] if sign > 0 else lm[36])[:2]
        rel = p[:, :2] - corner
        r = np.linalg.norm(rel, axis=1)
        ang = np.arctan2(rel[:, 1], sign * rel[:, 0])
        fan = np.clip(np.cos(ang * rng.uniform(9, 12)), 0, 1) ** 8
        reach = np.clip((r - 0.004) / 0.003, 0, 1) * np.clip((0.02 - r) / 0.005, 0, 1)
        lateral = (np.abs(ang) < 0.9) & (sign * rel[:, 0] > 0)
        maps[k][front] = -strength * (fan * reach * lateral * side_weight(sign))[:, None] * skin
    return DYNAMIC_ALBEDO_NAMES, maps
