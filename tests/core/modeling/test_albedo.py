"""The albedo unwrapping: a rendered frame gives back the albedo it was rendered with, hidden skin gives nothing."""

import numpy as np
import pytest

from core.modeling import _kernels
from core.modeling.albedo import FrameUnwrapper, _Texels
from core.render.camera import Camera, euler_to_matrix
from core.render.sh import SH_C0, SH_C1
from core.render.shading import render_face


def _frame(face_model, yaw: float, size: int = 256, zoom: int = 1):
    """A frame of the average head at `yaw` degrees under a light from the upper left, and what made it
    (640x480 times zoom)."""
    camera = Camera(640 * zoom, 480 * zoom, 900.0 * zoom)
    rng = np.random.default_rng(3)
    # smooth colour over the atlas, so that a texel sampled a pixel off still reads about the same colour
    yy, xx = np.mgrid[0:size, 0:size] / size
    albedo = np.stack([0.5 + 0.2 * np.sin(3 * xx + rng.uniform()), 0.4 + 0.2 * np.cos(2 * yy),
                       0.3 + 0.1 * np.sin(2 * (xx + yy))], -1).astype(np.float32)
    sh = np.zeros((9, 3))
    sh[0] = 0.9 / SH_C0
    sh[1] = 0.2 / SH_C1  # brighter from above
    sh[3] = -0.15 / SH_C1  # and from the left
    v = face_model.neutral @ euler_to_matrix(np.array([0.0, yaw, 0.0])).T + [0.0, 0.0, -0.6]
    image, _ = render_face(face_model, camera, v, albedo, sh, background=(0.1, 0.6, 0.1))
    return camera, albedo, sh, v, np.ascontiguousarray(image, np.float32)


def _unwrapped(face_model, yaw: float, zoom: int = 1):
    """(texels, the atlas the frame was rendered with, unwrapped albedo (T, 3), confidence (T,))."""
    camera, albedo, sh, v, image = _frame(face_model, yaw, zoom=zoom)
    texels = _Texels.build(face_model, albedo.shape[0])
    unwrap = FrameUnwrapper(face_model, camera)
    assert unwrap.depth_scale == min(0.5, 1280 / camera.width)  # the z-buffer: half the frame, at most 1280 px
    unwrap.set_frame(image, v, sh)
    got, conf = unwrap.sample(texels, min_cos=0.4)
    return texels, albedo, got, conf


@pytest.mark.parametrize("zoom", [1, 5])  # 640x480, and 3200x2400 where the z-buffer is capped at 1280 px
def test_a_rendered_frame_unwraps_to_its_albedo(face_model, zoom):
    texels, albedo, got, conf = _unwrapped(face_model, yaw=0.0, zoom=zoom)
    seen = conf > 0
    assert seen.sum() > 2000
    truth = albedo.reshape(-1, 3)[texels.flat]
    # lighting divided out: the texels' colour is the atlas's, not the shaded frame's
    assert np.median(np.abs(got[seen] - truth[seen])) < 0.01
    assert np.all(conf[seen] <= 1.0) and np.all(got[~seen] == 0)


def test_skin_turned_away_or_hidden_is_not_sampled(face_model):
    texels, _, _, conf = _unwrapped(face_model, yaw=70.0)
    # texel positions on the head (model x > 0: the head's left): turned 70 degrees to its left, the right
    # side of the face faces the camera and the left one away
    x = (face_model.neutral[texels.corners] * texels.bary[..., None]).sum(1)[:, 0]
    front = x < -0.02
    back = x > 0.04
    assert (conf[front] > 0).mean() > 0.3
    assert (conf[back] > 0).mean() < 0.02


def test_accumulation_kernels_match_their_sums():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (500, 3)).astype(np.float32)
    c = (rng.uniform(0, 1, 500) * (rng.uniform(0, 1, 500) > 0.3)).astype(np.float32)
    w = rng.uniform(0, 1, 4)
    buf_c, buf_ca, s_uu = np.zeros(500, np.float32), np.zeros((3, 500), np.float32), np.ones((500, 3))
    _kernels.get("add_dynamic")(a, c, buf_c, buf_ca, s_uu)
    np.testing.assert_array_equal(buf_c, c)
    np.testing.assert_allclose(buf_ca, (c[:, None] * a).T, rtol=1e-6)
    np.testing.assert_allclose(s_uu, 1 + c[:, None] * a * a, rtol=1e-6)
    s_cu, s_c, s_cw = np.zeros((500, 3)), np.zeros(500), np.zeros((500, 4))
    for _ in range(2):
        _kernels.get("add_static")(a, c, w, s_cu, s_c, s_cw)
    np.testing.assert_allclose(s_cu, 2 * c[:, None] * a, rtol=1e-6)
    np.testing.assert_allclose(s_c, 2 * c, rtol=1e-6)
    np.testing.assert_allclose(s_cw, 2 * c[:, None] * w[None], rtol=1e-6)


def test_the_per_texel_solves_do_not_depend_on_the_block_size(small_clip, make_capture, face_model, monkeypatch):
    # the (k+1, k+1) systems are solved a block of texels at a time (memory); a block must not change a texel
    from core.modeling import ModelingOptions, albedo, build_personal_model

    video, truth = small_clip
    opt = ModelingOptions(keyframes=4, personal_shapes=False)
    opt.albedo.static_frames = 4
    opt.albedo.min_frames = 1  # every shape the clip moves is offered a map
    checked = []
    real_solve, real_blocks = albedo.AlbedoAccumulator.solve, albedo._blocks

    def solve(self):
        self._flush()
        keep = np.ones(len(self.names), bool)
        whole = self._solve_dynamic(keep), self._significance(self._solve_dynamic(keep), keep)
        monkeypatch.setattr(albedo, "_blocks", lambda n, size=8192: real_blocks(n, 97))
        split = self._solve_dynamic(keep), self._significance(self._solve_dynamic(keep), keep)
        monkeypatch.setattr(albedo, "_blocks", real_blocks)
        checked.append((len(self.names), len(self.dyn.flat)))
        np.testing.assert_array_equal(whole[0], split[0])
        for a, b in zip(whole[1], split[1]):
            np.testing.assert_array_equal(a, b)
        assert np.abs(whole[0][:, 1:]).max() > 0  # real maps were compared, not zeros
        return real_solve(self)

    monkeypatch.setattr(albedo.AlbedoAccumulator, "solve", solve)
    build_personal_model(video, make_capture(truth), opt, model=face_model)
    assert checked and checked[0][0] >= 2 and checked[0][1] > 3 * 97
