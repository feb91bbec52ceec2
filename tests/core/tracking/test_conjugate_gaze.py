"""track_clip reads one gaze for both eyes (conjugate_gaze) unless told to trust each eye's iris alone."""

from __future__ import annotations

import numpy as np

from core.render.camera import euler_to_matrix
from core.tracking import TrackingOptions, layout_for, track_clip

SIZE = 512
FOCAL = 0.5 * SIZE / np.tan(np.radians(45) / 2)


def _clip(layout, n=30):
    rng = np.random.default_rng(3)
    lm = layout.model
    rot = np.stack([np.zeros(n), 10 * np.sin(np.linspace(0, 3, n)), np.zeros(n)], 1)
    t = np.array([0.0, 0.0, -0.5])
    pts = []
    for i in range(n):
        v = lm.points(None, np.zeros(lm.n_expressions)) @ euler_to_matrix(rot[i]).T + t
        pts.append(np.stack([(SIZE - 1) / 2 + FOCAL * v[:, 0] / -v[:, 2],
                             (SIZE - 1) / 2 - FOCAL * v[:, 1] / -v[:, 2]], axis=1))
    pts = np.array(pts) + rng.normal(scale=0.3, size=(n, lm.n_points, 2))
    # Each eye's iris read 1.5 px off in opposite directions: detector error, not a real squint.
    left, right = layout.iris
    for centre, dx in ((left, 1.5), (right, -1.5)):
        pts[:, centre:centre + 5, 0] += dx  # the iris centre and its four rim points
    return pts


def test_one_gaze_for_both_eyes(face_model):
    layout = layout_for(478, face_model)
    pts = _clip(layout)
    valid = np.ones(len(pts), bool)
    both = track_clip(pts, valid, (SIZE, SIZE), layout, face_model,
                      options=TrackingOptions(quality="fast", focal=FOCAL, smoothing=0.0))
    each = track_clip(pts, valid, (SIZE, SIZE), layout, face_model,
                      options=TrackingOptions(quality="fast", focal=FOCAL, smoothing=0.0, conjugate_gaze=False))
    assert np.allclose(both.gaze[:, 0], both.gaze[:, 1])
    apart = np.abs(each.gaze[:, 0, 0] - each.gaze[:, 1, 0]).mean()
    assert apart > 2.0  # the opposite iris offsets turn the eyes apart when each is read alone
    # ... and the shared reading sits between them, near the true straight-ahead gaze
    assert np.abs(both.gaze[:, :, 0]).mean() < 0.5 * np.abs(each.gaze[:, :, 0]).mean()
