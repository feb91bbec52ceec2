"""PersonalModel: one person's blendshapes and albedo maps, saved as .npz (no pickle), .json and PNG textures."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1

# Dynamic albedo deltas are written to 8-bit PNGs as 0.5 + delta / (2 * scale), scale recorded in the .json.
_PNG_DELTA_RANGE = 0.25


class PersonalModelFileError(ValueError):
    """A personal-model file is missing, not a personal model, or inconsistent; the message says which."""


@dataclass
class PersonalModel:
    """A person's face model: the ICT model plus per-person corrections (metres, model space, Y up).

    The personal head for identity coefficients `identity` and expression weights w is
        neutral + identity @ identity_basis + neutral_correction + w @ (expressions + expression_corrections),
    so `expression_deltas(face_model)` = generic ICT delta + correction, one per ICT expression name.

    Corrections are parameterised as maps over the face's UV tile (tile 0 of the ICT layout, x = u,
    row 0 at v = 1, `correction_maps`: (1 + 53, R, R, 3) metres, the neutral map first), sampled at the
    face vertices' UVs and multiplied by a per-shape mask (zero where the generic shape does not move the
    skin); `expression_corrections` holds the sampled result that tracking and Blender use.

    Albedo maps use the atlas of core.render.atlas (x right, y down in [0, 1]), RGB in the video's own
    (display) colour values 0..1, lighting divided out. Dynamic albedo: `dynamic_albedo[k]` is the albedo
    change at weight 1 of shape `dynamic_albedo_names[k]`, at a coarser resolution than `albedo`
    (upsample bilinearly); the albedo at weights w is albedo + sum_k w[name_k] * dynamic_albedo[k].
    """

    identity: np.ndarray  # (100,) float32
    neutral_correction: np.ndarray  # (V, 3) float32 metres
    expression_names: tuple[str, ...]  # (53,) ICT names
    expression_corrections: np.ndarray  # (53, V, 3) float32 metres, added to the generic ICT deltas
    albedo: np.ndarray  # (S, S, 3) float32 0..1 RGB, atlas layout
    dynamic_albedo_names: tuple[str, ...] = ()  # (k,) ICT names of the shapes that change the texture
    dynamic_albedo: np.ndarray | None = None  # (k, s, s, 3) float32 albedo deltas at weight 1
    correction_maps: np.ndarray | None = None  # (54, R, R, 3) float32 metres: neutral, then 53 expressions
    lighting: np.ndarray | None = None  # (9, 3) mean SH irradiance over the clip (camera space)
    eye_colour: np.ndarray | None = None  # (3,) the irises' albedo, display RGB 0..1; None: never seen
    metadata: dict = field(default_factory=dict)  # id, source video, capture, keyframes, options, figures

    def __post_init__(self):
        self.identity = np.asarray(self.identity, np.float32)
        self.neutral_correction = np.asarray(self.neutral_correction, np.float32)
        self.expression_names = tuple(str(n) for n in self.expression_names)
        self.expression_corrections = np.asarray(self.expression_corrections, np.float32)
        self.albedo = np.asarray(self.albedo, np.float32)
        self.dynamic_albedo_names = tuple(str(n) for n in self.dynamic_albedo_names)
        k = len(self.dynamic_albedo_names)
        if self.dynamic_albedo is None:
            self.dynamic_albedo = np.zeros((0, 1, 1, 3), np.float32)
        self.dynamic_albedo = np.asarray(self.dynamic_albedo, np.float32)
        self.metadata.setdefault("id", uuid.uuid4().hex)
        v = self.neutral_correction.shape[0]
        if self.neutral_correction.shape != (v, 3):
            raise PersonalModelFileError(f"neutral_correction must be (V, 3), got {self.neutral_correction.shape}")
        if self.expression_corrections.shape != (len(self.expression_names), v, 3):
            raise PersonalModelFileError(
                f"expression_corrections {self.expression_corrections.shape} do not match "
                f"{len(self.expression_names)} names and {v} vertices")
        if self.albedo.ndim != 3 or self.albedo.shape[0] != self.albedo.shape[1] or self.albedo.shape[2] != 3:
            raise PersonalModelFileError(f"albedo must be (S, S, 3), got {self.albedo.shape}")
        if self.dynamic_albedo.shape[0] != k or self.dynamic_albedo.ndim != 4:
            raise PersonalModelFileError(
                f"dynamic_albedo {self.dynamic_albedo.shape} does not match {k} dynamic albedo names")
        if self.eye_colour is not None:
            self.eye_colour = np.asarray(self.eye_colour, np.float32)
            if self.eye_colour.shape != (3,) or not np.isfinite(self.eye_colour).all():
                raise PersonalModelFileError(f"eye_colour must be 3 finite values, got {self.eye_colour}")
        unknown = set(self.dynamic_albedo_names) - set(self.expression_names)
        if unknown:
            raise PersonalModelFileError(f"dynamic albedo for unknown shapes: {sorted(unknown)}")

    @property
    def id(self) -> str:
        return str(self.metadata["id"])

    @property
    def n_vertices(self) -> int:
        return self.neutral_correction.shape[0]

    def expression_deltas(self, face_model) -> np.ndarray:
        """(53, V, 3) personal expression deltas in face_model's expression order (generic + correction)."""
        return expression_deltas(self, face_model)

    def neutral(self, face_model) -> np.ndarray:
        """(V, 3) the person's neutral head: fitted identity plus the neutral correction."""
        return face_model.identity_shape(self.identity) + self.neutral_correction

    def vertices(self, face_model, weights: np.ndarray) -> np.ndarray:
        """(V, 3) or (frames, V, 3) model-space vertices of this person for weights (53,) or (frames, 53)."""
        return self.neutral(face_model) + np.tensordot(np.asarray(weights, np.float32),
                                                       self.expression_deltas(face_model), axes=1)

    def albedo_at(self, weights: np.ndarray, size: int | None = None) -> np.ndarray:
        """(S, S, 3) albedo for one frame's weights (53,) in expression_names order: static + dynamic."""
        import cv2

        size = size or self.albedo.shape[0]
        base = self.albedo if self.albedo.shape[0] == size else cv2.resize(self.albedo, (size, size),
                                                                           interpolation=cv2.INTER_AREA)
        if not self.dynamic_albedo_names:
            return base.copy()
        w = np.asarray(weights, np.float32)
        index = [self.expression_names.index(n) for n in self.dynamic_albedo_names]
        delta = np.tensordot(w[index], self.dynamic_albedo, axes=1)
        delta = cv2.resize(delta, (size, size), interpolation=cv2.INTER_LINEAR)
        return np.clip(base + delta, 0.0, 1.0)

    def save(self, path: str | Path, textures: bool = True) -> Path:
        """Write PATH.npz, PATH.json and (textures=True) PNGs beside it; returns the .npz path.

        PNGs: <stem>.albedo.png (8-bit sRGB-as-is, as the video's values) and <stem>.dynamic.<name>.png
        (8-bit, 0.5 + delta / (2 * range), range in the .json under "dynamic_albedo_png_range").
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "identity": self.identity,
            "neutral_correction": self.neutral_correction,
            "expression_names": np.array(self.expression_names),
            "expression_corrections": self.expression_corrections,
            # 8 bits per channel is what the source video has; half floats keep signed deltas exact enough.
            "albedo": _to_u8(self.albedo),
            "dynamic_albedo_names": np.array(self.dynamic_albedo_names, dtype="U64"),
            "dynamic_albedo": self.dynamic_albedo.astype(np.float16),
        }
        if self.correction_maps is not None:
            arrays["correction_maps"] = np.asarray(self.correction_maps, np.float32)
        if self.lighting is not None:
            arrays["lighting"] = np.asarray(self.lighting, np.float32)
        if self.eye_colour is not None:
            arrays["eye_colour"] = self.eye_colour
        np.savez_compressed(path, **arrays)
        meta = {"format": "likeness.personal_model", "version": FORMAT_VERSION,
                "vertices": self.n_vertices, "albedo_size": self.albedo.shape[0],
                "dynamic_albedo_names": list(self.dynamic_albedo_names),
                "dynamic_albedo_size": int(self.dynamic_albedo.shape[1]) if self.dynamic_albedo_names else 0,
                "eye_colour": None if self.eye_colour is None else [round(float(c), 4) for c in self.eye_colour],
                **self.metadata}
        if textures:
            meta["textures"] = self.write_textures(path)
            meta["dynamic_albedo_png_range"] = _PNG_DELTA_RANGE
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1, default=_json_default), encoding="utf-8")
        return path

    def write_textures(self, path: str | Path) -> dict[str, str]:
        """PNG textures beside PATH.npz for people and Blender; returns {"albedo": file, name: file, ...}."""
        import cv2

        path = Path(path)
        stem = path.with_suffix("")
        files = {}
        albedo_file = Path(f"{stem}.albedo.png")
        cv2.imwrite(str(albedo_file), cv2.cvtColor(_to_u8(self.albedo), cv2.COLOR_RGB2BGR))
        files["albedo"] = albedo_file.name
        for name, delta in zip(self.dynamic_albedo_names, self.dynamic_albedo):
            f = Path(f"{stem}.dynamic.{name}.png")
            encoded = np.clip(0.5 + delta / (2 * _PNG_DELTA_RANGE), 0.0, 1.0)
            cv2.imwrite(str(f), cv2.cvtColor(_to_u8(encoded), cv2.COLOR_RGB2BGR))
            files[name] = f.name
        return files

    @classmethod
    def load(cls, path: str | Path) -> PersonalModel:
        path = Path(path)
        if not path.exists():
            raise PersonalModelFileError(f"{path}: no such personal model file")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # zipfile/ValueError/OSError: all mean "not a personal model"
            raise PersonalModelFileError(f"{path}: not a readable personal model .npz ({e})") from e
        need = {"identity", "neutral_correction", "expression_names", "expression_corrections", "albedo"}
        missing = need - set(arrays)
        if missing:
            raise PersonalModelFileError(f"{path}: not a personal model (missing {', '.join(sorted(missing))})")
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        for k in ("format", "version", "vertices", "albedo_size", "dynamic_albedo_names", "dynamic_albedo_size",
                  "eye_colour", "textures", "dynamic_albedo_png_range"):
            meta.pop(k, None)
        albedo = arrays["albedo"]
        albedo = albedo.astype(np.float32) / 255.0 if albedo.dtype == np.uint8 else albedo
        return cls(
            identity=arrays["identity"], neutral_correction=arrays["neutral_correction"],
            expression_names=tuple(str(n) for n in arrays["expression_names"]),
            expression_corrections=arrays["expression_corrections"], albedo=albedo,
            dynamic_albedo_names=tuple(str(n) for n in arrays.get("dynamic_albedo_names", ())),
            dynamic_albedo=arrays.get("dynamic_albedo"), correction_maps=arrays.get("correction_maps"),
            lighting=arrays.get("lighting"), eye_colour=arrays.get("eye_colour"), metadata=meta)


def expression_deltas(personal: PersonalModel, face_model) -> np.ndarray:
    """(53, V, 3) float32 generic ICT deltas + the person's corrections, in face_model's expression order."""
    names = tuple(face_model.expression_names)
    if personal.n_vertices != face_model.n_vertices:
        raise PersonalModelFileError(
            f"personal model has {personal.n_vertices} vertices, the face model {face_model.n_vertices}")
    if names == personal.expression_names:
        return np.asarray(face_model.expressions) + personal.expression_corrections
    order = {n: i for i, n in enumerate(personal.expression_names)}
    out = np.array(face_model.expressions, np.float32)
    for i, n in enumerate(names):
        if n in order:
            out[i] += personal.expression_corrections[order[n]]
    return out


def generic_personal_model(face_model, identity: np.ndarray | None = None, albedo: np.ndarray | None = None,
                           metadata: dict | None = None) -> PersonalModel:
    """A PersonalModel with no corrections (the generic ICT expressions), e.g. when a clip is unusable."""
    v = face_model.n_vertices
    names = tuple(face_model.expression_names)
    return PersonalModel(
        identity=np.zeros(100, np.float32) if identity is None else identity,
        neutral_correction=np.zeros((v, 3), np.float32), expression_names=names,
        expression_corrections=np.zeros((len(names), v, 3), np.float32),
        albedo=np.full((1024, 1024, 3), 0.6, np.float32) if albedo is None else albedo,
        metadata=dict(metadata or {}))


def _to_u8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(image, np.float32) * 255.0), 0, 255).astype(np.uint8)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
