"""The FAN backend's real weight loading (from a locally saved state dict) and its offline message."""

from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("face_alignment")

from core.landmarks import LandmarkBackendError, get_backend  # noqa: E402
from core.landmarks.fan import fetch_weights, load_fan  # noqa: E402

S32 = Path(__file__).resolve().parents[3] / ".." / "shared" / "media" / "clips" / "liveportrait_source_s32.mp4"


@pytest.fixture(scope="module")
def saved_weights(tmp_path_factory):
    """A FAN-4 with random weights saved as a state dict, as upstream's .pth.tar files are."""
    from face_alignment.models import FAN

    torch.manual_seed(0)
    net = FAN(4)
    with torch.no_grad():  # BatchNorm running statistics are part of the state too
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("fan") / "2DFAN4-test.pth.tar"
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def assert_same_state(net, state):
    loaded = net.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_load_from_local_state_dict(saved_weights):
    path, state = saved_weights
    net = load_fan(path)
    assert_same_state(net, state)
    assert not net.training


def test_download_into_cache_then_detect(saved_weights, tmp_path):
    # Only the internet is replaced: a file:// URL goes through the same torch.hub download code.
    path, state = saved_weights
    url = path.as_uri()
    cache = tmp_path / "cache"
    local = fetch_weights(url, cache)
    assert local == cache / path.name and local.stat().st_size == path.stat().st_size
    assert not list(cache.glob("*.part*"))
    if not S32.exists():
        pytest.skip("shared clip absent")
    cap = cv2.VideoCapture(str(S32))
    image = cap.read()[1]
    cap.release()
    with get_backend("fan", url=url, cache_dir=cache) as fan:
        loaded = fan.net.state_dict()
        assert all(torch.equal(loaded[k], state[k]) for k in list(state)[::50])
        result = fan.detect(image)
        assert fan.detector_calls == 1
    # Random weights give meaningless points, but they come back as 68 pixels around MediaPipe's face box.
    assert result.points.shape == (68, 2) and result.detected
    assert np.isfinite(result.points).all()
    assert (result.points[:, 0] > 300).all() and (result.points[:, 0] < 850).all()


def test_offline_message_says_where_to_put_the_file(tmp_path):
    url = (tmp_path / "nowhere" / "2DFAN4-11f355bf06.pth.tar").as_uri()
    with pytest.raises(LandmarkBackendError, match="could not download") as info:
        fetch_weights(url, tmp_path / "cache")
    assert str(tmp_path / "cache" / "2DFAN4-11f355bf06.pth.tar") in str(info.value)
    assert not (tmp_path / "cache" / "2DFAN4-11f355bf06.pth.tar").exists()


def test_damaged_weights_are_a_clear_error(tmp_path):
    bad = tmp_path / "2DFAN4.pth.tar"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(LandmarkBackendError, match="could not be loaded"):
        load_fan(bad)


@pytest.mark.slow
def test_heatmap_decoding_matches_face_alignment():
    # Upstream's numba decoder (16 s of compiling) rounds down to whole pixels; ours keeps the fraction.
    from face_alignment.utils import get_preds_fromhm

    from core.landmarks.fan import decode_heatmaps

    heat = np.random.default_rng(0).random((1, 68, 64, 64)).astype(np.float32)
    heat[0, 0] = 0
    heat[0, 0, 0, 5] = 1  # a peak on the border: no sub-pixel step
    center, scale = np.array([300.5, 200.25]), 1.7
    _, reference, ref_scores = get_preds_fromhm(heat.copy(), center, scale)
    points, scores = decode_heatmaps(heat[0], center, scale)
    assert np.array_equal(np.floor(points), reference[0])
    assert np.allclose(scores, ref_scores[0])
