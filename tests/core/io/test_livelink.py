"""Live Link Face CSV: round trip, a hand-written take in the app's layout, bad files, the convert command."""

import numpy as np
import pytest

from core.cli import main as cli_main
from core.facemodel.arkit import ARKIT_NAMES, ict_to_arkit
from core.io.capture import Capture
from core.io.livelink import (
    HEADER,
    ICT_NAMES,
    LLF_BLENDSHAPES,
    LiveLinkError,
    export_csv,
    format_timecode,
    import_csv,
)


def _capture(frames=90, fps=30.0, start=12.5):
    rng = np.random.default_rng(3)
    t = np.arange(frames) / fps
    gaze = np.stack([rng.normal(0, 8, (frames, 2)), rng.normal(0, 8, (frames, 2))], axis=1)
    return Capture(names=ICT_NAMES, weights=rng.random((frames, 53)).astype(np.float32),
                   tracked=np.ones(frames, bool), rotation=rng.normal(0, 10, (frames, 3)),
                   translation=np.zeros((frames, 3)), timestamps=start + t, fps=fps, image_size=(640, 480),
                   focal=600.0, gaze=gaze.astype(np.float32))


def test_model_order_matches():
    from core.facemodel import load_face_model

    assert ICT_NAMES == load_face_model().expression_names


