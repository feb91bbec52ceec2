"""Shape corrections from landmarks: a hidden correction is recovered, unexercised shapes stay generic."""

import numpy as np

from core.modeling import uvmaps
from core.modeling.shape import LandmarkFrames, LandmarkPoints, ShapeOptions, fit_shape_corrections
from core.render.camera import Camera, euler_to_matrix


def _bump(points, centre, sigma):
    return np.exp(-((points - centre) ** 2).sum(1) / (2 * sigma**2))


def test_hidden_correction_recovered_from_landmarks(face_model):
    m = face_model
    names = m.expression_names
    rng = np.random.default_rng(3)
    n_face = uvmaps.face_vertex_count(m)
    jaw, smile = names.index("jawOpen"), names.index("mouthSmile_L")
    truth = np.zeros((53, m.n_vertices, 3))
    # the chin goes 3 mm sideways and 1 mm lower than the generic jawOpen says (in the image plane: depth is
    # what a camera sees least, and is tested on the synthetic clips)
    chin = m.neutral[m.landmarks68[8]]
    truth[jaw, :n_face] = _bump(m.neutral[:n_face], chin, 0.02)[:, None] * [0.003, -0.001, 0.0]
    truth[jaw, :n_face] *= uvmaps.expression_masks(m)[jaw][:, None]  # where the generic jawOpen acts
    frames = 60
    weights = np.zeros((frames, 53))
    weights[:, jaw] = rng.uniform(0, 1, frames)
    weights[:, smile] = rng.uniform(0, 0.8, frames)
    rot = euler_to_matrix(np.stack([rng.uniform(-5, 5, frames), rng.uniform(-15, 15, frames),
                                    rng.uniform(-3, 3, frames)], 1))
    trans = np.tile([0.0, 0.0, -0.5], (frames, 1))
    camera = Camera(480, 480, 800.0)
    # dense surface points (every 7th face vertex) stand in for a detector's landmarks
    ids = np.arange(0, m.submeshes["narrow_face"][1], 7)
    v = m.neutral[None] + np.tensordot(weights, m.expressions + truth, axes=1)  # (F, V, 3)
    cam = np.einsum("fij,fvj->fvi", rot, v[:, ids]) + trans[:, None]
    points = camera.project(cam) + rng.normal(0, 0.3, (frames, len(ids), 2))
    fit = fit_shape_corrections(m, [], camera, np.zeros(100), ShapeOptions(landmark_sigma_px=0.5),
                                LandmarkPoints.from_vertex_ids(ids), LandmarkFrames(weights, rot, trans, points))
    # judged where the camera sees the face (front-facing): under the chin nothing pins the depth down
    from core.render.sh import vertex_normals

    front = vertex_normals(m.neutral, m.triangles)[:n_face, 2] > 0.3
    err_generic = np.linalg.norm(truth[jaw, :n_face][front], axis=1).mean()
    err_personal = np.linalg.norm((truth[jaw, :n_face] - fit.corrections[1 + jaw])[front], axis=1).mean()
    assert err_personal < 0.6 * err_generic
    assert fit.fitted[jaw] and fit.fitted[smile] and not fit.fitted[names.index("browDown_L")]
    assert not fit.corrections[1 + names.index("browDown_L")].any()  # never seen: stays generic
    # a shape the clip exercises but whose generic delta is right gets little (sparsity)
    assert np.linalg.norm(fit.corrections[1 + smile], axis=1).mean() < 0.3 * err_generic
    # down to the noise put on the points (0.3 px a coordinate: 0.42 px RMS)
    assert fit.losses["landmarks_px_end"] < 0.45 < fit.losses["landmarks_px_start"]
    # maps and corrections agree: corrections are the masked samples of the stored maps
    masks = uvmaps.expression_masks(m)
    again = uvmaps.sample_maps(fit.maps[1 + jaw], uvmaps.face_uvs(m)) * masks[jaw][:, None]
    np.testing.assert_allclose(again, fit.corrections[1 + jaw], atol=1e-7)


def test_no_frames_no_corrections(face_model):
    fit = fit_shape_corrections(face_model, [], Camera(64, 64, 60.0), np.zeros(100))
    assert not fit.corrections.any() and not fit.fitted.any()
