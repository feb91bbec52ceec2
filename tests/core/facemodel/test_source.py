"""Bad and alternative ICT-FaceKit sources: each gives a clear message; the zip layout reads as the tar does."""

from __future__ import annotations

import io
import tarfile
import zipfile

import numpy as np
import pytest

from core.facemodel.cache import build_cache, load_face_model
from core.facemodel.source import FaceModelSourceError, download_upstream, read_source, resolve_source


def test_missing_path(tmp_path):
    with pytest.raises(FaceModelSourceError, match="does not exist.*LIKENESS_ICT_SOURCE"):
        resolve_source(tmp_path / "nope.tar.xz", tmp_path)


def test_no_source_and_no_download(tmp_path, monkeypatch):
    monkeypatch.delenv("LIKENESS_ICT_SOURCE", raising=False)
    with pytest.raises(FaceModelSourceError, match="LIKENESS_ICT_SOURCE"):
        resolve_source(None, tmp_path, allow_download=False)


def test_corrupt_archive(tmp_path):
    bad = tmp_path / "ICT-FaceKit-master.tar.xz"
    bad.write_bytes(b"\xfd7zXZ\x00" + b"garbage" * 100)
    with pytest.raises(FaceModelSourceError, match="corrupt"):
        read_source(bad)


def test_folder_without_facexmodel(tmp_path):
    (tmp_path / "ICT-FaceKit").mkdir()
    with pytest.raises(FaceModelSourceError, match="no FaceXModel"):
        read_source(tmp_path / "ICT-FaceKit")


def test_unknown_kind(tmp_path):
    f = tmp_path / "model.rar"
    f.write_bytes(b"x")
    with pytest.raises(FaceModelSourceError, match="not a folder, .zip or .tar.xz"):
        read_source(f)


def test_archive_without_model_files(tmp_path):
    path = tmp_path / "empty.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ICT-FaceKit-master/README.md", "hello")
    with pytest.raises(FaceModelSourceError, match="missing"):
        read_source(path)


def _small_tree(ict_archive, out_zip):
    """A zip in GitHub's layout holding just the neutral mesh, the json and a few shapes from the real archive."""
    keep = ("generic_neutral_mesh.obj", "vertex_indices.json", "jawOpen.obj")
    with tarfile.open(ict_archive, "r|xz") as t, zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as z:
        for info in t:
            if info.name.rsplit("/", 1)[-1] in keep:
                z.writestr("ICT-FaceKit-da5f95a/FaceXModel/" + info.name.rsplit("/", 1)[-1], t.extractfile(info).read())


@pytest.mark.slow
def test_incomplete_zip_is_reported(ict_archive, tmp_path):
    path = tmp_path / "partial.zip"
    _small_tree(ict_archive, path)
    with pytest.raises(FaceModelSourceError, match="shape files missing"):
        read_source(path)


def test_download_checks_the_archive(tmp_path):
    """The real download path, fed from a local file:// URL (the internet is what cannot be reached here)."""
    not_zip = tmp_path / "served.zip"
    not_zip.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(FaceModelSourceError, match="not a zip"):
        download_upstream(tmp_path / "dl", url=not_zip.as_uri())
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("x/README.md", "not ict")
    with pytest.raises(FaceModelSourceError, match="not ICT-FaceKit"):
        download_upstream(tmp_path / "dl2", url=other.as_uri())
    with pytest.raises(FaceModelSourceError, match="could not download"):
        download_upstream(tmp_path / "dl3", url=(tmp_path / "absent.zip").as_uri())


def test_download_accepts_a_good_archive(tmp_path):
    good = tmp_path / "good.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ICT-FaceKit-master/FaceXModel/generic_neutral_mesh.obj", "v 0 0 0\n")
        z.writestr("ICT-FaceKit-master/FaceXModel/vertex_indices.json", "{}")
    good.write_bytes(buf.getvalue())
    path = download_upstream(tmp_path / "dl", url=good.as_uri())
    assert path.exists() and path.suffix == ".zip"


@pytest.mark.slow
def test_cache_from_archive_in_fresh_dir(ict_archive, tmp_path):
    """Set-up from scratch into an empty cache folder, then a load that matches the user cache."""
    folder = build_cache(ict_archive, tmp_path / "cache")
    assert folder.parent == tmp_path / "cache" and (folder / "meta.json").exists()
    fresh = load_face_model(tmp_path / "cache")
    assert fresh.n_vertices == 26719
    assert fresh.source_sha256.startswith("27e5a15f")
    np.testing.assert_array_equal(fresh.triangles[:10], load_face_model().triangles[:10])
