"""capture --personalize: one job captures, models the person, re-tracks, and the CLI writes both files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.io.capture import Capture
from core.io.personal import PersonalModel
from core.job import Job
from core.pipeline import CaptureOptions, run_capture

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from core.synth import generate

    out = tmp_path_factory.mktemp("personal_clip")
    generate(seed=31, frames=30, size=(256, 256), personal=True, out_dir=out)
    return out / "video.mp4"


@pytest.mark.slow
def test_run_capture_personalize(clip):
    stages = []
    result = run_capture(clip, CaptureOptions(personalize=True), Job(on_progress=lambda p: stages.append(p)))
    assert isinstance(result.personal, PersonalModel)
    assert result.capture.n_frames == 30 and result.capture.tracked.all()
    assert {"landmarks", "fitting", "albedo"} <= {p.stage for p in stages}
    assert stages[-1].fraction <= 1.0 and max(p.fraction for p in stages) > 0.95
    fractions = [p.fraction for p in stages]  # the modeling rounds move the bar on, never back
    assert all(b >= a - 1e-9 for a, b in zip(fractions, fractions[1:]))
    assert result.personal.albedo.shape[0] >= 1024


def test_without_personalize_no_model(clip):
    result = run_capture(clip, CaptureOptions(quality="fast"))
    assert result.personal is None and isinstance(result.capture, Capture)


@pytest.mark.slow
def test_cli_writes_capture_and_person(clip, tmp_path):
    out = tmp_path / "cap.npz"
    r = subprocess.run([sys.executable, "-m", "core", "capture", str(clip), "-o", str(out), "--personalize",
                        "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    person = PersonalModel.load(tmp_path / "cap.person.npz")
    cap = Capture.load(out)
    assert cap.metadata["personal_model"].endswith("cap.person.npz")
    assert np.isfinite(person.albedo).all()


def test_a_clip_too_short_to_model_still_gives_its_capture(clip, tmp_path):
    """Three frames: no personal model (a clear reason), but the capture is made, and the CLI writes it and
    exits non-zero for the model it could not make."""
    result = run_capture(clip, CaptureOptions(stop=3, personalize=True))
    assert result.personal is None and result.capture.n_frames == 3 and result.capture.tracked.all()
    assert "at least 5 frames" in result.personal_error and "has 3" in result.personal_error

    out = tmp_path / "short.npz"
    r = subprocess.run([sys.executable, "-m", "core", "capture", str(clip), "-o", str(out), "--end", "3",
                        "--personalize", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "no personal model: a personal model needs at least 5 frames" in r.stderr
    assert Capture.load(out).n_frames == 3 and not (tmp_path / "short.person.npz").exists()
