"""unwritable_because: the reasons an output cannot be written, found before the work."""

from core.io.outputs import unwritable_because


def test_reasons(tmp_path):
    assert unwritable_because(tmp_path / "new" / "folder" / "out.npz") is None
    assert (tmp_path / "new" / "folder").is_dir()  # made: the job would make it anyway
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    assert "folder cannot be made" in unwritable_because(blocker / "out.npz")
    assert unwritable_because(tmp_path) == "it is a folder"
