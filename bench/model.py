"""Time building a PersonalModel of a 60-second clip end to end (keyframes, lighting, albedo over every frame;
with --shapes the personal blendshapes too, which are opt-in).

    python bench/model.py [VIDEO] [--capture CAPTURE.npz] [--seconds 60] [--loop] [--shapes]

Without VIDEO: ../shared/media/clips/liveportrait_driving_d6.mp4 played forward then backward until it lasts
--seconds (a real face, 480x480), written to --work. The capture is made first in a separate process (not
timed, and its memory not counted); then this process builds the model. peak_mb is this process's peak
resident memory while modeling (sampled) minus its size before. Last line: seconds=... clip_seconds=... peak_mb=...

--loop times what `python -m core capture VIDEO --personalize` adds to a capture instead (core.modeling
.personalize): without --shapes the model alone (there is nothing to re-track with); with --shapes the model,
then re-tracking with it and fitting the shapes again while the landmark fit improves (up to two shape fits
and two re-tracks, then one albedo pass); retracks=... says how many re-tracks it ran.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    """Current resident memory (Linux /proc), else the peak so far (ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _Peak:
    """Samples the resident memory every 50 ms on a thread; .peak is the largest seen."""

    def __init__(self):
        import threading

        self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _rss_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _rss_mb())


def ping_pong(src: Path, dst: Path, seconds: float) -> Path:
    """A clip of `seconds` made of src forward, backward, forward, ... (no cut in the motion)."""
    import cv2

    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    need = int(round(seconds * fps))
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    order = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
    for i in range(need):
        out.write(frames[order[i % len(order)]])
    out.release()
    return dst


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="?")
    p.add_argument("--capture", default=None, help="its Capture .npz (default: captured here first)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the default clip")
    p.add_argument("--work", default="/tmp/likeness_model_bench")
    p.add_argument("--loop", action="store_true", help="time the modeling and re-tracking loop (--personalize)")
    p.add_argument("--shapes", action="store_true",
                   help="with personal blendshapes (opt-in; with --loop: the shape fits and re-tracks as well)")
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.video:
        video = Path(args.video)
    else:
        src = ROOT.parent / "shared/media/clips/liveportrait_driving_d6.mp4"
        if not src.exists():
            print("no video given and ../shared/media/clips is not here", file=sys.stderr)
            return 2
        video = work / f"d6_pingpong_{int(args.seconds)}s.mp4"
        if not video.exists():
            ping_pong(src, video, args.seconds)
    capture_path = Path(args.capture) if args.capture else work / (video.stem + ".capture.npz")
    if not capture_path.exists():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "core", "capture", str(video), "-o", str(capture_path), "--quiet"],
                       cwd=ROOT, check=True)
        print(f"capture (not timed): {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    from core.facemodel import load_face_model
    from core.io.capture import Capture
    from core.modeling import ModelingOptions, build_personal_model, personalize
    from core.video import open_video

    model = load_face_model()
    capture = Capture.load(capture_path)
    reader = open_video(video)
    clip_seconds = reader.duration
    import numpy as np  # noqa: F401 - loaded before the baseline so its size is not counted

    base = _rss_mb()
    watch = _Peak()
    t0 = time.perf_counter()
    options = ModelingOptions(personal_shapes=args.shapes)
    if args.loop:
        person, _ = personalize(video, capture, options, model=model)
    else:
        person = build_personal_model(video, capture, options, model=model)
    seconds = time.perf_counter() - t0
    peak = watch.stop() - base
    timing = person.metadata.get("timing", {})
    print(" ".join(f"{k}={v:.1f}" for k, v in timing.items()), file=sys.stderr)
    print(f"frames={capture.n_frames} fitted_shapes={len(person.metadata['fitted_shapes'])} "
          f"dynamic={','.join(person.dynamic_albedo_names) or '-'}", file=sys.stderr)
    if args.loop:  # the landmark fit's RMS (px): generic, then after each re-track
        print(f"tracking_rms_px={person.metadata.get('tracking_rms_px')}", file=sys.stderr)
    retracks = f" retracks={max(len(person.metadata.get('tracking_rms_px', [])) - 1, 0)}" if args.loop else ""
    print(f"seconds={seconds:.1f} clip_seconds={clip_seconds:.1f} peak_mb={peak:.0f}{retracks}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
