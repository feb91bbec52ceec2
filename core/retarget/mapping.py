"""Mapping tables from capture weights to a character's shape keys: the formula, the JSON file, apply().

Each row drives one target shape key from a weighted sum of source weights (ARKit names by default):

    s      = sum_i w_i * source_i + offset
    target = clamp(gain * sign(s) * |s| ** gamma, lo, hi)

With gain = gamma = 1 this is the plain weighted sum; gamma < 1 lifts small values, gamma > 1 damps them.
The signed power keeps the curve defined (and odd) for negative sums, so a row with negative weights
(e.g. "open but not rounded" = jawOpen - mouthFunnel) still clamps cleanly. clamp = None leaves the
value unclamped. apply() is one matrix multiply plus elementwise work, so 18,000 frames cost milliseconds.

JSON file (UTF-8), version 1:

    {"format": "likeness.mapping", "version": 1, "source": "arkit",   # or "ict"
     "name": "optional label",
     "rows": [{"target": "Mouth_Smile_L", "sources": {"mouthSmileLeft": 1.0},
               "offset": 0.0, "clamp": [0.0, 1.0], "gain": 1.0, "gamma": 1.0}, ...]}

"target" and "sources" are required; the other row keys default to the values shown. Source names are
the 52 ARKit names (core.facemodel.arkit.ARKIT_NAMES) for source "arkit", the 53 ICT names for "ict".
Unknown keys, unknown source names, duplicate targets and non-numbers are MappingErrors, so a typo in a
hand-edited preset is reported instead of silently driving nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..facemodel.arkit import ARKIT_NAMES, ICT_NAMES, ict_to_arkit

FORMAT = "likeness.mapping"
VERSION = 1
SOURCE_NAMES = {"arkit": ARKIT_NAMES, "ict": ICT_NAMES}
_ROW_KEYS = {"target", "sources", "offset", "clamp", "gain", "gamma"}


class MappingError(ValueError):
    """A mapping file or table is malformed; the message says where."""


@dataclass
class MappingRow:
    """One target shape key: target = clamp(gain * spow(sum_i w_i * source_i + offset, gamma), *clamp)."""

    target: str
    sources: dict[str, float]
    offset: float = 0.0
    clamp: tuple[float, float] | None = (0.0, 1.0)
    gain: float = 1.0
    gamma: float = 1.0

    def to_json(self) -> dict:
        return {"target": self.target, "sources": {k: float(v) for k, v in self.sources.items()},
                "offset": float(self.offset), "clamp": None if self.clamp is None else list(self.clamp),
                "gain": float(self.gain), "gamma": float(self.gamma)}


@dataclass
class Mapping:
    """Rows in target order; source is "arkit" or "ict" (which names the rows' sources use)."""

    rows: list[MappingRow] = field(default_factory=list)
    source: str = "arkit"
    name: str = ""

    def __post_init__(self):
        if self.source not in SOURCE_NAMES:
            raise MappingError(f"source must be one of {sorted(SOURCE_NAMES)}, not {self.source!r}")

    @property
    def targets(self) -> list[str]:
        return [r.target for r in self.rows]

    def row(self, target: str) -> MappingRow | None:
        return next((r for r in self.rows if r.target == target), None)

    def used_sources(self) -> list[str]:
        """Source names any row reads, in the source table's order."""
        used = {s for r in self.rows for s in r.sources}
        return [n for n in SOURCE_NAMES[self.source] if n in used]

    def matrix(self, source_names: list[str] | tuple[str, ...]) -> np.ndarray:
        """(targets, len(source_names)) weights; sources the mapping names but the list lacks are left out."""
        index = {n: i for i, n in enumerate(source_names)}
        m = np.zeros((len(self.rows), len(source_names)), np.float32)
        for t, row in enumerate(self.rows):
            for s, w in row.sources.items():
                if s in index:
                    m[t, index[s]] += w
        return m

    def to_json(self) -> dict:
        out = {"format": FORMAT, "version": VERSION, "source": self.source}
        if self.name:
            out["name"] = self.name
        out["rows"] = [r.to_json() for r in self.rows]
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, data, where: str = "mapping") -> Mapping:
        return _parse(data, where)

    @classmethod
    def load(cls, path: str | Path) -> Mapping:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise MappingError(f"{path}: cannot read ({e.strerror or e})") from e
        except UnicodeDecodeError as e:
            raise MappingError(f"{path}: not UTF-8 text") from e
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise MappingError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from e
        return _parse(data, str(path))


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MappingError(f"{what} must be a finite number, not {value!r}")
    return float(value)