def test_export_import_round_trip(tmp_path):
    cap = _capture()
    path = export_csv(cap, tmp_path / "take.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(HEADER)
    assert lines[1].startswith("00:00:12:30.000,61,")  # 12.5 s at the app's 60 fps timecode
    back = import_csv(path)
    assert back.n_frames == cap.n_frames
    # the CSV carries ARKit weights: compare there (split ICT shapes come back as their mean)
    np.testing.assert_allclose(ict_to_arkit(back.weights, back.names), ict_to_arkit(cap.weights, cap.names),
                               atol=1e-3)
    np.testing.assert_allclose(back.timestamps, cap.timestamps - cap.timestamps[0], atol=1e-4)
    assert back.fps == pytest.approx(30.0, rel=1e-3)
    assert back.metadata["timecode_fps"] == 60
    np.testing.assert_allclose(back.rotation, cap.rotation, atol=1e-3)
    np.testing.assert_allclose(back.gaze, cap.gaze, atol=1e-3)
    # and again: the second export reproduces the first file's timecodes
    again = export_csv(back, tmp_path / "again.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in again] == [r.split(",")[0] for r in lines]


def test_round_trip_other_timecode_rate(tmp_path):
    cap = _capture(frames=75, fps=25.0, start=0.0)
    back = import_csv(export_csv(cap, tmp_path / "t.csv", fps=25))
    assert back.metadata["timecode_fps"] == 25  # inferred from the wraps of the frame field
    np.testing.assert_allclose(back.timestamps, cap.timestamps, atol=1e-4)


def test_timecode_format():
    assert format_timecode(15 * 3600 + 21 * 60 + 18 + 29.514 / 30, 30) == "15:21:18:29.514"
    assert format_timecode(0.999999, 60) == "00:00:01:00.000"


def _write_take(path, rows, header=None):
    header = header or list(HEADER)
    path.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n")
    return path


def test_hand_written_take(tmp_path):
    # The app's layout: 60 fps timecode, a sample every 2 frames, rows out of order, radians.
    def row(tc, jaw=0.0, blink_l=0.0, brow_inner=0.0, tongue=0.0, yaw=0.0, l_eye_pitch=0.0):
        v = {c: 0.0 for c in LLF_BLENDSHAPES}
        v.update(JawOpen=jaw, EyeBlinkLeft=blink_l, BrowInnerUp=brow_inner, TongueOut=tongue)
        rot = [yaw, 0, 0, 0, l_eye_pitch, 0, 0, 0, 0]
        return ",".join([tc, "61", *(f"{v[c]:.10f}" for c in LLF_BLENDSHAPES), *(f"{r:.10f}" for r in rot)])

    path = _write_take(tmp_path / "take.csv", [
        row("12:27:47:57.169", jaw=0.5, yaw=0.1),
        row("12:27:47:59.168", jaw=0.75, blink_l=1.0, tongue=0.4),
        row("12:27:47:55.168", brow_inner=0.3, l_eye_pitch=-0.2),
        row("12:27:48:01.167", jaw=0.25),
    ])
    cap = import_csv(path)
    i = ICT_NAMES.index
    np.testing.assert_allclose(cap.weights[:, i("jawOpen")], [0.0, 0.5, 0.75, 0.25], atol=1e-6)
    np.testing.assert_allclose(cap.weights[:, i("eyeBlink_L")], [0, 0, 1, 0], atol=1e-6)
    np.testing.assert_allclose(cap.weights[0, [i("browInnerUp_L"), i("browInnerUp_R")]], [0.3, 0.3], atol=1e-6)
    np.testing.assert_allclose(cap.timestamps, np.array([0, 2.001, 4.0, 5.999]) / 60, atol=1e-6)
    np.testing.assert_allclose(cap.rotation[1], [0, np.degrees(0.1), 0], atol=1e-5)  # pitch, yaw, roll
    np.testing.assert_allclose(cap.gaze[0, 0], [0, np.degrees(-0.2)], atol=1e-5)  # left eye yaw, pitch
    assert cap.metadata["timecode_start"] == "12:27:47:55.168"
    assert "TongueOut" in cap.metadata["dropped"]
    assert cap.tracked.all() and cap.fps == pytest.approx(30.0, rel=0.01)


def test_columns_in_other_order_without_rotations(tmp_path):
    cols = list(reversed(LLF_BLENDSHAPES))
    rows = [",".join(["00:00:00:0" + str(k), *("0.5" if c == "MouthSmileRight" else "0" for c in cols)])
            for k in range(3)]
    cap = import_csv(_write_take(tmp_path / "t.csv", rows, ["timecode", *cols]), fps=30)
    assert np.allclose(cap.weights[:, ICT_NAMES.index("mouthSmile_R")], 0.5)
    assert cap.gaze is None and np.allclose(cap.rotation, 0)
    np.testing.assert_allclose(cap.timestamps, [0, 1 / 30, 2 / 30])


def test_missing_columns(tmp_path):
    header = [c for c in HEADER if c not in ("JawOpen", "EyeBlinkLeft")]
    path = _write_take(tmp_path / "t.csv", ["00:00:00:00.000," + ",".join(["0"] * (len(header) - 1))], header)
    with pytest.raises(LiveLinkError, match="missing column.*EyeBlinkLeft.*JawOpen"):
        import_csv(path)


@pytest.mark.parametrize("content, message", [
    ("", "empty file"),
    (",".join(HEADER) + "\n", "no data rows"),
    (",".join(HEADER) + "\n" + "12:27:xx:00.000,61," + ",".join(["0"] * 61) + "\n", "bad timecode"),
    (",".join(HEADER) + "\n" + "00:00:00:00.000,61," + ",".join(["zero"] * 61) + "\n", "line 2"),
    (",".join(HEADER) + "\n" + "00:00:00:00.000,61,0\n", "fields"),
    (",".join(HEADER) + "\n" + "00:00:00:75.000,61," + ",".join(["0"] * 61) + "\n", "frame field"),
])
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(LiveLinkError, match=message):
        import_csv(path)
    with pytest.raises(LiveLinkError, match="no such file"):
        import_csv(tmp_path / "nope.csv")


def test_convert_cli(tmp_path, capsys):
    cap = _capture(frames=20)
    npz = cap.save(tmp_path / "cap.npz")
    assert cli_main(["convert", str(npz), str(tmp_path / "out.csv")]) == 0
    assert cli_main(["convert", str(tmp_path / "out.csv"), str(tmp_path / "back.npz")]) == 0
    back = Capture.load(tmp_path / "back.npz")
    np.testing.assert_allclose(ict_to_arkit(back.weights, back.names), ict_to_arkit(cap.weights, cap.names),
                               atol=1e-3)
    assert cli_main(["convert", str(npz), str(tmp_path / "x.txt")]) == 1
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    assert cli_main(["convert", str(tmp_path / "bad.csv"), str(tmp_path / "y.npz")]) == 1
    err = capsys.readouterr().err
    assert "missing column" in err and "Traceback" not in err
    assert len(ARKIT_NAMES) == 52
