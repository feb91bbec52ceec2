"""The photometric refinement's parts, without a video: the compiled per-sample pass against the numpy
formulas it replaced, and the choice of refined frames and the spreading of their corrections."""

from __future__ import annotations

import numpy as np

from core.render.sh import SH_C1, SH_C2, SH_C3, SH_C4, sh_basis, vertex_normals
from core.tracking import _kernels
from core.tracking.photometric import (
    HUBER,
    INTENSITY_NOISE,
    LUMA,
    PHOTO_WEIGHT,
    FrameImage,
    _chosen,
    _nanmedian,
    _spread,
    face_crop,
    store_crops,
)
from core.tracking.solver import rodrigues


def _bilinear(image: np.ndarray, p: np.ndarray) -> np.ndarray:
    h, w = image.shape
    x = np.clip(p[:, 0], 0, w - 1)
    y = np.clip(p[:, 1], 0, h - 1)
    x0 = np.minimum(x.astype(int), w - 2)
    y0 = np.minimum(y.astype(int), h - 2)
    fx, fy = x - x0, y - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _reference(idx, base, exp_t, n0, dn_t, albedo, w, rot, t, light, gray, gx, gy, focal, cx, cy, origin):
    """The numpy formulation (session 3's PhotometricRefiner._shading and _photometric)."""
    base, exp_t, n0, dn_t, albedo = base[idx], exp_t[idx], n0[idx], dn_t[idx], albedo[idx]
    nm = n0 + dn_t @ w
    nm /= np.linalg.norm(nm, axis=1, keepdims=True)
    nc = nm @ rot.T
    pred = (albedo * (sh_basis(nc) @ light)) @ LUMA
    x, y, z = nc[:, 0], nc[:, 1], nc[:, 2]
    lc = (albedo * LUMA) @ light.T
    q = np.stack([
        SH_C1 * lc[:, 3] + SH_C2 * (y * lc[:, 4] + z * lc[:, 7]) + 2 * SH_C4 * x * lc[:, 8],
        SH_C1 * lc[:, 1] + SH_C2 * (x * lc[:, 4] + z * lc[:, 5]) - 2 * SH_C4 * y * lc[:, 8],
        SH_C1 * lc[:, 2] + SH_C2 * (y * lc[:, 5] + x * lc[:, 7]) + 6 * SH_C3 * z * lc[:, 6],
    ], 1)
    d_shading = np.concatenate([np.cross(nc, q), np.zeros((len(q), 3)),
                                np.einsum("uj,uje->ue", q @ rot, dn_t)], 1)
    qv = (base + exp_t @ w) @ rot.T
    vc = qv + t
    iz = -1.0 / vc[:, 2]
    px, py = vc[:, 0] * iz, vc[:, 1] * iz
    p = np.stack([cx + focal * px, cy - focal * py], 1) - origin
    r = (_bilinear(gray, p) - pred) / INTENSITY_NOISE
    ix, iy = _bilinear(gx, p), _bilinear(gy, p)
    a = np.abs(r)
    sw = np.sqrt(np.where(a > HUBER, HUBER / np.maximum(a, 1e-9), 1.0) * PHOTO_WEIGHT)
    f = focal * iz
    row = np.stack([ix * f, -iy * f, f * (ix * px - iy * py)], 1) * (sw / INTENSITY_NOISE)[:, None]
    jac = np.concatenate([np.cross(qv, row), row, np.einsum("uj,uje->ue", row @ rot, exp_t)], 1)
    jac -= d_shading * (sw / INTENSITY_NOISE)[:, None]
    return r * sw, jac