def _parse(data, where: str) -> Mapping:
    if not isinstance(data, dict):
        raise MappingError(f"{where}: expected a JSON object at the top level")
    if data.get("format") != FORMAT:
        raise MappingError(f"{where}: not a Likeness mapping (\"format\" is {data.get('format')!r}, "
                           f"expected {FORMAT!r})")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise MappingError(f"{where}: \"version\" must be a positive integer, not {version!r}")
    if version > VERSION:
        raise MappingError(f"{where}: version {version} is newer than this Likeness reads ({VERSION})")
    source = data.get("source", "arkit")
    if source not in SOURCE_NAMES:
        raise MappingError(f"{where}: \"source\" must be one of {sorted(SOURCE_NAMES)}, not {source!r}")
    rows = data.get("rows")
    if not isinstance(rows, list):
        raise MappingError(f"{where}: \"rows\" must be a list")
    known = set(SOURCE_NAMES[source])
    parsed, seen = [], set()
    for i, row in enumerate(rows):
        at = f"{where}: row {i + 1}"
        if not isinstance(row, dict):
            raise MappingError(f"{at}: expected an object")
        extra = set(row) - _ROW_KEYS
        if extra:
            raise MappingError(f"{at}: unknown key(s) {', '.join(sorted(map(repr, extra)))}")
        target = row.get("target")
        if not isinstance(target, str) or not target:
            raise MappingError(f"{at}: \"target\" must be a non-empty string")
        at = f"{where}: row {i + 1} ({target!r})"
        if target in seen:
            raise MappingError(f"{at}: target appears twice")
        seen.add(target)
        sources = row.get("sources")
        if not isinstance(sources, dict):
            raise MappingError(f"{at}: \"sources\" must be an object of name: weight")
        for s in sources:
            if s not in known:
                raise MappingError(f"{at}: unknown {source} source name {s!r}")
        clamp = row.get("clamp", [0.0, 1.0])
        if clamp is not None:
            if not isinstance(clamp, list | tuple) or len(clamp) != 2:
                raise MappingError(f"{at}: \"clamp\" must be [min, max] or null")
            clamp = (_number(clamp[0], f"{at}: clamp min"), _number(clamp[1], f"{at}: clamp max"))
            if clamp[0] > clamp[1]:
                raise MappingError(f"{at}: clamp min {clamp[0]} is above max {clamp[1]}")
        gamma = _number(row.get("gamma", 1.0), f"{at}: gamma")
        if gamma <= 0:
            raise MappingError(f"{at}: gamma must be above 0, not {gamma}")
        parsed.append(MappingRow(
            target=target, sources={s: _number(w, f"{at}: weight of {s}") for s, w in sources.items()},
            offset=_number(row.get("offset", 0.0), f"{at}: offset"), clamp=clamp,
            gain=_number(row.get("gain", 1.0), f"{at}: gain"), gamma=gamma))
    name = data.get("name", "")
    return Mapping(rows=parsed, source=source, name=name if isinstance(name, str) else "")


def apply(mapping: Mapping, source_weights: np.ndarray, source_names) -> np.ndarray:
    """source_weights (frames, sources) named by source_names -> (frames, targets) float32 in row order.

    Sources a row names but source_names lacks contribute 0 (e.g. tongueOut, which ICT captures lack);
    see missing_sources() to report them.
    """
    x = np.asarray(source_weights, np.float32)
    if x.ndim != 2 or x.shape[1] != len(source_names):
        raise MappingError(f"source weights {x.shape} do not match {len(source_names)} source names")
    rows = mapping.rows
    s = x @ mapping.matrix(list(source_names)).T + np.array([r.offset for r in rows], np.float32)
    gamma = np.array([r.gamma for r in rows], np.float32)
    if np.any(gamma != 1):
        s = np.sign(s) * np.abs(s) ** gamma
    s *= np.array([r.gain for r in rows], np.float32)
    lo = np.array([-np.inf if r.clamp is None else r.clamp[0] for r in rows], np.float32)
    hi = np.array([np.inf if r.clamp is None else r.clamp[1] for r in rows], np.float32)
    return np.clip(s, lo, hi, out=s)


def missing_sources(mapping: Mapping, source_names) -> list[str]:
    """Sources the mapping reads that source_names does not provide (they count as 0 in apply)."""
    have = set(source_names)
    return [s for s in mapping.used_sources() if s not in have]


def capture_sources(names, weights: np.ndarray, source: str = "arkit") -> tuple[np.ndarray, tuple[str, ...]]:
    """A capture's ICT weights (frames, ict shapes) -> (frames, sources), names for a mapping's source."""
    if source == "arkit":
        return ict_to_arkit(weights, tuple(names)), ARKIT_NAMES
    if source == "ict":
        return np.asarray(weights, np.float32), tuple(names)
    raise MappingError(f"source must be one of {sorted(SOURCE_NAMES)}, not {source!r}")
