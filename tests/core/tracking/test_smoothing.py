"""Smoothing (one knob, 0 = raw) and neutral calibration."""

from __future__ import annotations

import numpy as np

from core.tracking.smoothing import neutral_calibrate, one_euro, smooth


def _signal(n=150, fps=30.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    clean = np.zeros((n, 2))
    clean[:, 0] = 0.3 + 0.1 * np.sin(2 * np.pi * 0.3 * t)
    blink = (t > 2.5) & (t < 2.65)  # a 150 ms blink
    clean[blink, 1] = 1.0
    noisy = np.clip(clean + rng.normal(0, 0.03, clean.shape), 0, 1)
    return t, clean, noisy, blink


def test_zero_strength_is_raw():
    t, _, noisy, _ = _signal()
    out = smooth(noisy, t, 0.0)
    assert np.array_equal(out, noisy)


def test_smoothing_removes_jitter_keeps_blinks_and_range():
    t, clean, noisy, blink = _signal()
    out = smooth(noisy, t, 0.5)
    still = ~np.convolve(blink, np.ones(9), "same").astype(bool)
    jitter = lambda x: np.abs(np.diff(x[still, 0], 2)).mean()  # noqa: E731
    assert jitter(out) < 0.4 * jitter(noisy)
    assert np.abs(out - clean)[still].mean() < np.abs(noisy - clean)[still].mean()
    assert out[blink, 1].max() > 0.8  # the blink keeps most of its height
    assert out.min() >= 0 and out.max() <= 1
    stronger = smooth(noisy, t, 2.0)
    assert jitter(stronger) < jitter(out)


def test_no_lag_on_a_ramp():
    t = np.arange(100) / 30.0
    x = np.clip((t - 1.0) * 2, 0, 1)[:, None]
    out = smooth(x, t, 1.0)
    half_in, half_out = np.argmax(x[:, 0] >= 0.5), np.argmax(out[:, 0] >= 0.5)
    assert abs(int(half_out) - int(half_in)) <= 1  # forward-backward: the edge does not move


def test_segments_are_not_blended():
    t = np.arange(60) / 30.0
    x = np.r_[np.zeros(30), np.ones(30)][:, None]
    seg = np.r_[np.zeros(30, int), np.ones(30, int)]
    out = smooth(x, t, 2.0, segments=seg)
    assert np.array_equal(out, x)


def test_neutral_calibration():
    w = np.array([[0.2, 0.0, 0.5], [0.6, 0.3, 1.0], [0.1, 0.1, 0.5]])
    out = neutral_calibrate(w, w[0])
    assert np.allclose(out[0], 0)
    assert np.allclose(out[1], [0.5, 0.3, 1.0])
    assert np.allclose(out[2], [0.0, 0.1, 0.0])


def _alpha(cutoff, dt):
    return 1.0 / (1.0 + 1.0 / (2 * np.pi * cutoff * dt))


def test_the_compiled_filter_is_the_one_euro_definition():
    rng = np.random.default_rng(5)
    t = np.cumsum(rng.uniform(0.02, 0.05, 80))  # variable frame rate
    x = rng.normal(size=(80, 3)).cumsum(0)
    want = np.empty_like(x)
    want[0] = prev = x[0]
    dprev = np.zeros(3)
    for i in range(1, len(x)):  # Casiez et al.'s filter, sample by sample
        dt = t[i] - t[i - 1]
        dprev = dprev + _alpha(1.0, dt) * ((x[i] - prev) / dt - dprev)
        prev = prev + _alpha(0.7 + 0.2 * np.abs(dprev), dt) * (x[i] - prev)
        want[i] = prev
    np.testing.assert_allclose(one_euro(x, t, 0.7, 0.2), want, rtol=1e-12, atol=1e-12)
    assert one_euro(np.zeros((0, 3)), np.zeros(0), 1.0, 1.0).shape == (0, 3)
