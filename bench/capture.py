"""Capture speed and memory: end to end and per stage, on a 720p clip and on a 10-minute clip.

The 10-minute clip is the same video looped by the reader (nothing is written to disk): a wrapper
around core.video's reader replays the file with continuing frame numbers and timestamps, and the
pipeline (core.pipeline.capture_frames) streams it exactly as it streams a file.
Stages: decode (a decode-only pass), landmarks (MediaPipe, its own time, decode waits excluded),
fitting (keyframes: focal + identity once per clip; frames: the per-frame loop), lighting (second pass).
The short clip runs twice (see main: the first capture in a process also loads the fit's kernels).
Memory: peak RSS (ru_maxrss), RSS sampled through the run and per stage (when it began, its highest); flat =
the landmark stage, which streams the video, does not grow from a tenth of it to its end on the long run (the
short run's first tenth also loads the model and the compiled kernels beside it), and the fit's stages add
as much on top of it on the long run as on the short one.

With --photometric the capture also refines every few frames against their pixels (the accurate mode; the
face crops it reads are kept by the landmark pass, so the clip is still decoded once): photometric_ms is
that stage per frame. fit_ms is all the fitting per frame (keyframes, the per-frame loop, the refinement and
the per-frame lighting, which issue 3 counts as fitting, and keep_ms: what the landmark pass stores for the
fit, the points, the colours under them and the refinement's face crops; the landmark fit alone is
fit_landmark_ms), and fit_share is fit_ms over the landmark stage's time per frame, MediaPipe's own (issue 3's
target: at most 0.25).

Run: .venv/bin/python bench/capture.py [VIDEO] [--minutes 10] [--quality balanced] [--photometric
     [--photometric-stride N]]
Last line (the longest run): fps=... landmark_fps=... fit_ms=... peak_mb=... tracked=...
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT = ROOT.parent / "shared" / "media" / "clips" / "liveportrait_source_s32.mp4"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Looped:
    """A VideoReader replayed `times` times: frame indices and timestamps continue across the loops."""

    def __init__(self, reader, times: int):
        self.reader, self.times = reader, times
        self.width, self.height, self.fps = reader.width, reader.height, reader.fps
        self.frame_count = reader.frame_count * times

    def __iter__(self):
        from core.video import Frame

        n, period = self.reader.frame_count, self.reader.frame_count / self.fps
        for k in range(self.times):
            for f in self.reader:
                yield Frame(f.index + k * n, f.timestamp_s + k * period, f.image)


def decode_fps(path: Path) -> tuple[float, int]:
    from core.video import open_video

    t0 = time.perf_counter()
    n = sum(1 for _ in open_video(path, prefetch=0))
    return n / (time.perf_counter() - t0), n


def run(reader, source: str, quality: str, label: str, photometric: bool = False, stride: int | None = None) -> dict:
    from core.job import Job
    from core.pipeline import CaptureOptions, capture_frames

    samples = []
    stages: dict[str, list[float]] = {}  # stage -> [RSS when it began, its highest RSS]
    landmark_rss: list[float] = []  # through the landmark stage from a tenth of it on

    def on_progress(p):
        if not samples or p.fraction - samples[-1][0] >= 0.1:
            samples.append((p.fraction, rss_mb()))
        now = rss_mb()
        seen = stages.setdefault(p.stage, [now, now])
        seen[1] = max(seen[1], now)
        if p.stage == "landmarks" and p.total and p.done >= 0.1 * p.total:
            landmark_rss.append(now)

    t0 = time.perf_counter()
    options = CaptureOptions(quality=quality, photometric=photometric)
    if stride is not None:
        options.photometric_stride = stride
    cap = capture_frames(reader, options, Job(on_progress=on_progress), source=source)
    wall = time.perf_counter() - t0
    t = cap.metadata["timing"]
    n = cap.n_frames
    fit_s = t["fitting_s"] + t.get("photometric_s", 0.0) + t["lighting_s"] + t["keep_s"]
    out = {
        "frames": n,
        "fps": n / wall,
        "landmark_fps": n / t["landmarks_s"],
        "decode_wait_ms": 1e3 * t["decode_wait_s"] / n,
        "fit_ms": 1e3 * fit_s / n,
        "fit_share": fit_s / t["landmarks_s"],
        "fit_landmark_ms": 1e3 * t["fitting_s"] / n,
        "fit_frame_ms": 1e3 * t["fit_frames_s"] / max(t["fit_fitted_frames"], 1),
        "fit_keyframes_s": t["fit_keyframes_s"],
        "lighting_ms": 1e3 * t["lighting_s"] / n,
        "keep_ms": 1e3 * t["keep_s"] / n,  # the landmark pass keeping points, colours and face crops for the fit
        "photometric_ms": 1e3 * t.get("photometric_s", 0.0) / n,
        "backend_s": t.get("backend_s", 0.0),  # once per capture: the detector's set-up
        "warm_up_wait_s": t.get("warm_up_wait_s", 0.0),  # the kernels' loading, where the landmarks were faster
        "peak_mb": peak_mb(),
        "tracked": float(cap.tracked.mean()),
        "rss_mb_by_progress": [(round(f, 2), round(m)) for f, m in samples],
        "rss_mb_by_stage": {k: (round(a), round(b)) for k, (a, b) in stages.items()},
    }
    # Flat memory: the landmark stage streams the video, so growth with the clip's length would show there
    # (from a tenth of it to its end); the stages after it hold the clip's results (~0.5 KB a frame) and fixed
    # set-ups (the photometric refiner's shape tables, ~80 MB), which come on top whatever the length.
    out["landmark_rss_growth_mb"] = round(landmark_rss[-1] - landmark_rss[0]) if landmark_rss else 0
    out["fit_rss_above_landmarks_mb"] = round(max(b for a, b in stages.values()) - landmark_rss[-1]) \
        if landmark_rss else 0
    print(f"{label}: {n} frames in {wall:.1f}s " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                           for k, v in out.items()), flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="?", type=Path, default=DEFAULT)
    p.add_argument("--minutes", type=float, default=10.0, help="length of the looped run (0: skip it)")
    p.add_argument("--quality", default="balanced")
    p.add_argument("--photometric", action="store_true", help="the accurate mode (refined against the pixels)")
    p.add_argument("--photometric-stride", type=int, default=None, help="with --photometric: refine every n-th frame")
    args = p.parse_args()

    from core.video import open_video

    print(f"load: {os.getloadavg()[0]:.2f} (1-minute load average on {os.cpu_count()} cores)")
    fps, n = decode_fps(args.video)
    print(f"decode only: {n} frames at {fps:.0f} fps ({1e3 / fps:.2f} ms/frame)")
    reader = open_video(args.video)
    print(f"video: {args.video.name} {reader.width}x{reader.height} {reader.fps:.2f} fps")
    # The short clip twice in this process. The first capture loads the fit's compiled kernels on a second thread
    # during its landmark pass (~0.8 s of CPU: numba's import and cache reads), which on 2 cores slows that pass
    # by about as much as it hides: its fit_share is flattered. The second runs with the kernels loaded, its
    # landmark stage MediaPipe's own: its fit_share is the short clip's. The first's loading, counted as fitting,
    # is what its landmark stage took beyond the second's.
    first = run(reader, str(args.video), args.quality, "clip, first capture in this process", args.photometric,
                args.photometric_stride)
    short = run(open_video(args.video), str(args.video), args.quality, "clip, second capture", args.photometric,
                args.photometric_stride)
    n = short["frames"]
    loading_s = n / first["landmark_fps"] - n / short["landmark_fps"]
    first_share = (first["fit_ms"] * n / 1e3 + max(loading_s, 0.0)) / (n / short["landmark_fps"])
    print(f"short clip: fit_share={short['fit_share']:.3f} (second capture); the first capture's landmark stage "
          f"took {loading_s:+.2f} s more while the kernels loaded: counted as fitting, fit_share={first_share:.3f}")
    last = short
    if args.minutes > 0:
        times = max(1, int(round(args.minutes * 60 * reader.fps / reader.frame_count)))
        last = run(Looped(open_video(args.video), times), f"{args.video} x{times}", args.quality,
                   f"looped x{times} ({times * reader.frame_count / reader.fps / 60:.1f} min)", args.photometric,
                   args.photometric_stride)
        print(f"memory: the landmark stage grew {last['landmark_rss_growth_mb']} MB from a tenth of it to its end "
              f"on the long run ({short['landmark_rss_growth_mb']} on the short one); the fit's stages went "
              f"{last['fit_rss_above_landmarks_mb']} MB above its end ({short['fit_rss_above_landmarks_mb']} on the "
              f"short one); peak {last['peak_mb']:.0f} MB after the long run, {short['peak_mb']:.0f} after the short")
    print(f"load: {os.getloadavg()[0]:.2f}")
    print(" ".join(f"{k}={last[k]:.4g}" for k in ("fps", "landmark_fps", "fit_ms", "peak_mb", "tracked")))


if __name__ == "__main__":
    main()
