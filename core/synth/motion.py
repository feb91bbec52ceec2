"""Random but plausible performances: expression weight curves, gaze and head motion over time."""

from __future__ import annotations

import numpy as np

# Eyeball rotation at eyeLook weight 1 (the ICT eyeLook shapes only move the lids; the eyeballs are turned
# by the generator to match). Same convention as core.tracking.gaze: yaw > 0 turns the eye towards +x (the
# subject's left), pitch > 0 turns it DOWN (right-handed about x); gaze (frames, 2, 2) is [left, right] x
# [yaw, pitch] degrees in the head's frame.
GAZE_YAW_PER_WEIGHT = 30.0
GAZE_PITCH_PER_WEIGHT = 25.0


def smooth_signal(rng: np.random.Generator, t: np.ndarray, low: float = 0.05, high: float = 0.5,
                  parts: int = 4) -> np.ndarray:
    """A smooth random curve in [-1, 1] over times t (seconds): a few sinusoids between low and high Hz."""
    freqs = rng.uniform(low, high, parts)
    phases = rng.uniform(0, 2 * np.pi, parts)
    amps = rng.uniform(0.3, 1.0, parts) / np.sqrt(freqs / low)  # slower parts carry more
    s = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None] + phases[:, None])).sum(0)
    return s / amps.sum()


def _bump(t: np.ndarray, start: float, attack: float, hold: float, release: float) -> np.ndarray:
    """0 -> 1 -> 0 envelope with smoothstep ramps."""
    def smoothstep(x):
        x = np.clip(x, 0, 1)
        return x * x * (3 - 2 * x)
    up = smoothstep((t - start) / max(attack, 1e-6))
    down = 1 - smoothstep((t - start - attack - hold) / max(release, 1e-6))
    return up * down


def _events(rng, duration: float, rate: float, first_max: float) -> list[float]:
    """Poisson event start times over [-1 s, duration], with one guaranteed early event."""
    times = [rng.uniform(-0.5, first_max)]
    while True:
        nxt = times[-1] + rng.exponential(1.0 / rate)
        if nxt > duration:
            return times
        times.append(nxt)


class _Weights:
    def __init__(self, names, frames):
        self.index = {n: i for i, n in enumerate(names)}
        self.w = np.zeros((frames, len(names)))

    def add(self, name, curve):
        if name in self.index:
            self.w[:, self.index[name]] += curve


