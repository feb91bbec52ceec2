"""Keyframes that cover the expressions a clip shows: farthest-point sampling in blendshape-weight space."""

from __future__ import annotations

import numpy as np


def select_keyframes(weights: np.ndarray, usable: np.ndarray | None = None, count: int = 30,
                     min_gap: int = 2) -> np.ndarray:
    """Sorted frame indices: the most neutral usable frame, then each next the farthest from those chosen.

    weights: (frames, shapes); usable: (frames,) bool (tracked, confident); min_gap: frames closer than
    this to a chosen one are skipped (neighbouring frames add little but cost as much).
    Stops early when every remaining frame is within a small distance of the chosen set (a clip with few
    expressions gets few keyframes).
    """
    weights = np.asarray(weights, np.float64)
    n = len(weights)
    ok = np.ones(n, bool) if usable is None else np.asarray(usable, bool).copy()
    if not ok.any() or count <= 0:
        return np.zeros(0, np.int64)
    chosen = [int(np.flatnonzero(ok)[np.argmin(np.linalg.norm(weights[ok], axis=1))])]
    dist = np.linalg.norm(weights - weights[chosen[0]], axis=1)
    dist[~ok] = -1
    while len(chosen) < count:
        for c in chosen[-1:]:
            dist[max(0, c - min_gap + 1): c + min_gap] = -1
        i = int(np.argmax(dist))
        if dist[i] < 0.05:  # nothing new: the rest repeats what is chosen
            break
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(weights - weights[i], axis=1))  # -1 (excluded) stays
    return np.sort(np.array(chosen, np.int64))
