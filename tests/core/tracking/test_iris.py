"""The iris locator: the eyeball geometry it relies on, a dark iris disc found where it is, and an eye where
no disc explains the pixels (a light iris under a dark lash line) left to the landmark gaze."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.render.camera import euler_to_matrix
from core.tracking.iris import MEDIAPIPE_LID_RINGS, IrisLocator, eyeball_geometry

H, W = 240, 320


def test_iris_axes_point_forward(face_model):
    centres, radius, axes = eyeball_geometry(face_model, np.zeros(100))
    assert 0.011 < radius < 0.017  # the sphere through ICT's eyeball mesh (cornea included): 15 mm
    assert (axes[:, 2] > 0.9).all()  # the pupils look ahead (+Z) at rest
    assert centres[0, 0] > 0 > centres[1, 0]  # [left, right] of the subject: left at +X
    assert all(len(r) == 16 for r in MEDIAPIPE_LID_RINGS)


@pytest.fixture(scope="module")
def locator(face_model):
    loc = IrisLocator(face_model, np.zeros(100), SimpleNamespace(focal=2000.0, cx=W / 2, cy=H / 2))
    # The head faces the camera 45 cm away with the eyes in the middle of the frame.
    translation = np.array([-loc.centres[:, 0].mean(), -loc.centres[:, 1].mean(), -0.45])
    return loc, np.eye(3), translation


def eye_image(locator, gaze, iris: float, lash: float | None):
    """(H, W, 3) grey eyes: sclera 0.85, an iris disc of the given grey turned to gaze [yaw, pitch] degrees,
    optionally a lash band of the given grey along the top of each eye; and the two lid outlines (16, 2)."""
    loc, rot, trans = locator
    ys, xs = np.mgrid[0:H, 0:W]
    ray = np.stack([(xs - loc.cx) / loc.focal, -(ys - loc.cy) / loc.focal, -np.ones((H, W))], -1)
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    img = np.full((H, W), 0.85)
    rings = []
    for e in range(2):
        c = rot @ loc.centres[e] + trans
        b = ray @ c
        u = ray * (b - np.sqrt(np.clip(loc.radius**2 - (c @ c - b * b), 0, None)))[..., None] - c
        u /= np.linalg.norm(u, axis=-1, keepdims=True)
        axis = rot @ euler_to_matrix(np.array([gaze[1], gaze[0], 0.0])) @ loc.axes[e]
        img = np.where(u @ axis > loc.cos_a, iris, img)
        front = c + loc.radius * (rot @ loc.axes[e])
        centre_px = np.array([loc.cx + loc.focal * front[0] / -front[2], loc.cy - loc.focal * front[1] / -front[2]])
        iris_px = loc.radius * loc.sin_a * loc.focal / -c[2]
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        rings.append(centre_px + np.stack([1.9 * iris_px * np.cos(t), -0.85 * iris_px * np.sin(t)], 1))
        if lash is not None:
            band = (ys < centre_px[1] - 0.55 * iris_px) & (np.abs(xs - centre_px[0]) < 1.9 * iris_px)
            img = np.where(band, lash, img)
    return np.repeat(img[..., None], 3, 2).astype(np.float32), tuple(rings)


def test_a_dark_iris_is_found(locator):
    loc, rot, trans = locator
    image, rings = eye_image(locator, (8.0, -5.0), iris=0.3, lash=None)
    gaze = loc.locate(image, rot, trans, rings, start=np.zeros(2))
    assert gaze is not None and np.abs(gaze - [8.0, -5.0]).max() < 1.0, gaze


@pytest.mark.parametrize("gaze", [(8.0, -5.0), (0.0, 0.0)])
def test_a_lash_line_over_a_light_iris_is_not_taken_for_the_iris(locator, gaze):
    loc, rot, trans = locator
    image, rings = eye_image(locator, gaze, iris=0.72, lash=0.15)
    assert loc.locate(image, rot, trans, rings, start=np.zeros(2)) is None


def test_disc_score_kernel_matches_its_formula():
    # The compiled search score against the numpy formula it replaced: the share of the eye pixels' variance
    # a dark soft disc leaves unexplained, for every candidate axis.
    from core.tracking import _kernels

    rng = np.random.default_rng(3)
    u = rng.normal(size=(400, 3)) + [0, 0, 3]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    axes = rng.normal(size=(30, 3)) + [0, 0, 3]
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    intensity = rng.uniform(0, 1, 400)
    intensity[u @ axes[0] > 0.97] -= 0.6  # a dark disc around the first axis
    cos_a, soft = 0.96, 0.01
    ic = intensity - intensity.mean()
    disc = 1.0 / (1.0 + np.exp(-(u @ axes.T - cos_a) / soft))
    dc = disc - disc.mean(0)
    cov = ic @ dc
    explained = np.where(cov < 0, cov * cov / ((dc * dc).sum(0) + 1e-9), 0.0)
    expected = ((ic * ic).sum() - explained) / (ic * ic).sum()
    out = np.zeros(30)
    _kernels.get("disc_misfit")(np.ascontiguousarray(u), ic, np.ascontiguousarray(axes), cos_a, soft, out)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)
    assert out.argmin() == 0 and out[0] < 0.8 and np.median(out) > 0.95  # the disc is found, the rest explain little
