"""The default landmark detector finds the rendered synthetic face (the generator is only useful if it does)."""

from __future__ import annotations

import numpy as np
import pytest

from core.landmarks import get_backend
from core.synth import generate, load_truth
from core.video import open_video


@pytest.mark.slow
@pytest.mark.parametrize("seed,personal", [(4101, False), (4102, True), (4103, False)])
def test_mediapipe_finds_rendered_faces(tmp_path, seed, personal):
    generate(seed=seed, frames=30, size=(320, 320), personal=personal, out_dir=tmp_path)
    truth = load_truth(tmp_path)
    found = list(get_backend("mediapipe").track(iter(open_video(tmp_path / "video.mp4"))))
    rate = np.mean([f is not None for f in found])
    assert len(found) == 30 and rate >= 0.95
    # and where it finds the face, its points sit on the true projections of the corresponded surface points
    hit = [i for i, f in enumerate(found) if f is not None]
    err = np.linalg.norm(np.stack([found[i].points for i in hit]) - truth["landmarks_mp"][hit], axis=-1)
    iod = np.linalg.norm(truth["landmarks68"][hit, 36] - truth["landmarks68"][hit, 45], axis=-1)
    assert np.median(err.mean(axis=1) / iod) < 0.05