def test_compiled_pass_matches_the_numpy_formulas():
    rng = np.random.default_rng(7)
    s, e = 400, 12
    base = rng.normal(size=(s, 3)) * 0.05
    exp_t = rng.normal(size=(s, 3, e)) * 0.004
    n0 = rng.normal(size=(s, 3)) + np.array([0, 0, 3.0])
    dn_t = rng.normal(size=(s, 3, e)) * 0.05
    albedo = rng.uniform(0.2, 0.9, (s, 3))
    w = rng.uniform(0, 1, e)
    rot = rodrigues(np.array([0.1, -0.2, 0.05]))
    t = np.array([0.01, -0.02, -0.6])
    light = rng.normal(size=(9, 3)) * 0.3
    light[0] += 2.5
    yy, xx = np.mgrid[0:200, 0:220]
    gray = (0.5 + 0.3 * np.sin(xx / 9.0) * np.cos(yy / 13.0)).astype(np.float32)
    gx, gy = np.gradient(gray, axis=1).astype(np.float32), np.gradient(gray, axis=0).astype(np.float32)
    idx = np.sort(rng.choice(s, 300, replace=False))
    args = (idx, base, exp_t, n0, dn_t, albedo, w, rot, t, light)
    focal, cx, cy, origin = 900.0, 160.0, 130.0, np.array([40.0, 20.0])
    r, jac = np.empty(len(idx)), np.empty((len(idx), 6 + e))
    _kernels.get("photometric_rows")(*args, LUMA, gray, gx, gy, focal, cx, cy, origin[0], origin[1],
                                     INTENSITY_NOISE, HUBER, PHOTO_WEIGHT, r, jac)
    r_ref, jac_ref = _reference(*args, gray, gx, gy, focal, cx, cy, origin)
    assert np.abs(r_ref).max() > 1.0 and np.abs(jac_ref).max() > 1.0  # the comparison is not of zeros
    np.testing.assert_allclose(r, r_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jac, jac_ref, rtol=1e-5, atol=1e-6 * np.abs(jac_ref).max())
    # As the refiner calls it: float32 shape tables (its per-shape sums then run in float32) and a float32
    # Jacobian. The same figures to float32's precision.
    r32, jac32 = np.empty(len(idx)), np.empty((len(idx), 6 + e), np.float32)
    args32 = (idx, base, exp_t.astype(np.float32), n0, dn_t.astype(np.float32), albedo, w, rot, t, light)
    _kernels.get("photometric_rows")(*args32, LUMA, gray, gx, gy, focal, cx, cy, origin[0], origin[1],
                                     INTENSITY_NOISE, HUBER, PHOTO_WEIGHT, r32, jac32)
    r_ref32, jac_ref32 = _reference(*args32, gray, gx, gy, focal, cx, cy, origin)
    np.testing.assert_allclose(r32, r_ref32, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(jac32, jac_ref32, rtol=1e-4, atol=1e-5 * np.abs(jac_ref32).max())


def test_refined_frames_cover_every_run_to_its_end():
    tracked = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1], bool)
    chosen = _chosen(tracked, 3)
    assert chosen.tolist() == [1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 1]
    assert (_chosen(tracked, 1) == tracked).all()


def test_corrections_are_interpolated_within_runs_only():
    tracked = np.array([1, 1, 1, 1, 1, 0, 1, 1, 1], bool)
    chosen = _chosen(tracked, 2)  # 0, 2, 4 | 6, 8
    delta = np.zeros((9, 2))
    delta[chosen] = np.array([[0, 0], [2, 1], [4, 2], [10, 5], [12, 6]], float)
    out = _spread(delta, chosen, tracked)
    np.testing.assert_allclose(out[:5], [[0, 0], [1, 0.5], [2, 1], [3, 1.5], [4, 2]])
    np.testing.assert_allclose(out[6:], [[10, 5], [11, 5.5], [12, 6]])  # nothing leaks across the gap
    assert (out[5] == 0).all()


def test_crops_kept_while_streaming_are_the_refined_frames():
    # The landmark pass keeps crops online: every stride-th frame of each run of found faces and the run's
    # last, which is what _chosen picks from the whole clip afterwards.
    found = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1], bool)
    y, x = np.mgrid[0:64, 0:80]
    image = np.stack([x * 3, y * 3, x + y], -1).astype(np.uint8)  # smooth: JPEG keeps it to a few levels
    box = np.array([[20.0, 16.0], [50.0, 16.0], [35.0, 44.0]])
    points = np.where(found[:, None, None], box[None], np.nan)
    with store_crops([image] * len(found), points, 3) as crops:
        assert crops.frames().tolist() == np.flatnonzero(_chosen(found, 3)).tolist()
        crop, origin, scale = crops[0]
        x0, y0 = origin
        assert scale == 1.0 and crop.shape[2] == 3 and 0 <= x0 < 20 and 0 <= y0 < 16
        assert np.abs(crop.astype(int) - image[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]]).mean() < 3


def test_a_run_without_a_refined_frame_keeps_its_landmark_fit():
    tracked = np.array([1, 1, 1, 0, 1, 1], bool)
    chosen = np.array([1, 0, 1, 0, 0, 0], bool)  # the tracking kept frames the landmark pass had no crop for
    delta = np.zeros((6, 1))
    delta[[0, 2]] = [[1.0], [3.0]]
    out = _spread(delta, chosen, tracked)
    np.testing.assert_allclose(out[:, 0], [1, 2, 3, 0, 0, 0])