def expression_curves(rng: np.random.Generator, frames: int, fps: float,
                      names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """weights (frames, len(names)) in [0, 1] and gaze (frames, 2, 2): [left, right eye] x [yaw, pitch] degrees.

    Several shapes act at once: a slowly varying background of small activations, blinks every few
    seconds, speech-like jaw and mouth cycles, asymmetric smiles, brow raises, frowns and assorted mouth
    and jaw moves, and eye-look weights that follow a saccade-and-fixate gaze.
    """
    t = np.arange(frames) / fps
    duration = frames / fps
    w = _Weights(names, frames)

    # Background: a random third of the shapes drift at low levels (so short clips are never neutral).
    for name in names:
        if name.startswith("eyeLook") or name == "eyeBlink_L" or name == "eyeBlink_R":
            continue
        if rng.uniform() < 0.35:
            w.add(name, rng.uniform(0.05, 0.3) * np.clip(smooth_signal(rng, t, 0.05, 0.4) + 0.4, 0, None))

    # Blinks (occasionally a wink).
    for start in _events(rng, duration, 1 / 3.5, 2.0):
        attack, hold, release = rng.uniform(0.05, 0.09), rng.uniform(0.0, 0.08), rng.uniform(0.08, 0.16)
        env = _bump(t, start, attack, hold, release) * rng.uniform(0.85, 1.0)
        wink = rng.uniform()
        w.add("eyeBlink_L", env * (0.15 if wink < 0.05 else 1.0))
        w.add("eyeBlink_R", env * (0.15 if 0.05 <= wink < 0.1 else 1.0))

    # Speech: on/off stretches with syllables at 2.5-5 Hz driving the jaw and varied mouth shapes.
    for start in _events(rng, duration, 1 / 3.0, 0.5):
        length = rng.uniform(1.0, 3.5)
        env = _bump(t, start, 0.15, length, 0.2)
        rate = rng.uniform(2.5, 5.0)
        phase = rng.uniform(0, 2 * np.pi)
        syll = 0.5 - 0.5 * np.cos(2 * np.pi * rate * t + phase + 0.8 * smooth_signal(rng, t, 0.5, 2.0))
        loud = rng.uniform(0.12, 0.4) * (0.7 + 0.3 * smooth_signal(rng, t, 0.3, 1.5))
        w.add("jawOpen", env * loud * syll)
        for name, amount in (("mouthFunnel", 0.4), ("mouthPucker", 0.5), ("mouthLowerDown_L", 0.4),
                             ("mouthLowerDown_R", 0.4), ("mouthUpperUp_L", 0.3), ("mouthUpperUp_R", 0.3),
                             ("mouthStretch_L", 0.3), ("mouthStretch_R", 0.3), ("mouthClose", 0.3),
                             ("mouthPress_L", 0.25), ("mouthPress_R", 0.25), ("mouthRollLower", 0.25)):
            mod = np.clip(smooth_signal(rng, t, 1.0, 4.0) + rng.uniform(-0.6, 0.2), 0, None)
            w.add(name, env * amount * mod)

    # Smiles, asymmetric, with cheek and eye squint.
    for start in _events(rng, duration, 1 / 5.0, 1.5):
        env = _bump(t, start, rng.uniform(0.2, 0.5), rng.uniform(0.5, 2.5), rng.uniform(0.3, 0.8))
        amp = rng.uniform(0.3, 1.0)
        left, right = (1.0, rng.uniform(0.3, 1.0)) if rng.uniform() < 0.5 else (rng.uniform(0.3, 1.0), 1.0)
        for side, k in (("L", left), ("R", right)):
            w.add(f"mouthSmile_{side}", env * amp * k)
            w.add(f"cheekSquint_{side}", env * amp * k * rng.uniform(0.2, 0.6))
            w.add(f"eyeSquint_{side}", env * amp * k * rng.uniform(0.1, 0.5))
            if rng.uniform() < 0.4:
                w.add(f"mouthDimple_{side}", env * amp * k * 0.5)

    # Brow raises (inner and/or outer, sometimes with wide eyes) and frowns.
    for start in _events(rng, duration, 1 / 5.0, 2.5):
        env = _bump(t, start, rng.uniform(0.15, 0.4), rng.uniform(0.3, 1.5), rng.uniform(0.3, 0.7))
        amp = rng.uniform(0.4, 1.0)
        inner, outer = rng.uniform(0.3, 1.0), rng.uniform(0.0, 1.0)
        skew = rng.uniform(0.6, 1.0)
        left, right = (1.0, skew) if rng.uniform() < 0.5 else (skew, 1.0)
        for side, k in (("L", left), ("R", right)):
            w.add(f"browInnerUp_{side}", env * amp * inner * k)
            w.add(f"browOuterUp_{side}", env * amp * outer * k)
        if rng.uniform() < 0.4:
            w.add("eyeWide_L", env * amp * 0.5)
            w.add("eyeWide_R", env * amp * 0.5)
    for start in _events(rng, duration, 1 / 8.0, 4.0):
        env = _bump(t, start, rng.uniform(0.2, 0.5), rng.uniform(0.3, 1.5), rng.uniform(0.3, 0.8))
        amp = rng.uniform(0.3, 0.9)
        for name, k in (("browDown_L", 1.0), ("browDown_R", rng.uniform(0.6, 1.0)), ("mouthFrown_L", 0.6),
                        ("mouthFrown_R", 0.6), ("noseSneer_L", rng.uniform(0, 0.6)),
                        ("noseSneer_R", rng.uniform(0, 0.6)), ("mouthShrugLower", rng.uniform(0, 0.5))):
            w.add(name, env * amp * k)

    # Assorted one-off moves.
    misc = ("jawLeft", "jawRight", "jawForward", "mouthLeft", "mouthRight", "cheekPuff_L", "cheekPuff_R",
            "mouthRollUpper", "mouthShrugUpper", "mouthDimple_L", "mouthDimple_R", "noseSneer_L")
    for start in _events(rng, duration, 1 / 2.5, 1.0):
        name = misc[rng.integers(len(misc))]
        env = _bump(t, start, rng.uniform(0.2, 0.5), rng.uniform(0.2, 1.2), rng.uniform(0.2, 0.6))
        amp = rng.uniform(0.3, 0.8)
        w.add(name, env * amp)
        if name.startswith("cheekPuff"):
            w.add("cheekPuff_R" if name.endswith("L") else "cheekPuff_L", env * amp * rng.uniform(0.6, 1.0))

    weights = w.w
    # Mutually exclusive pairs: keep the difference, as a signed move does.
    for a, b in (("jawLeft", "jawRight"), ("mouthLeft", "mouthRight")):
        if a in w.index and b in w.index:
            d = weights[:, w.index[a]] - weights[:, w.index[b]]
            weights[:, w.index[a]], weights[:, w.index[b]] = np.clip(d, 0, None), np.clip(-d, 0, None)
    weights = np.clip(weights, 0.0, 1.0)
    if "mouthClose" in w.index and "jawOpen" in w.index:  # lips can only close over an open jaw
        jc, jo = w.index["mouthClose"], w.index["jawOpen"]
        weights[:, jc] = np.minimum(weights[:, jc], weights[:, jo])

    gaze = gaze_curve(rng, t)
    _set_eye_look(weights, w.index, gaze)
    # Upper lids follow the eyes down a little.
    for side, eye in (("L", 0), ("R", 1)):
        if f"eyeBlink_{side}" in w.index:
            k = w.index[f"eyeBlink_{side}"]
            down = np.clip(gaze[:, eye, 1] / GAZE_PITCH_PER_WEIGHT, 0, 1)
            weights[:, k] = np.clip(weights[:, k] + 0.25 * down, 0, 1)
    return weights.astype(np.float32), gaze.astype(np.float32)


def gaze_curve(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """(frames, 2, 2) degrees: fixations of 0.3-2.5 s joined by ~50 ms saccades; both eyes together."""
    duration = t[-1] + 1e-3 if len(t) else 0.0
    target = np.zeros((len(t), 2))
    start = -rng.uniform(0, 1.0)
    prev = np.array([rng.normal(0, 8), rng.normal(0, 5)])
    target[:] = prev
    while start < duration:
        nxt = np.array([np.clip(rng.normal(0, 12), -25, 25), np.clip(rng.normal(2, 8), -15, 18)])
        ramp = np.clip((t - start) / 0.05, 0, 1)
        ramp = ramp * ramp * (3 - 2 * ramp)
        after = t >= start
        target[after] = prev + (nxt - prev) * ramp[after, None]
        prev = nxt
        start += rng.uniform(0.3, 2.5)
    gaze = np.stack([target, target], axis=1)
    # Slight convergence (near focus): each eye turns a degree or so towards the nose.
    conv = rng.uniform(0.0, 2.0)
    gaze[:, 0, 0] -= conv
    gaze[:, 1, 0] += conv
    return gaze


def _set_eye_look(weights: np.ndarray, index: dict[str, int], gaze: np.ndarray) -> None:
    """Eye-look weights from gaze (overwriting): yaw towards +x is Out for the left eye, In for the right."""
    for side, eye in (("L", 0), ("R", 1)):
        yaw = gaze[:, eye, 0] / GAZE_YAW_PER_WEIGHT
        pitch = gaze[:, eye, 1] / GAZE_PITCH_PER_WEIGHT
        towards_plus_x = "Out" if side == "L" else "In"
        towards_minus_x = "In" if side == "L" else "Out"
        for name, value in ((f"eyeLook{towards_plus_x}_{side}", yaw), (f"eyeLook{towards_minus_x}_{side}", -yaw),
                            (f"eyeLookUp_{side}", -pitch), (f"eyeLookDown_{side}", pitch)):
            if name in index:
                weights[:, index[name]] = np.clip(value, 0, 1)


def gaze_from_weights(weights: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(frames, 53) weights -> (frames, 2, 2) gaze degrees, the inverse of the eye-look mapping above."""
    idx = {n: i for i, n in enumerate(names)}
    w = np.atleast_2d(weights)
    out = np.zeros((len(w), 2, 2))
    out[:, 0, 0] = (w[:, idx["eyeLookOut_L"]] - w[:, idx["eyeLookIn_L"]]) * GAZE_YAW_PER_WEIGHT
    out[:, 1, 0] = (w[:, idx["eyeLookIn_R"]] - w[:, idx["eyeLookOut_R"]]) * GAZE_YAW_PER_WEIGHT
    for eye, side in ((0, "L"), (1, "R")):
        out[:, eye, 1] = (w[:, idx[f"eyeLookDown_{side}"]] - w[:, idx[f"eyeLookUp_{side}"]]) * GAZE_PITCH_PER_WEIGHT
    return out


def head_motion(rng: np.random.Generator, frames: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """rotation (frames, 3) XYZ Euler degrees (pitch, yaw, roll) and translation offsets (frames, 3) metres.

    Peaks within about +-15 deg pitch, +-25 deg yaw, +-10 deg roll; a few cm of drift (z towards/away).
    """
    t = np.arange(frames) / fps
    limits = np.array([15.0, 25.0, 10.0])
    rotation = np.stack([limits[i] * rng.uniform(0.4, 1.0) * smooth_signal(rng, t, 0.05, 0.5) for i in range(3)], 1)
    rotation[:, 0] += rng.uniform(-3, 3)
    rotation = np.clip(rotation, -limits, limits)
    drift = np.array([0.015, 0.012, 0.03])
    translation = np.stack([drift[i] * smooth_signal(rng, t, 0.03, 0.3) for i in range(3)], 1)
    return rotation, translation
