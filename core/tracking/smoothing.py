"""Post-fit smoothing with one strength knob, and neutral-frame calibration of weights.

The filter is the one-euro filter (Casiry et al. 2012), run forwards and backwards and averaged. Why it:
its cut-off rises with the signal's speed, so still stretches lose their jitter while blinks and quick
head turns keep their height and timing (a fixed Gaussian or Savitzky-Golay window trades one against the
other); it works on real timestamps, so variable frame rate needs nothing special; and the forward and
backward passes cancel each other's lag (the clip is offline). Weights stay in [0, 1]: every output is a
convex combination of inputs.
"""

from __future__ import annotations

import numpy as np

from . import _kernels

# The signals' speed scales: speed at which the cut-off has risen by about 1 Hz per unit of `beta`.
BETA = {"weights": 3.0, "rotation": 0.05, "translation": 20.0, "gaze": 0.05}  # 1/unit, 1/deg, 1/m, 1/deg


def one_euro(x: np.ndarray, t: np.ndarray, min_cutoff: float, beta: float, d_cutoff: float = 1.0) -> np.ndarray:
    """Causal one-euro filter of x (N, D) sampled at times t (N,) seconds; cut-offs in Hz.

    Per sample: the derivative is low-passed at d_cutoff, the signal at min_cutoff + beta * |derivative|,
    each with the exponential smoothing factor 1 / (1 + 1 / (2 pi cutoff dt)). Compiled
    (core.tracking._kernels.one_euro): a Python loop over a 10-minute clip's frames took ~5 s.
    """
    x = np.asarray(x, np.float64)  # a reversed view stays a view (no (N, D) copy)
    out = np.empty(x.shape)
    _kernels.get("one_euro")(x, np.asarray(t, np.float64), float(min_cutoff), float(beta), float(d_cutoff), out)
    return out


def smooth(x: np.ndarray, t: np.ndarray, strength: float, kind: str = "weights",
           segments: np.ndarray | None = None) -> np.ndarray:
    """Zero-lag smoothing of x (N, ...) at times t (N,); strength 0 returns x unchanged.

    strength ~0.5 is gentle, 1 strong, 2 very strong: the still-signal cut-off is 1.5 Hz / strength.
    segments (N,) ints: the filter restarts where the label changes (e.g. runs of tracked frames), so a
    face that left and came back is not blended across the gap.
    """
    x = np.asarray(x, np.float64)
    if strength <= 0 or len(x) < 3:
        return x.copy()
    shape = x.shape
    flat = x.reshape(len(x), -1)
    out = flat.copy()
    min_cutoff = 1.5 / strength
    beta = BETA[kind] / strength
    labels = np.zeros(len(x), int) if segments is None else np.asarray(segments)
    bounds = np.flatnonzero(np.diff(labels)) + 1
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(x)]):
        if b - a < 3:
            continue
        # forwards plus backwards, halved (in place: a long clip's (N, D) temporaries are megabytes)
        out[a:b] = one_euro(flat[a:b], t[a:b], min_cutoff, beta)
        out[a:b] += one_euro(flat[a:b][::-1], -t[a:b][::-1], min_cutoff, beta)[::-1]
        out[a:b] *= 0.5
    return out.reshape(shape)


def neutral_calibrate(weights: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """Weights (N, E) made relative to a neutral frame's weights (E,): clip((w - n) / (1 - n), 0, 1).

    A person whose resting face reads as a little smile gets 0 smile at rest and still reaches 1.
    """
    neutral = np.clip(np.asarray(neutral, np.float64), 0.0, 0.95)
    return np.clip((weights - neutral) / (1.0 - neutral), 0.0, 1.0)
