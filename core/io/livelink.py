"""Live Link Face CSV (Epic's iPhone app): read a take into a Capture, write a Capture as a take.

Layout, as the app writes it (header and one row per sample; checked against recorded takes, e.g.
alexdjulin/LiveLinkFace-CSV-Retarget-For-Motionbuilder anim/S07-001.csv, and the column list of the
Blender LiveLinkFace add-on built on JimWest/PyLiveLinkFace):

    Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,...,TongueOut,HeadYaw,HeadPitch,HeadRoll,
    LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll
    12:27:47:47.169,61,0.0000000000,...

- The 52 ARKit names with the first letter capitalised, in the app's order (LLF_BLENDSHAPES; note the app
  lists JawRight before JawLeft and MouthRight before MouthLeft). BlendShapeCount is 61 (52 + 9 rotations).
- Timecode HH:MM:SS:FF.sss: FF counts frames at the timecode rate (60 by default in the app, also 30, 24,
  25, 48, 50) and .sss is the fraction of that frame in thousandths; seconds = h*3600 + m*60 + s + FF.sss/rate.
  The app records a sample every one or two timecode frames.
- Rotations are radians. We read HeadPitch/HeadYaw/HeadRoll as rotations about the head's X (right), Y (up)
  and Z (towards the camera) axes and store them as Capture.rotation = degrees([pitch, yaw, roll]) (XYZ
  Euler, see Capture); Left/RightEyeYaw/Pitch become Capture.gaze degrees [eye, (yaw, pitch)]; eye roll is
  not kept (ICT eyes have none) and is written as 0. The app's own sign conventions are not verified on a
  device (it flips yaw and pitch in landscape), so a take whose head turns the wrong way needs a sign flip.

Reading matches column names case-insensitively and in any order; the rotation columns are optional.
Weights are converted with core.facemodel.arkit (the one name table): TongueOut has no ICT shape and is
dropped on import; browInnerUp and cheekPuff drive both ICT halves, and on export are the mean of the halves.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np

from ..facemodel.arkit import ARKIT_NAMES, ICT_NAMES, arkit_to_ict, ict_to_arkit
from .capture import Capture

LLF_BLENDSHAPES: tuple[str, ...] = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
    "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight", "JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose",
    "MouthFunnel", "MouthPucker", "MouthRight", "MouthLeft", "MouthSmileLeft", "MouthSmileRight",
    "MouthFrownLeft", "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft",
    "MouthStretchRight", "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper",
    "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
    "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight",
    "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
)
LLF_ROTATIONS: tuple[str, ...] = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                                  "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
HEADER: tuple[str, ...] = ("Timecode", "BlendShapeCount", *LLF_BLENDSHAPES, *LLF_ROTATIONS)
TIMECODE_RATES = (24, 25, 30, 48, 50, 60)
DEFAULT_TIMECODE_RATE = 60  # the app's default
_TIMECODE = re.compile(r"^\s*(\d{1,3}):(\d{1,2}):(\d{1,2})[:;.](\d{1,3}(?:\.\d+)?)\s*$")
# LLF column -> index in ARKIT_NAMES (EyeBlinkLeft -> eyeBlinkLeft).
_ARKIT_INDEX = {c: ARKIT_NAMES.index(c[0].lower() + c[1:]) for c in LLF_BLENDSHAPES}


class LiveLinkError(ValueError):
    """A Live Link Face CSV is missing, empty, or malformed; the message says where."""


def _parse_timecode(text: str, line: int) -> tuple[float, float]:
    """'HH:MM:SS:FF.sss' -> (whole seconds, frames incl. fraction)."""
    m = _TIMECODE.match(text)
    if not m:
        raise LiveLinkError(f"line {line}: bad timecode {text!r} (expected HH:MM:SS:FF.sss)")
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if mi > 59 or s > 59:
        raise LiveLinkError(f"line {line}: bad timecode {text!r} (minutes and seconds must be below 60)")
    return h * 3600.0 + mi * 60.0 + s, float(m.group(4))


def _infer_rate(seconds: np.ndarray, frames: np.ndarray) -> int:
    """The timecode rate that makes the sample spacing most even (wraps of FF give the rate away).

    A take shorter than a second has no wrap; then the app's default (60) wins among the rates that fit.
    """
    candidates = [r for r in TIMECODE_RATES if r > frames.max()]
    if not candidates:
        raise LiveLinkError(f"timecode frame field reaches {frames.max():.0f}, above any common rate; "
                            "pass the take's frame rate (fps)")
    if len(seconds) < 3:
        return DEFAULT_TIMECODE_RATE if DEFAULT_TIMECODE_RATE in candidates else candidates[-1]
    best, best_score = None, None
    for r in candidates:
        d = np.diff(np.sort(seconds + frames / r))
        med = np.median(d)
        score = int(np.sum(np.abs(d - med) > 0.25 * med)) if med > 0 else len(d)
        if best_score is None or score < best_score or (score == best_score and r == DEFAULT_TIMECODE_RATE):
            best, best_score = r, score
    return best


def import_csv(path: str | Path, fps: float | None = None) -> Capture:
    """Read a Live Link Face CSV into a Capture (ICT weights, head rotation, gaze; timestamps from 0).

    fps: the timecode frame rate; None infers it (see _infer_rate). Capture.fps is the sample rate.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise LiveLinkError(f"{path}: no such file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise LiveLinkError(f"{path}: cannot read as text ({e})") from e
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        raise LiveLinkError(f"{path}: empty file")
    header = [c.strip() for c in rows[0]]
    column = {c.lower(): i for i, c in enumerate(header)}
    missing = [c for c in ("Timecode", *LLF_BLENDSHAPES) if c.lower() not in column]
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise LiveLinkError(f"{path}: not a Live Link Face CSV: missing column(s) {shown}")
    data = rows[1:]
    if not data:
        raise LiveLinkError(f"{path}: no data rows after the header")

    wanted = [c for c in (*LLF_BLENDSHAPES, *LLF_ROTATIONS) if c.lower() in column]
    cols = [column[c.lower()] for c in wanted]
    tc_col = column["timecode"]
    values = np.zeros((len(data), len(wanted)), np.float64)
    seconds = np.zeros(len(data))
    frames = np.zeros(len(data))
    for i, row in enumerate(data):
        line = i + 2
        if len(row) < len(header):
            raise LiveLinkError(f"{path}: line {line} has {len(row)} fields, the header has {len(header)}")
        seconds[i], frames[i] = _parse_timecode(row[tc_col], line)
        try:
            values[i] = [float(row[c]) for c in cols]
        except ValueError as e:
            raise LiveLinkError(f"{path}: line {line}: {e}") from e
    if not np.all(np.isfinite(values)):
        bad = int(np.argwhere(~np.isfinite(values))[0, 0]) + 2
        raise LiveLinkError(f"{path}: line {bad}: value is not a finite number")

    rate = float(fps) if fps else float(_infer_rate(seconds, frames))
    if frames.max() >= rate:
        raise LiveLinkError(f"{path}: timecode frame field reaches {frames.max():.0f}, not below {rate:g} fps")
    t = seconds + frames / rate
    t = np.where(t < t[0] - 43200, t + 86400, t)  # a take that runs over midnight
    order = np.argsort(t, kind="stable")
    t, values = t[order], values[order]
    start = float(t[0])

    by_name = dict(zip(wanted, values.T))
    arkit = np.zeros((len(t), len(ARKIT_NAMES)), np.float32)
    for c in LLF_BLENDSHAPES:
        arkit[:, _ARKIT_INDEX[c]] = by_name[c]
    weights = np.clip(arkit_to_ict(arkit, ICT_NAMES), 0.0, 1.0)
    zero = np.zeros(len(t))
    rot = lambda c: np.degrees(by_name.get(c, zero))
    rotation = np.stack([rot("HeadPitch"), rot("HeadYaw"), rot("HeadRoll")], axis=1)
    gaze = None
    if any(c in by_name for c in LLF_ROTATIONS[3:]):
        gaze = np.stack([np.stack([rot("LeftEyeYaw"), rot("LeftEyePitch")], 1),
                         np.stack([rot("RightEyeYaw"), rot("RightEyePitch")], 1)], axis=1).astype(np.float32)
    timestamps = t - start
    sample_fps = float(1.0 / np.median(np.diff(timestamps))) if len(t) > 1 and timestamps[-1] > 0 else rate
    first = data[int(order[0])][tc_col].strip()
    meta = {"source": "livelink_csv", "source_file": str(path), "timecode_fps": rate,
            "timecode_start": first, "timecode_start_seconds": start,
            "dropped": "TongueOut (no ICT shape)" if np.any(by_name["TongueOut"]) else ""}
    return Capture(names=ICT_NAMES, weights=weights, tracked=np.ones(len(t), bool), rotation=rotation,
                   translation=np.zeros((len(t), 3), np.float32), timestamps=timestamps, fps=sample_fps,
                   image_size=(0, 0), focal=0.0, gaze=gaze, metadata=meta)


def format_timecode(seconds: float, rate: float) -> str:
    """Seconds -> 'HH:MM:SS:FF.sss' at `rate` frames per second (thousandths of a frame)."""
    milli = int(round(seconds * rate * 1000))
    per_second = int(round(rate * 1000))
    whole, rest = divmod(milli, per_second)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    ff, sub = divmod(rest, 1000)
    return f"{h % 24:02d}:{m:02d}:{s:02d}:{ff:02d}.{sub:03d}"


def export_csv(capture: Capture, path: str | Path, fps: float | None = None) -> Path:
    """Write a Capture as a Live Link Face CSV; fps is the timecode rate (default 60, as the app).

    Timecode = the capture's timestamp (seconds from the video start) plus timecode_start_seconds when the
    capture came from a take (so a re-exported take keeps its timecodes). Untracked frames are written
    with their held-over values.
    """
    rate = float(fps or DEFAULT_TIMECODE_RATE)
    if rate <= 0:
        raise LiveLinkError(f"timecode rate must be positive, not {rate}")
    path = Path(path)
    arkit = ict_to_arkit(capture.weights, capture.names)  # (frames, 52) ARKIT_NAMES order
    n = capture.n_frames
    cols = [arkit[:, _ARKIT_INDEX[c]] for c in LLF_BLENDSHAPES]
    rad = np.radians(np.asarray(capture.rotation, np.float64))
    cols += [rad[:, 1], rad[:, 0], rad[:, 2]]  # HeadYaw, HeadPitch, HeadRoll
    zero = np.zeros(n)
    if capture.gaze is not None:
        g = np.radians(np.asarray(capture.gaze, np.float64))
        cols += [g[:, 0, 0], g[:, 0, 1], zero, g[:, 1, 0], g[:, 1, 1], zero]
    else:
        cols += [zero] * 6
    table = np.stack(cols, axis=1)
    start = float(capture.metadata.get("timecode_start_seconds", 0.0) or 0.0)
    stamps = [format_timecode(start + float(t), rate) for t in capture.timestamps]
    body = io.StringIO()
    np.savetxt(body, table, fmt="%.8f", delimiter=",")
    lines = body.getvalue().splitlines()
    path.parent.mkdir(parents=True, exist_ok=True)
    count = len(LLF_BLENDSHAPES) + len(LLF_ROTATIONS)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(HEADER) + "\n")
        for tc, line in zip(stamps, lines):
            f.write(f"{tc},{count},{line}\n")
    return path
