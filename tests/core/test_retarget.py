"""Mapping formula, JSON file, apply(), auto-mapping per naming convention, retargeting to another person."""

import json

import numpy as np
import pytest

from core.facemodel.arkit import ARKIT_NAMES, ict_to_arkit
from core.io.capture import Capture
from core.retarget import (
    ICT_NAMES,
    Mapping,
    MappingError,
    MappingRow,
    apply,
    auto_map,
    capture_sources,
    missing_sources,
    person_vertices,
    retarget_to_person,
)


def test_formula_offset_gain_gamma_clamp():
    rows = [MappingRow("a", {"jawOpen": 1.0}),
            MappingRow("b", {"jawOpen": 0.5, "mouthFunnel": -1.0}, offset=0.1, clamp=None),
            MappingRow("c", {"jawOpen": 1.0}, gain=2.0, gamma=0.5, clamp=(0.0, 1.5)),
            MappingRow("d", {"jawOpen": 1.0, "mouthSmileLeft": 1.0}, clamp=(0.2, 0.8))]
    m = Mapping(rows)
    names = ["jawOpen", "mouthFunnel", "mouthSmileLeft"]
    x = np.array([[0.0, 0.0, 0.0], [0.25, 0.5, 0.9], [1.0, 0.0, 0.0]], np.float32)
    y = apply(m, x, names)
    jaw, fun, smile = x.T
    np.testing.assert_allclose(y[:, 0], np.clip(jaw, 0, 1), atol=1e-6)
    np.testing.assert_allclose(y[:, 1], 0.5 * jaw - fun + 0.1, atol=1e-6)  # unclamped, negative allowed
    np.testing.assert_allclose(y[:, 2], np.clip(2 * np.sqrt(jaw), 0, 1.5), atol=1e-6)
    np.testing.assert_allclose(y[:, 3], np.clip(jaw + smile, 0.2, 0.8), atol=1e-6)
    # the signed power keeps negative sums finite with a fractional gamma
    neg = apply(Mapping([MappingRow("n", {"mouthFunnel": -1.0}, gamma=0.5, clamp=None)]), x, names)
    np.testing.assert_allclose(neg[:, 0], -np.sqrt(fun), atol=1e-6)


def test_apply_is_the_matrix_product():
    rng = np.random.default_rng(0)
    names = list(ARKIT_NAMES)
    rows = [MappingRow(f"t{i}", {names[j]: float(rng.normal()) for j in rng.choice(52, 4, replace=False)},
                       clamp=None) for i in range(30)]
    m = Mapping(rows)
    x = rng.random((100, 52)).astype(np.float32)
    w = np.zeros((30, 52))
    for i, r in enumerate(rows):
        for s, v in r.sources.items():
            w[i, names.index(s)] += v
    np.testing.assert_allclose(apply(m, x, names), x @ w.T, atol=1e-5)
    # a source the weights lack counts as 0 and is reported
    m2 = Mapping([MappingRow("t", {"tongueOut": 1.0, "jawOpen": 1.0})])
    y = apply(m2, x[:, :1] * 0 + 0.3, ["jawOpen"])
    np.testing.assert_allclose(y[:, 0], 0.3, atol=1e-6)
    assert missing_sources(m2, ["jawOpen"]) == ["tongueOut"]
    with pytest.raises(MappingError, match="do not match"):
        apply(m, x[:, :5], names)