def test_a_big_face_is_kept_smaller_and_its_pixels_still_line_up():
    # A 600-pixel face crop is scaled to CROP_SIDE; a frame point must land on the same picture detail in the
    # scaled crop (FrameImage.to_crop and intrinsics), else the refinement compares the wrong pixels.
    y, x = np.mgrid[0:720, 0:1280].astype(np.float64)
    image = np.zeros((720, 1280, 3), np.uint8)
    spot = np.array([700.3, 377.8])  # a bright blob at a sub-pixel position of the frame
    image[...] = (255 * np.exp(-((x - spot[0]) ** 2 + (y - spot[1]) ** 2) / (2 * 12.0**2)))[..., None]
    points = np.array([[450.0, 120.0], [830.0, 120.0], [640.0, 580.0]])
    crop = face_crop(image, points, max_side=256)
    assert max(crop.image.shape[:2]) <= 256 and crop.scale < 0.5
    frame = FrameImage.from_crop(crop)
    g = frame.gray - frame.gray.min()
    yy, xx = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    centroid = np.array([(g * xx).sum(), (g * yy).sum()]) / g.sum()
    np.testing.assert_allclose(centroid, frame.to_crop(spot), atol=0.05)  # pixel centres, not corners
    # the camera in crop pixels projects like to_crop of the frame's projection
    focal, cx, cy = frame.intrinsics(1000.0, 640.0, 360.0)
    xyz = np.array([0.02, -0.01, -0.5])
    in_frame = np.array([640.0 + 1000.0 * xyz[0] / 0.5, 360.0 - 1000.0 * xyz[1] / 0.5])
    np.testing.assert_allclose([cx + focal * xyz[0] / 0.5, cy - focal * xyz[1] / 0.5], frame.to_crop(in_frame))


def test_reference_albedo_median_equals_numpys():
    """The reference frames' median albedo (NaN where a frame did not see a vertex) is np.nanmedian's."""
    import warnings

    rng = np.random.default_rng(3)
    for frames in (1, 2, 5, 30):
        a = rng.normal(size=(frames, 500, 3))
        a[rng.random(a.shape) < 0.4] = np.nan
        a[:, :7] = np.nan  # never seen
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanmedian(a, axis=0)
        assert np.array_equal(_nanmedian(a), expected, equal_nan=True)


def test_frame_light_kernel_matches_the_numpy_formula():
    # core.tracking.photometric's frame light (session 11's numpy code) against the compiled pass.
    rng = np.random.default_rng(3)
    n = rng.normal(size=(700, 3))
    n[:, 2] = np.abs(n[:, 2]) + 0.3
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    albedo = rng.uniform(0.2, 0.8, (700, 3))
    light = rng.normal(0, 0.3, (9, 3))
    light[0] = 1 / 0.282095
    col = albedo * (sh_basis(n) @ light) + rng.normal(0, 0.01, (700, 3))
    col[::17] += 0.5  # specular spots: outliers, which the reweighting changes the fit for
    a = sh_basis(n)[None] * albedo.T[:, :, None]
    y, wt = col.T, np.ones((3, 700))
    for _ in range(2):
        aw = a * wt[:, :, None]
        ata, aty = aw.transpose(0, 2, 1) @ a + 0.7 * np.eye(9), aw.transpose(0, 2, 1) @ y[:, :, None]  # ridge 1e-3 U
        coef = np.linalg.solve(ata, aty)[..., 0]
        r = np.abs(np.einsum("cuk,ck->cu", a, coef) - y)
        wt = np.minimum(1.0, 2.5 * (1.4826 * np.median(r, axis=1, keepdims=True) + 1e-4) / np.maximum(r, 1e-9))
    out = np.zeros((9, 3))
    _kernels.get("robust_light")(n, albedo, col, out)
    np.testing.assert_allclose(out, coef.T, rtol=1e-9, atol=1e-9)


