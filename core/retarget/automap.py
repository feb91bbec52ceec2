"""Auto-mapping by meaning: read a character's shape key names and build a Mapping from ARKit weights.

Names are normalised before matching: case, `_` `-` `.` and spaces, camelCase; `Left`/`L`/`_l`/`.L` side
markers as a suffix or a prefix; numbered prefixes (`A01_`, `01-`); mesh or namespace prefixes
(`blendShape1.`, `Head:`, `Mesh|`). Then, in this order:

1. exact ARKit meaning (Apple, Ready Player Me, Faceit: `eyeBlinkLeft`; Face Cap: `eyeBlink_L`; Live Link
   `EyeBlinkLeft`; Polywink/CC3+ `A14_Eye_Blink_Left`), or an alias for the same movement (Character
   Creator 3/4: `Eye_Blink_L`, `Brow_Raise_Inner_L`, `Brow_Drop_L`, `Cheek_Raise_L`, `Mouth_Up_Upper_L`,
   `Mouth_Down_Lower_L`, `Mouth_Roll_In_Upper_L`, `Mouth_Pucker_Up_L`, `Eye_L_Look_L`, `Jaw_Open`,
   `Merged_Open_Mouth`, `Mouth_L`; VRM `Blink_L`/`blinkLeft`; VRoid `Fcl_EYE_Close_L`; `EyeClosedLeft`).
   A sided key for an unsided ARKit shape (`Brow_Raise_Inner_L`, `Cheek_Puff_R`) takes the whole shape.
2. derived (approximate) rows, weighted sums of ARKit weights: an unsided key for a sided pair
   (`Eye_Blink`, `Blink`, `Fcl_EYE_Close`: the mean of both sides), gaze presets (VRM `LookUp`...),
   vowels (VRM `A I U E O` / `aa ih ou ee oh`, VRoid `Fcl_MTH_A`...), Oculus visemes (`viseme_aa`...) and
   VRoid part expressions (`Fcl_MTH_Joy`, `Fcl_EYE_Angry`, `Fcl_BRW_Surprised`).
3. whole-face emotions (VRM `Joy Angry Sorrow Fun`, `happy angry sad relaxed surprised`, VRoid `Fcl_ALL_*`).

A derived row is left out when any ARKit shape it reads already drives a key of a higher tier, so a rig
with both ARKit keys and visemes (Ready Player Me) or both `Fcl_EYE_Close_L` and `Fcl_EYE_Close` does not
get the same movement twice; the report says which rows were left out and why.

The viseme and vowel derivation (an approximation: shape weights cannot tell consonants apart, which need
the audio; these only place the mouth). Weights per ARKit shape, clamped to [0, 1]:
  aa = jawOpen - 0.5 mouthFunnel - 0.5 mouthPucker                 (open, not rounded)
  E  = 0.4 jawOpen + 0.4 mouthStretchL/R - 0.4 mouthFunnel - 0.4 mouthPucker   (half open, spread)
  I  = 0.5 mouthStretchL/R - 0.5 jawOpen                            (spread, nearly closed)
  O  = 0.8 mouthFunnel + 0.4 jawOpen                                (rounded, open)
  U  = mouthPucker - 0.3 jawOpen                                    (rounded, closed)
  sil = 1 - jawOpen - mouthFunnel - mouthPucker - 0.5 mouthStretchL/R;  PP = 0.5 mouthPressL/R + mouthClose;
  FF = 0.7 mouthRollLower + 0.15 mouthUpperUpL/R;  TH = tongueOut;  DD = 0.3 mouthLowerDownL/R + 0.2 jawOpen;
  kk = 0.4 jawOpen + 0.15 mouthStretchL/R;  CH = 0.6 mouthFunnel + 0.2 mouthShrugUpper + 0.2 mouthShrugLower;
  SS = 0.4 mouthStretchL/R + 0.2 mouthClose;  nn = 0.25 jawOpen + 0.15 mouthPressL/R;
  RR = 0.4 mouthPucker + 0.3 mouthFunnel + 0.2 jawOpen.
("0.4 mouthStretchL/R" means 0.4 on each side.) Emotions are read from the parts in EMOTIONS below; the
whole-face versions average the parts, leaving out the mouth of "surprised" (the vowels carry it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..facemodel.arkit import ARKIT_NAMES, arkit_name_to_ict
from .mapping import ICT_NAMES, Mapping, MappingRow

_SIDES = {"l": "L", "left": "L", "r": "R", "right": "R"}

# Other words for an ARKit movement, after normalisation (tokens joined, side removed).
ALIASES = {
    "blink": "eyeblink", "eyeclose": "eyeblink", "eyeclosed": "eyeblink", "eyesclosed": "eyeblink",
    "browraiseinner": "browinnerup", "browinnerraise": "browinnerup",
    "browraiseouter": "browouterup", "browouterraise": "browouterup",
    "browdrop": "browdown", "browlower": "browdown",
    "cheekraise": "cheeksquint",
    "mouthupupper": "mouthupperup", "mouthdownlower": "mouthlowerdown",
    "mouthrollinupper": "mouthrollupper", "mouthrollinlower": "mouthrolllower",
    "mouthpuckerup": "mouthpucker", "mouthpuckerdown": "mouthpucker",
    "mouthfunnelup": "mouthfunnel", "mouthfunneldown": "mouthfunnel",
    "mergedopenmouth": "jawopen", "mouthopen": "jawopen",
    "nosescrunch": "nosesneer",
    "tongueout": "tongueout",
}

_M = "mouth"
VISEMES: dict[str, tuple[dict[str, float], float]] = {  # name -> (ARKit weights, offset)
    "sil": ({"jawOpen": -1.0, "mouthFunnel": -1.0, "mouthPucker": -1.0, "mouthStretchLeft": -0.5,
             "mouthStretchRight": -0.5}, 1.0),
    "pp": ({"mouthPressLeft": 0.5, "mouthPressRight": 0.5, "mouthClose": 1.0}, 0.0),
    "ff": ({"mouthRollLower": 0.7, "mouthUpperUpLeft": 0.15, "mouthUpperUpRight": 0.15}, 0.0),
    "th": ({"tongueOut": 1.0}, 0.0),
    "dd": ({"mouthLowerDownLeft": 0.3, "mouthLowerDownRight": 0.3, "jawOpen": 0.2}, 0.0),
    "kk": ({"jawOpen": 0.4, "mouthStretchLeft": 0.15, "mouthStretchRight": 0.15}, 0.0),
    "ch": ({"mouthFunnel": 0.6, "mouthShrugUpper": 0.2, "mouthShrugLower": 0.2}, 0.0),
    "ss": ({"mouthStretchLeft": 0.4, "mouthStretchRight": 0.4, "mouthClose": 0.2}, 0.0),
    "nn": ({"jawOpen": 0.25, "mouthPressLeft": 0.15, "mouthPressRight": 0.15}, 0.0),
    "rr": ({"mouthPucker": 0.4, "mouthFunnel": 0.3, "jawOpen": 0.2}, 0.0),
    "aa": ({"jawOpen": 1.0, "mouthFunnel": -0.5, "mouthPucker": -0.5}, 0.0),
    "e": ({"jawOpen": 0.4, "mouthStretchLeft": 0.4, "mouthStretchRight": 0.4, "mouthFunnel": -0.4,
           "mouthPucker": -0.4}, 0.0),
    "i": ({"mouthStretchLeft": 0.5, "mouthStretchRight": 0.5, "jawOpen": -0.5}, 0.0),
    "o": ({"mouthFunnel": 0.8, "jawOpen": 0.4}, 0.0),
    "u": ({"mouthPucker": 1.0, "jawOpen": -0.3}, 0.0),
}
# VRM 0.x (A I U E O) and VRM 1.0 (aa ih ou ee oh) vowels -> the viseme of the same mouth.
VOWELS = {"a": "aa", "aa": "aa", "i": "i", "ih": "i", "u": "u", "ou": "u", "e": "e", "ee": "e", "o": "o", "oh": "o"}

EMOTIONS: dict[str, dict[str, dict[str, float]]] = {  # emotion -> part (mouth/eye/brow) -> ARKit weights
    "joy": {_M: {"mouthSmileLeft": 0.5, "mouthSmileRight": 0.5},
            "eye": {"cheekSquintLeft": 0.5, "cheekSquintRight": 0.5},
            "brow": {"browOuterUpLeft": 0.5, "browOuterUpRight": 0.5}},
    "angry": {_M: {"mouthFrownLeft": 0.25, "mouthFrownRight": 0.25, "mouthPressLeft": 0.25, "mouthPressRight": 0.25},
              "eye": {"eyeSquintLeft": 0.5, "eyeSquintRight": 0.5},
              "brow": {"browDownLeft": 0.5, "browDownRight": 0.5}},
    "sorrow": {_M: {"mouthFrownLeft": 0.5, "mouthFrownRight": 0.5},
               "eye": {"browInnerUp": 1.0},
               "brow": {"browInnerUp": 1.0}},
    "fun": {_M: {"mouthSmileLeft": 0.5, "mouthSmileRight": 0.5},
            "eye": {"cheekSquintLeft": 0.5, "cheekSquintRight": 0.5}},
    "surprised": {_M: {"mouthFunnel": 0.5, "jawOpen": 0.5},
                  "eye": {"eyeWideLeft": 0.5, "eyeWideRight": 0.5},
                  "brow": {"browInnerUp": 0.5, "browOuterUpLeft": 0.25, "browOuterUpRight": 0.25}},
}
EMOTION_NAMES = {"joy": "joy", "happy": "joy", "angry": "angry", "sorrow": "sorrow", "sad": "sorrow",
                 "fun": "fun", "relaxed": "fun", "surprised": "surprised"}
LOOKS = {"lookup": {"eyeLookUpLeft": 0.5, "eyeLookUpRight": 0.5},
         "lookdown": {"eyeLookDownLeft": 0.5, "eyeLookDownRight": 0.5},
         "lookleft": {"eyeLookOutLeft": 0.5, "eyeLookInRight": 0.5},  # the character looks to its left
         "lookright": {"eyeLookInLeft": 0.5, "eyeLookOutRight": 0.5}}
_NOTHING = {"neutral": "neutral: nothing to drive"}
_VROID_PARTS = {"mth": _M, "eye": "eye", "brw": "brow"}

DIRECT, PART, WHOLE = 0, 1, 2  # tiers: a derived row yields to any row of a lower tier reading its sources


@dataclass
class Match:
    sources: dict[str, float]  # ARKit name -> weight
    how: str
    tier: int = DIRECT
    offset: float = 0.0


@dataclass
class AutoMapReport:
    """What auto_map did with every name; nothing is dropped without a line here."""

    mapped: dict[str, str] = field(default_factory=dict)  # target -> how it was matched
    unmapped: dict[str, str] = field(default_factory=dict)  # target -> why it got no row
    arkit_not_driven: list[str] = field(default_factory=list)  # ARKit shapes no row reads (the target lacks them)
    no_capture_data: list[str] = field(default_factory=list)  # sources read but absent from ICT captures
    ignored: list[str] = field(default_factory=list)  # reference keys (Basis)

    def summary(self) -> str:
        parts = [f"{len(self.mapped)} keys mapped"]
        if self.unmapped:
            parts.append(f"not mapped: {', '.join(f'{k} ({v})' for k, v in self.unmapped.items())}")
        if self.arkit_not_driven:
            parts.append(f"ARKit shapes the character lacks: {', '.join(self.arkit_not_driven)}")
        if self.no_capture_data:
            parts.append(f"no capture data (stay at 0): {', '.join(self.no_capture_data)}")
        return "; ".join(parts)


def _tokens(name: str) -> list[str]:
    return [t.lower() for t in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)]


def _split_side(tokens: list[str]) -> tuple[str, str | None]:
    if len(tokens) > 1 and tokens[-1] in _SIDES:
        return "".join(tokens[:-1]), _SIDES[tokens[-1]]
    if len(tokens) > 1 and tokens[0] in _SIDES:
        return "".join(tokens[1:]), _SIDES[tokens[0]]
    return "".join(tokens), None


def _keys(names) -> dict[tuple[str, str | None], str]:
    return {_split_side(_tokens(n)): n for n in names}


_ARKIT_KEYS = _keys(ARKIT_NAMES)
_ICT_KEYS = _keys(ICT_NAMES)


def _one_side(weights: dict[str, float], side: str | None) -> dict[str, float]:
    """Keep the sources of one side (renormalised); unsided sources are kept whole."""
    if side is None:
        return dict(weights)
    word = "Left" if side == "L" else "Right"
    other = "Right" if side == "L" else "Left"
    kept = {k: v for k, v in weights.items() if not k.endswith(other)}
    sided = {k: v for k, v in kept.items() if k.endswith(word)}
    if sided and len(kept) < len(weights):
        total = sum(weights.values()) / sum(kept.values())
        return {k: v * total for k, v in kept.items()}
    return kept


def _whole(emotion: str) -> dict[str, float]:
    parts = [p for k, p in EMOTIONS[emotion].items() if not (emotion == "surprised" and k == _M)]
    out: dict[str, float] = {}
    for p in parts:
        for k, v in p.items():
            out[k] = out.get(k, 0.0) + v / len(parts)
    return out


def _match_tokens(tokens: list[str]) -> Match | str | None:
    """A Match, a reason string (known name, nothing to drive), or None (no meaning found)."""
    if not tokens:
        return None
    full = "".join(tokens)
    if tokens[0] == "viseme" and len(tokens) > 1:
        v = "".join(tokens[1:])
        if v in VISEMES:
            return Match(dict(VISEMES[v][0]), "Oculus viseme (approximate)", PART, VISEMES[v][1])
        return None
    if tokens[0] == "fcl" and len(tokens) > 2:
        return _match_vroid(tokens[1], tokens[2:])
    if full in VOWELS:
        w, off = VISEMES[VOWELS[full]]
        return Match(dict(w), "vowel (approximate)", PART, off)
    if full in LOOKS:
        return Match(dict(LOOKS[full]), "gaze direction", PART)
    if full in EMOTION_NAMES:
        return Match(_whole(EMOTION_NAMES[full]), "emotion (approximate)", WHOLE)
    if full in _NOTHING:
        return _NOTHING[full]
    # Character Creator eye looks: Eye_L_Look_L is the left eye looking to its left (outwards).
    m = re.fullmatch(r"eyes?(l|r|left|right)look(l|r|left|right|up|down)", full)
    if m:
        side, d = _SIDES[m.group(1)], m.group(2)
        word = "Left" if side == "L" else "Right"
        if d in ("up", "down"):
            return Match({f"eyeLook{d.capitalize()}{word}": 1.0}, "alias")
        return Match({f"eyeLook{'Out' if _SIDES[d] == side else 'In'}{word}": 1.0}, "alias")
    base, side = _split_side(tokens)
    alias = ALIASES.get(base, base)
    how = "exact" if alias == base else "alias"
    if (alias, side) in _ARKIT_KEYS:
        return Match({_ARKIT_KEYS[(alias, side)]: 1.0}, how)
    if side is not None and (alias, None) in _ARKIT_KEYS:
        return Match({_ARKIT_KEYS[(alias, None)]: 1.0}, f"one side of {_ARKIT_KEYS[(alias, None)]}")
    if side is None and (alias, "L") in _ARKIT_KEYS and (alias, "R") in _ARKIT_KEYS:
        return Match({_ARKIT_KEYS[(alias, "L")]: 0.5, _ARKIT_KEYS[(alias, "R")]: 0.5}, "mean of both sides", PART)
    return None


def _match_vroid(group: str, rest: list[str]) -> Match | str | None:
    base, side = _split_side(rest)
    if group == "all":
        if base in EMOTIONS:
            return Match(_whole(base), "VRoid emotion (approximate)", WHOLE)
        return "neutral: nothing to drive" if base == "neutral" else None
    if group not in _VROID_PARTS:
        return None
    part = _VROID_PARTS[group]
    if base in EMOTIONS:
        weights = EMOTIONS[base].get(part)
        if not weights:
            return f"VRoid {part} part of {base}: nothing to drive"
        return Match(_one_side(weights, side), f"VRoid {part} expression (approximate)", PART)
    if group == "mth" and base in VOWELS:
        w, off = VISEMES[VOWELS[base]]
        return Match(dict(w), "vowel (approximate)", PART, off)
    if group == "eye":
        return _match_tokens(["eye", *rest])
    return None


def match_name(name: str) -> Match | str | None:
    """Meaning of one shape key name: a Match, a reason it drives nothing, or None (unknown)."""
    text = name.strip()
    while True:
        cleaned = re.sub(r"^[A-Za-z]{0,2}\d+[_\-. ]+", "", text)  # A01_, 01-, 3.
        found = _match_tokens(_tokens(cleaned))
        if found is not None:
            return found
        # Drop one leading mesh/namespace component (blendShape1.jawOpen, Head:jawOpen) unless what is
        # left is only a side marker (eyeBlink.L).
        m = re.match(r"^[^.:|]+[.:|](.+)$", text)
        if not m or m.group(1).lower() in _SIDES:
            return None
        text = m.group(1)


def _ict_exact(name: str) -> str | None:
    text = name.strip()
    while True:
        key = _split_side(_tokens(re.sub(r"^[A-Za-z]{0,2}\d+[_\-. ]+", "", text)))
        if key in _ICT_KEYS:
            return _ICT_KEYS[key]
        m = re.match(r"^[^.:|]+[.:|](.+)$", text)
        if not m or m.group(1).lower() in _SIDES:
            return None
        text = m.group(1)


def _to_ict(weights: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for a, w in weights.items():
        halves = arkit_name_to_ict(a)
        for h in halves:
            out[h] = out.get(h, 0.0) + w / len(halves)  # ARKit value = mean of the ICT halves
    return out


def auto_map(target_key_names, source: str = "arkit") -> tuple[Mapping, AutoMapReport]:
    """Build a Mapping for these shape key names (in their order) and say what happened to each.

    source "arkit" reads ARKit weights (the default); "ict" reads the capture's ICT weights directly,
    matching ICT names exactly (browInnerUp_L) before falling back to the ARKit meaning.
    """
    target_key_names = list(target_key_names)
    report = AutoMapReport()
    matches: dict[str, Match] = {}
    for name in dict.fromkeys(target_key_names):
        if name.strip().lower() in ("basis", "reference"):
            report.ignored.append(name)
            continue
        if source == "ict" and (ict := _ict_exact(name)):
            matches[name] = Match({ict: 1.0}, "exact ICT name")
            continue
        found = match_name(name)
        if isinstance(found, Match):
            if source == "ict":
                dropped = [a for a in found.sources if not arkit_name_to_ict(a)]
                found.sources = _to_ict({a: w for a, w in found.sources.items() if a not in dropped})
                if not found.sources:
                    report.unmapped[name] = f"reads only {', '.join(dropped)}, which ICT captures lack"
                    continue
            matches[name] = found
        else:
            report.unmapped[name] = found or "no known meaning"

    rows = []
    for tier in (DIRECT, PART, WHOLE):
        driven = {s for m in matches.values() if m.tier < tier for s in m.sources}
        for name, m in matches.items():
            if m.tier != tier:
                continue
            clash = sorted(s for s in m.sources if s in driven)
            if clash:
                report.unmapped[name] = f"left out: the character's own keys already carry {', '.join(clash)}"
                continue
            rows.append(MappingRow(target=name, sources=m.sources, offset=m.offset))
            report.mapped[name] = m.how
    order = {n: i for i, n in enumerate(target_key_names)}
    rows.sort(key=lambda r: order[r.target])
    mapping = Mapping(rows=rows, source=source, name="auto")
    used = set(mapping.used_sources())
    if source == "arkit":
        report.arkit_not_driven = [a for a in ARKIT_NAMES if a not in used]
        report.no_capture_data = [a for a in ARKIT_NAMES if a in used and not arkit_name_to_ict(a)]
    else:
        report.arkit_not_driven = [a for a in ARKIT_NAMES
                                   if arkit_name_to_ict(a) and not any(h in used for h in arkit_name_to_ict(a))]
    return mapping, report