def test_json_round_trip(tmp_path):
    m = Mapping([MappingRow("Mouth_Smile_L", {"mouthSmileLeft": 1.0}),
                 MappingRow("viseme_aa", {"jawOpen": 1.0, "mouthFunnel": -0.5}, offset=0.05, clamp=None,
                            gain=1.5, gamma=0.8)], name="test")
    path = m.save(tmp_path / "m.json")
    data = json.loads(path.read_text())
    assert data["format"] == "likeness.mapping" and data["version"] == 1 and data["source"] == "arkit"
    assert data["rows"][0] == {"target": "Mouth_Smile_L", "sources": {"mouthSmileLeft": 1.0}, "offset": 0.0,
                               "clamp": [0.0, 1.0], "gain": 1.0, "gamma": 1.0}
    back = Mapping.load(path)
    assert back == m
    # defaults fill in optional keys
    minimal = {"format": "likeness.mapping", "version": 1, "rows": [{"target": "x", "sources": {"jawOpen": 2}}]}
    row = Mapping.from_json(minimal).rows[0]
    assert (row.offset, row.clamp, row.gain, row.gamma) == (0.0, (0.0, 1.0), 1.0, 1.0)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ('[1, 2]', "JSON object"),
    ('{"format": "other", "version": 1, "rows": []}', "not a Likeness mapping"),
    ('{"format": "likeness.mapping", "version": 9, "rows": []}', "newer"),
    ('{"format": "likeness.mapping", "version": 1, "source": "fac", "rows": []}', "source"),
    ('{"format": "likeness.mapping", "version": 1, "rows": {}}', "rows"),
    ('{"format": "likeness.mapping", "version": 1, "rows": [{"sources": {}}]}', "target"),
    ('{"format": "likeness.mapping", "version": 1, "rows": [{"target": "a", "sources": {"jawOpn": 1}}]}',
     "unknown arkit source name 'jawOpn'"),
    ('{"format": "likeness.mapping", "version": 1, "rows": [{"target": "a", "sources": {"jawOpen": "1"}}]}',
     "finite number"),
    ('{"format": "likeness.mapping", "version": 1, "rows": [{"target": "a", "sources": {}, "gian": 2}]}',
     "unknown key"),
    ('{"format": "likeness.mapping", "version": 1, "rows": [{"target": "a", "sources": {}, "clamp": [1, 0]}]}',
     "above max"),
    ('{"format": "likeness.mapping", "version": 1, "rows": [{"target": "a", "sources": {}, "gamma": 0}]}',
     "gamma"),
    ('{"format": "likeness.mapping", "version": 1, "rows": [{"target": "a", "sources": {}}, '
     '{"target": "a", "sources": {}}]}', "twice"),
])
def test_malformed_json(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(MappingError, match=message):
        Mapping.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(MappingError, match="cannot read"):
        Mapping.load(tmp_path / "nope.json")


def _sources(mapping):
    return {r.target: r.sources for r in mapping.rows}


def test_automap_arkit_exact_and_visemes_left_out():
    names = ["Basis", "viseme_aa", "viseme_O", *ARKIT_NAMES]
    m, report = auto_map(names)
    got = _sources(m)
    assert {t: s for t, s in got.items()} == {a: {a: 1.0} for a in ARKIT_NAMES}
    # the rig's own ARKit keys carry the mouth, so visemes would double it: reported, not dropped silently
    assert "viseme_aa" in report.unmapped and "jawOpen" in report.unmapped["viseme_aa"]
    assert report.ignored == ["Basis"]
    assert report.arkit_not_driven == []
    assert report.no_capture_data == ["tongueOut"]


def test_automap_face_cap_style_and_prefixes():
    names = ["eyeBlink_L", "eyeBlink_R", "mouthSmile_L", "browInnerUp", "cheekPuff", "A01_Brow_Inner_Up",
             "A14_Eye_Blink_Left", "blendShape1.jawOpen", "Head:mouthFunnel", "eyeWide.L", "L_eyeSquint",
             "EyeLookUpRight"]
    got = _sources(auto_map(names)[0])
    assert got["eyeBlink_L"] == {"eyeBlinkLeft": 1.0}
    assert got["eyeBlink_R"] == {"eyeBlinkRight": 1.0}
    assert got["mouthSmile_L"] == {"mouthSmileLeft": 1.0}
    assert got["A01_Brow_Inner_Up"] == {"browInnerUp": 1.0}
    assert got["A14_Eye_Blink_Left"] == {"eyeBlinkLeft": 1.0}
    assert got["blendShape1.jawOpen"] == {"jawOpen": 1.0}
    assert got["Head:mouthFunnel"] == {"mouthFunnel": 1.0}
    assert got["eyeWide.L"] == {"eyeWideLeft": 1.0}
    assert got["L_eyeSquint"] == {"eyeSquintLeft": 1.0}
    assert got["EyeLookUpRight"] == {"eyeLookUpRight": 1.0}


def test_automap_character_creator():
    names = ["Eye_Blink_L", "Eye_Blink_R", "Mouth_Smile_L", "Brow_Raise_Inner_L", "Brow_Raise_Inner_R",
             "Brow_Raise_Outer_L", "Brow_Drop_R", "Jaw_Open", "Mouth_Pucker", "Eye_L_Look_L", "Eye_L_Look_R",
             "Eye_R_Look_L", "Eye_R_Look_Up", "Cheek_Raise_L", "Cheek_Puff_R", "Mouth_Up_Upper_L",
             "Mouth_Down_Lower_R", "Mouth_Roll_In_Upper_L", "Mouth_Pucker_Up_R", "Mouth_Funnel_Down_L",
             "Mouth_L", "Jaw_L", "Nose_Sneer_L", "Mouth_Press_R", "Merged_Open_Mouth", "Mouth_Smile_Sharp_L"]
    m, report = auto_map(names)
    got = _sources(m)
    expect = {"Eye_Blink_L": "eyeBlinkLeft", "Eye_Blink_R": "eyeBlinkRight", "Mouth_Smile_L": "mouthSmileLeft",
              "Brow_Raise_Inner_L": "browInnerUp", "Brow_Raise_Inner_R": "browInnerUp",
              "Brow_Raise_Outer_L": "browOuterUpLeft", "Brow_Drop_R": "browDownRight", "Jaw_Open": "jawOpen",
              "Mouth_Pucker": "mouthPucker", "Eye_L_Look_L": "eyeLookOutLeft", "Eye_L_Look_R": "eyeLookInLeft",
              "Eye_R_Look_L": "eyeLookInRight", "Eye_R_Look_Up": "eyeLookUpRight",
              "Cheek_Raise_L": "cheekSquintLeft", "Cheek_Puff_R": "cheekPuff", "Mouth_Up_Upper_L": "mouthUpperUpLeft",
              "Mouth_Down_Lower_R": "mouthLowerDownRight", "Mouth_Roll_In_Upper_L": "mouthRollUpper",
              "Mouth_Pucker_Up_R": "mouthPucker", "Mouth_Funnel_Down_L": "mouthFunnel", "Mouth_L": "mouthLeft",
              "Jaw_L": "jawLeft", "Nose_Sneer_L": "noseSneerLeft", "Mouth_Press_R": "mouthPressRight",
              "Merged_Open_Mouth": "jawOpen"}
    assert got == {t: {a: 1.0} for t, a in expect.items()}
    assert report.unmapped == {"Mouth_Smile_Sharp_L": "no known meaning"}
    assert "tongueOut" in report.arkit_not_driven and "jawOpen" not in report.arkit_not_driven


def test_automap_vrm0():
    names = ["Neutral", "A", "I", "U", "E", "O", "Blink", "Blink_L", "Blink_R", "Joy", "Angry", "Sorrow", "Fun",
             "LookUp", "LookDown", "LookLeft", "LookRight"]
    m, report = auto_map(names)
    got = _sources(m)
    assert got["Blink_L"] == {"eyeBlinkLeft": 1.0} and got["Blink_R"] == {"eyeBlinkRight": 1.0}
    # Blink would close the eyes a second time on top of Blink_L/Blink_R
    assert "Blink" not in got and "eyeBlinkLeft" in report.unmapped["Blink"]
    assert got["A"]["jawOpen"] == 1.0 and got["A"]["mouthFunnel"] < 0
    assert got["U"]["mouthPucker"] == 1.0
    assert got["O"]["mouthFunnel"] > 0
    assert got["I"]["mouthStretchLeft"] > 0 and got["I"]["jawOpen"] < 0
    assert got["E"]["mouthStretchRight"] > 0 and got["E"]["jawOpen"] > 0
    assert got["LookLeft"] == {"eyeLookOutLeft": 0.5, "eyeLookInRight": 0.5}
    assert got["LookUp"] == {"eyeLookUpLeft": 0.5, "eyeLookUpRight": 0.5}
    assert set(got["Joy"]) >= {"mouthSmileLeft", "mouthSmileRight"}
    assert set(got["Angry"]) >= {"browDownLeft", "browDownRight"}
    assert "browInnerUp" in got["Sorrow"]
    assert "Fun" in got
    assert report.unmapped["Neutral"].startswith("neutral")
    # a smile drives Joy; an open jaw drives A
    x = np.zeros((2, 52), np.float32)
    x[0, ARKIT_NAMES.index("mouthSmileLeft")] = x[0, ARKIT_NAMES.index("mouthSmileRight")] = 1.0
    x[1, ARKIT_NAMES.index("jawOpen")] = 1.0
    y = apply(m, x, ARKIT_NAMES)
    t = m.targets
    assert y[0, t.index("Joy")] > 0.3 and y[0, t.index("A")] == 0
    assert y[1, t.index("A")] == 1.0 and y[1, t.index("Joy")] == 0


def test_automap_vrm1():
    names = ["aa", "ih", "ou", "ee", "oh", "blink", "blinkLeft", "blinkRight", "happy", "angry", "sad", "relaxed",
             "surprised", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral"]
    m, report = auto_map(names)
    got = _sources(m)
    assert got["blinkLeft"] == {"eyeBlinkLeft": 1.0} and got["blinkRight"] == {"eyeBlinkRight": 1.0}
    assert "blink" in report.unmapped
    vrm0 = _sources(auto_map(["A", "I", "U", "E", "O"])[0])
    assert [got[v] for v in ("aa", "ih", "ou", "ee", "oh")] == [vrm0[v] for v in "AIUEO"]
    assert got["lookRight"] == {"eyeLookInLeft": 0.5, "eyeLookOutRight": 0.5}
    assert set(got["surprised"]) >= {"eyeWideLeft", "browInnerUp"} and "jawOpen" not in got["surprised"]
    for n in ("happy", "angry", "sad", "relaxed", "lookUp", "lookDown"):
        assert n in got


def test_automap_vroid():
    names = ["Fcl_ALL_Neutral", "Fcl_ALL_Joy", "Fcl_EYE_Close", "Fcl_EYE_Close_L", "Fcl_EYE_Close_R",
             "Fcl_EYE_Joy_L", "Fcl_MTH_A", "Fcl_MTH_I", "Fcl_MTH_U", "Fcl_MTH_E", "Fcl_MTH_O", "Fcl_BRW_Surprised",
             "Fcl_MTH_Joy", "Fcl_HA_Hide"]
    m, report = auto_map(names)
    got = _sources(m)
    assert got["Fcl_EYE_Close_L"] == {"eyeBlinkLeft": 1.0} and got["Fcl_EYE_Close_R"] == {"eyeBlinkRight": 1.0}
    assert "Fcl_EYE_Close" in report.unmapped  # the sided keys carry the blink
    assert got["Fcl_MTH_A"] == _sources(auto_map(["A"])[0])["A"]
    assert got["Fcl_MTH_U"]["mouthPucker"] == 1.0
    assert got["Fcl_EYE_Joy_L"] == {"cheekSquintLeft": 1.0}
    assert got["Fcl_MTH_Joy"] == {"mouthSmileLeft": 0.5, "mouthSmileRight": 0.5}
    assert got["Fcl_BRW_Surprised"]["browInnerUp"] > 0
    # the whole-face joy yields to the part expressions that already carry its shapes
    assert "Fcl_ALL_Joy" in report.unmapped
    assert set(report.unmapped) == {"Fcl_ALL_Neutral", "Fcl_ALL_Joy", "Fcl_EYE_Close", "Fcl_HA_Hide"}
    # alone, the whole-face joy is driven
    assert "Fcl_ALL_Joy" in _sources(auto_map(["Fcl_ALL_Joy", "Fcl_MTH_A"])[0])


def test_automap_oculus_visemes():
    names = ["viseme_sil", "viseme_PP", "viseme_FF", "viseme_TH", "viseme_DD", "viseme_kk", "viseme_CH",
             "viseme_SS", "viseme_nn", "viseme_RR", "viseme_aa", "viseme_E", "viseme_I", "viseme_O", "viseme_U"]
    m, report = auto_map(names)
    assert m.targets == names and not report.unmapped
    got = _sources(m)
    assert got["viseme_TH"] == {"tongueOut": 1.0} and report.no_capture_data == ["tongueOut"]
    assert m.row("viseme_sil").offset == 1.0
    # vowels: each mouth pose drives its own viseme most
    poses = {"viseme_aa": {"jawOpen": 1.0}, "viseme_O": {"mouthFunnel": 0.8, "jawOpen": 0.4},
             "viseme_U": {"mouthPucker": 1.0}, "viseme_I": {"mouthStretchLeft": 0.8, "mouthStretchRight": 0.8},
             "viseme_sil": {}}
    vowels = ["viseme_aa", "viseme_E", "viseme_I", "viseme_O", "viseme_U", "viseme_sil"]
    for want, pose in poses.items():
        x = np.zeros((1, 52), np.float32)
        for k, v in pose.items():
            x[0, ARKIT_NAMES.index(k)] = v
        y = apply(m, x, ARKIT_NAMES)[0]
        assert max(vowels, key=lambda v: y[m.targets.index(v)]) == want, (want, y)


def test_automap_ict_source_and_ict_target_names():
    m, report = auto_map(list(ICT_NAMES), source="ict")
    assert _sources(m) == {n: {n: 1.0} for n in ICT_NAMES}
    assert report.arkit_not_driven == [] and not report.unmapped
    # ARKit-named targets read the ICT halves of split shapes
    m2, _ = auto_map(["browInnerUp", "eyeBlinkLeft", "tongueOut"], source="ict")
    got = _sources(m2)
    assert got["browInnerUp"] == {"browInnerUp_L": 0.5, "browInnerUp_R": 0.5}
    assert got["eyeBlinkLeft"] == {"eyeBlink_L": 1.0}
    # with the arkit source an ICT-named head maps too (halves take the whole shape)
    got3 = _sources(auto_map(list(ICT_NAMES))[0])
    assert got3["browInnerUp_L"] == {"browInnerUp": 1.0} and got3["eyeBlink_R"] == {"eyeBlinkRight": 1.0}


def test_unknown_names_are_reported():
    m, report = auto_map(["jawOpen", "Frankenstein", "Fcl_MTH_SkinFung"])
    assert m.targets == ["jawOpen"]
    assert set(report.unmapped) == {"Frankenstein", "Fcl_MTH_SkinFung"}
    assert "Frankenstein" in report.summary() and "eyeBlinkLeft" in report.summary()
    assert "eyeBlinkLeft" in report.arkit_not_driven


def _capture(frames=5, identity=None):
    rng = np.random.default_rng(1)
    return Capture(names=ICT_NAMES, weights=rng.random((frames, 53)).astype(np.float32),
                   tracked=np.ones(frames, bool), rotation=np.zeros((frames, 3)), translation=np.zeros((frames, 3)),
                   timestamps=np.arange(frames) / 30.0, fps=30.0, image_size=(640, 480), focal=500.0,
                   identity=np.zeros(100) if identity is None else identity)


def test_capture_sources_convert_with_the_one_table():
    cap = _capture()
    x, names = capture_sources(cap.names, cap.weights)
    assert names == ARKIT_NAMES
    np.testing.assert_allclose(x, ict_to_arkit(cap.weights, cap.names))
    x2, names2 = capture_sources(cap.names, cap.weights, "ict")
    assert names2 == ICT_NAMES and x2 is not None


def test_retarget_to_person():
    model = pytest.importorskip("core.facemodel").load_face_model()
    cap = _capture(frames=3)
    other = np.zeros(100, np.float32)
    other[0] = 2.0
    moved = retarget_to_person(cap, other)
    assert np.array_equal(moved.weights, cap.weights) and np.array_equal(moved.identity, other)
    assert np.array_equal(cap.identity, np.zeros(100))  # input untouched
    v = person_vertices(cap, other, model)
    assert v.shape == (3, model.n_vertices, 3)
    np.testing.assert_allclose(v, model.vertices(other, cap.weights), atol=1e-5)
    # a Capture of the other person works as the person too
    assert np.array_equal(retarget_to_person(cap, _capture(identity=other)).identity, other)


def test_person_vertices_with_a_personal_model():
    from core.facemodel import load_face_model

    generic_personal_model = pytest.importorskip("core.io.personal").generic_personal_model
    model = load_face_model()
    identity = np.zeros(100, np.float32)
    identity[1] = -1.5
    person = generic_personal_model(model, identity)
    cap = _capture(frames=2)
    assert np.array_equal(retarget_to_person(cap, person).identity, identity)
    np.testing.assert_allclose(person_vertices(cap, person, model), model.vertices(identity, cap.weights), atol=1e-5)


def test_head_and_gaze_rotations():
    from core.render.camera import euler_to_matrix
    from core.retarget.pose import gaze_rotations, head_rotations, matrices_to_quaternions

    rot = np.array([[5.0, 0, 0], [5.0, 30, 0], [5.0, -10, 2], [5.0, 0, 0]])
    rel = head_rotations(rot, "first")
    np.testing.assert_allclose(rel[0], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(rel[1], euler_to_matrix(np.array([0, 30, 0])), atol=1e-9)
    np.testing.assert_allclose(head_rotations(rot, "camera"), euler_to_matrix(rot))
    med = head_rotations(rot, "median")  # median pose (5, 0, 0) is the rest pose
    np.testing.assert_allclose(med[0], np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match="reference"):
        head_rotations(rot, "mean")
    # gaze: positive yaw turns the eye's +Z towards the subject's left (+X), positive pitch tips it down
    g = gaze_rotations(np.array([[[20.0, 0.0], [0.0, 15.0]]]))
    fwd = g[0] @ np.array([0, 0, 1.0])
    assert fwd[0, 0] > 0.3 and abs(fwd[0, 1]) < 1e-9
    assert fwd[1, 1] < -0.2 and abs(fwd[1, 0]) < 1e-9
    # quaternions: (w, x, y, z), unit, no sign flips between neighbours even across 180 degrees
    r = euler_to_matrix(np.stack([np.zeros(50), np.zeros(50), np.linspace(0, 350, 50)], axis=1))
    q = matrices_to_quaternions(r)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1, atol=1e-9)
    assert np.all(np.sum(q[1:] * q[:-1], axis=1) > 0)
    np.testing.assert_allclose(q[0], [1, 0, 0, 0], atol=1e-12)
    half = np.radians(350 / 49 * 7) / 2
    np.testing.assert_allclose(np.abs(q[7]), [np.cos(half), 0, 0, np.sin(half)], atol=1e-9)