def test_visibility_kernels_match_the_numpy_formulas():
    # core.tracking.photometric's visibility (session 11's numpy code) against its two compiled passes.
    rng = np.random.default_rng(5)
    v = rng.uniform([-0.15, -0.15, -0.05], [0.15, 0.15, 0.05], (900, 3))  # some beyond the image
    rot = rodrigues(np.array([0.1, -0.3, 0.05]))
    t = np.array([0.01, -0.02, -0.6])
    focal, cx, cy = 500.0, 100.0, 110.0
    vc_ref = v @ rot.T + t
    iz = -1.0 / vc_ref[:, 2]
    p_ref = np.stack([cx + focal * vc_ref[:, 0] * iz, cy - focal * vc_ref[:, 1] * iz], 1)
    vc, points = np.empty_like(v), np.empty_like(v)
    _kernels.get("project_vertices")(v, rot, t, focal, cx, cy, vc, points)
    np.testing.assert_allclose(vc, vc_ref, atol=1e-12)
    np.testing.assert_allclose(points[:, :2], p_ref, atol=1e-9)
    np.testing.assert_allclose(points[:, 2], -vc_ref[:, 2], atol=1e-12)

    h, w = 220, 200
    scale = 0.25  # the coarse z-buffer's pixels per image pixel
    depth = rng.uniform(0.55, 0.65, (55, 50)).astype(np.float32)
    inner = rng.uniform(size=900) > 0.2
    n = rng.normal(size=(900, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    xi = np.clip(np.rint((p_ref[:, 0] + 0.5) * scale - 0.5).astype(int), 0, 49)
    yi = np.clip(np.rint((p_ref[:, 1] + 0.5) * scale - 0.5).astype(int), 0, 54)
    inside = (p_ref[:, 0] > 2) & (p_ref[:, 0] < w - 3) & (p_ref[:, 1] > 2) & (p_ref[:, 1] < h - 3)
    seen = inside & inner & (-vc_ref[:, 2] <= depth[yi, xi] + 0.01)
    view = -vc_ref / np.linalg.norm(vc_ref, axis=1, keepdims=True)
    ok_ref = seen & ((n * view).sum(1) > 0.3)
    ok = np.empty(900, bool)
    _kernels.get("usable_samples")(vc, points, n, inner, depth, scale, 0.01, w, h, 0.3, ok)
    facing = (n * view).sum(1) > 0.3
    hidden = -vc_ref[:, 2] > depth[yi, xi] + 0.01
    for rule in (inside, inner, ~hidden, facing):  # each part of the rule turns some samples away
        assert 0 < (~rule).sum() < 900
    assert (ok == ok_ref).mean() > 0.998  # the same, but for a sample on a float32 rounding edge


def test_border_rings_of_a_grid_are_its_outer_squares():
    from core.tracking.photometric import _near_borders

    # a 7x7 vertex grid, two triangles a square: its border is the outer square of vertices, each ring one more
    side = 7
    idx = np.arange(side * side).reshape(side, side)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    tris = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    depth = np.minimum.reduce([idx // side, idx % side, side - 1 - idx // side, side - 1 - idx % side]).ravel()
    for rings in (0, 1, 2):
        np.testing.assert_array_equal(_near_borders(tris, side * side, rings), depth <= rings)
    # a hole (two triangles of the middle square gone) has a border of its own
    holed = tris[~np.isin(np.arange(len(tris)), [3 * (side - 1) + 3, 3 * (side - 1) + 3 + (side - 1) ** 2])]
    near = _near_borders(holed, side * side, 0)
    assert near[idx[3, 3]] and near[idx[4, 4]] and not near[idx[2, 2]]


def test_normal_deltas_are_each_shapes_normals_less_the_neutrals():
    """The refiner's per-shape normal table, one compiled pass, equals vertex_normals shape by shape to the bit."""
    rng = np.random.default_rng(3)
    n = 7
    x, y = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float))
    base = np.stack([x.ravel(), y.ravel(), 0.3 * np.sin(x.ravel()) * np.cos(y.ravel())], 1) * 0.01
    ids = np.arange(n * n).reshape(n, n)
    quads = np.stack([ids[:-1, :-1], ids[:-1, 1:], ids[1:, 1:], ids[1:, :-1]], -1).reshape(-1, 4)
    tris = np.ascontiguousarray(np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]), np.int64)
    exp_t = (rng.normal(size=(n * n, 3, 5)) * 0.002).astype(np.float32)
    exp_t[:, :, 4] = 0.0  # a shape that moves nothing: no change of normal
    n0 = vertex_normals(base, tris)
    out = np.full(exp_t.shape, np.nan, np.float32)
    _kernels.get("normal_deltas")(base, exp_t, tris, n0, out)
    for e in range(exp_t.shape[2]):
        expected = (vertex_normals(base + exp_t[:, :, e], tris) - n0).astype(np.float32)
        np.testing.assert_array_equal(out[:, :, e], expected)
    assert np.abs(out[:, :, :4]).max() > 0.01
    assert not out[:, :, 4].any()


def test_the_refinements_warm_up_reads_the_eyes_atlas_table(face_model):
    # The iris locator's eyeball axes read the atlas's corner coordinates (27 ms the first time in a process):
    # the capture's warm-up thread does it during the landmark pass, so the fit finds them cached.
    from core.render.atlas import texture_coords
    from core.tracking.photometric import warm_up

    texture_coords.cache_clear()
    warm_up(face_model)
    assert texture_coords.cache_info().currsize == 1
    assert texture_coords(face_model) is texture_coords(face_model)  # what the locator reads: no new table
    assert texture_coords.cache_info().misses == 1
