"""Job: stage shares, and a repeated block of stages that moves the bar forwards."""

import pytest

from core.job import Cancelled, Job


def test_repeated_stages_move_the_bar_forwards():
    seen = []
    job = Job(on_progress=lambda p: seen.append(p.fraction), weights={"capture": 0.5, "keyframes": 0.2, "albedo": 0.3})
    job.step("capture", 10, 10)
    for k in range(3):  # the same two stages, three times
        with job.repeat("keyframes", k, 3):
            for done in range(0, 11, 5):
                job.step("keyframes", done, 10)
            for done in range(0, 11, 5):
                job.step("albedo", done, 10)
        assert seen[-1] == pytest.approx(0.5 + 0.5 * (k + 1) / 3)
    assert all(b >= a - 1e-12 for a, b in zip(seen, seen[1:]))
    job.step("capture", 10, 10)  # outside the block, the stages report as before
    assert seen[-1] == pytest.approx(0.5)


def test_a_silent_job_is_cancelled_with_its_parent():
    seen = []
    job = Job(on_progress=lambda p: seen.append(p))
    inner = job.silent()
    inner.step("fitting", 1, 2)
    assert not seen
    job.cancel()
    with pytest.raises(Cancelled):
        inner.step("fitting", 2, 2)
