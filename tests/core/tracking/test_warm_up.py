"""core.tracking.warm_up: the capture loads the tracking kernels during its landmark pass, for the argument
types the fit then meets (a new type would compile or load again on the fit's path)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CODE = """
import json
import numpy as np
from core.tracking import _kernels, warm_up
from core.tracking.gaze import EyeModel, gaze_from_iris
from core.tracking.lighting import fit_lighting
from core.tracking.smoothing import smooth

NAMES = ("iris_gaze", "one_euro", "sh_light_fit", "basis_columns", "project_points", "gn_step")
warm_up()
loaded = [len(_kernels.get(n).signatures) for n in NAMES]
rng = np.random.default_rng(0)
# as the tracker and the pipeline call them: float32 landmark rows, runs of frames, uint8 colours
eyes = EyeModel(rng.normal(size=(2, 3)) * 0.03, 0.012, np.tile([0.0, 0.0, 1.0], (2, 1)))
row = rng.uniform(200, 300, (478, 2)).astype(np.float32)
gaze_from_iris(row[[468, 473]][None], np.eye(3)[None], np.array([[0.0, 0.0, -0.5]]), eyes, 900.0, (320.0, 240.0))
smooth(rng.random((50, 53)), np.arange(50) / 30.0, 0.5, "weights", np.repeat([0, 1], 25))
smooth(rng.random((50, 2, 2)), np.arange(50) / 30.0, 0.5, "gaze")
normals = np.tile([0.0, 0.0, 1.0], (478, 1))
points = np.c_[rng.normal(0, 0.05, (478, 2)), np.full(478, -0.6)]
fit_lighting(rng.integers(0, 256, (10, 478, 3)).astype(np.uint8), normals, np.tile(np.eye(3), (10, 1, 1)),
             np.repeat(points[None], 10, 0), np.ones(478, bool))
print(json.dumps([loaded, [len(_kernels.get(n).signatures) for n in NAMES]]))
"""


def test_warm_up_loads_what_the_fit_calls_in_a_fresh_process():
    root = Path(__file__).resolve().parents[3]
    r = subprocess.run([sys.executable, "-c", CODE], cwd=root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    loaded, after = json.loads(r.stdout.strip().splitlines()[-1])
    assert all(n >= 1 for n in loaded), loaded  # every kernel loaded by the warm-up
    assert after == loaded  # and no new argument types afterwards
