"""The capture operator and its worker: bad input is reported, cancel and failure leave the file unchanged."""

from __future__ import annotations

import importlib.util
import threading
import time

import pytest

bpy = pytest.importorskip("bpy")

KINDS = ("objects", "meshes", "materials", "images", "actions", "collections", "cameras", "movieclips")


def counts() -> dict[str, int]:
    return {kind: len(getattr(bpy.data, kind)) for kind in KINDS}


@pytest.fixture
def addon(likeness, empty_scene):
    likeness.register()
    yield likeness
    likeness.unregister()


@pytest.mark.parametrize("video, end, message", [
    ("", -1, "Choose a video first"),
    ("/no/such/video.mp4", -1, "Video not found: /no/such/video.mp4"),
    (__file__, 3, "End frame 3 is before start frame 10"),
])
def test_bad_input_is_reported_and_nothing_built(addon, video, end, message):
    settings = bpy.context.scene.likeness
    settings.video_path, settings.frame_start, settings.frame_end = video, 10, end
    before = counts()
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.likeness.capture_video()
    assert counts() == before
    assert bpy.context.scene.likeness_job.message.startswith(message)
    assert not bpy.context.scene.likeness_job.running


def test_missing_face_model_is_reported(addon, tmp_path, monkeypatch):
    monkeypatch.setenv("LIKENESS_CACHE_DIR", str(tmp_path))
    bpy.context.scene.likeness.video_path = __file__
    with pytest.raises(RuntimeError, match="face model is not set up"):
        bpy.ops.likeness.capture_video()
    from likeness.addon import jobs

    assert not jobs.face_model_ready()


def test_worker_cancel_mid_run_builds_nothing(addon, model, make_capture):
    from likeness.addon import jobs

    capture = make_capture(model.expression_names)

    def work(job):
        for i in range(2000):
            job.step("tracking", i, 2000)
            time.sleep(0.001)
        return capture

    before = counts()
    worker = jobs.Worker(work, "capture").start()
    assert jobs.busy()
    with pytest.raises(jobs.InputError, match="busy"):
        jobs.Worker(work, "capture").start()
    deadline = time.time() + 10
    while worker.progress.done < 20 and time.time() < deadline:
        time.sleep(0.01)
    jobs.show_progress(bpy.context.scene.likeness_job, worker)
    assert bpy.context.scene.likeness_job.running and 0 < bpy.context.scene.likeness_job.progress < 1
    bpy.ops.likeness.cancel()
    assert worker.wait(5)
    worker.release()
    assert worker.cancelled and worker.result is None and worker.error is None
    assert not jobs.busy()
    assert counts() == before


def test_worker_error_reaches_the_main_thread(addon):
    from likeness.addon import jobs

    def work(job):
        raise OSError("cannot decode frame 12")

    worker = jobs.Worker(work, "capture").start()
    worker.wait(5)
    worker.release()
    assert isinstance(worker.error, OSError) and "frame 12" in str(worker.error)
    assert "OSError" in worker.error_trace


def test_failed_build_is_rolled_back(addon, model, make_capture):
    """The video vanished between capture and build: the half-built head is removed again."""
    from likeness.addon import jobs

    request = jobs.CaptureRequest(video="/no/such/video.mp4", cache_dir=jobs.cache_dir(), background=True)
    before = counts()
    with pytest.raises(RuntimeError):
        jobs.build_result(bpy.context, request, make_capture(model.expression_names))
    assert counts() == before


def test_eta_text():
    import likeness.addon.jobs as jobs

    assert jobs.format_eta(None) == "estimating..."
    assert jobs.format_eta(42.4) == "42 s"
    assert jobs.format_eta(125) == "2 min 05 s"
    assert jobs.format_eta(7300) == "2 h 01 min"


def _synthetic_clip(tmp_path, frames=45):
    if importlib.util.find_spec("likeness.core.pipeline") is None or \
            importlib.util.find_spec("likeness.core.synth") is None:
        pytest.skip("core.pipeline or core.synth is not in this checkout yet")
    from likeness.core import synth

    synth.generate(seed=11, frames=frames, size=(256, 256), personal=False, out_dir=tmp_path, albedo_size=256)
    return tmp_path / "video.mp4"


@pytest.mark.slow
@pytest.mark.parametrize("photometric", [False, True])  # the accurate mode's worker threads inside Blender too
def test_capture_operator_on_synthetic_clip(addon, tmp_path, photometric):
    video = _synthetic_clip(tmp_path)
    bpy.context.scene.likeness.video_path = str(video)
    bpy.context.scene.likeness.photometric = photometric
    assert bpy.ops.likeness.capture_video() == {"FINISHED"}
    head = bpy.data.objects["Likeness Head"]
    assert len(head.data.shape_keys.key_blocks) == 53
    assert "built 'Likeness'" in bpy.context.scene.likeness_job.message


@pytest.mark.slow
def test_capture_operator_cancel_mid_run(addon, tmp_path):
    from likeness.addon import jobs

    bpy.context.scene.likeness.video_path = str(_synthetic_clip(tmp_path, frames=90))
    before = counts()

    def cancel_when_running():
        deadline = time.time() + 60
        while time.time() < deadline:
            worker = jobs.ACTIVE
            if worker is not None and worker.progress.fraction > 0.05:
                worker.cancel()
                return
            time.sleep(0.01)

    threading.Thread(target=cancel_when_running, daemon=True).start()
    assert bpy.ops.likeness.capture_video() == {"CANCELLED"}  # a warning, not an error: no exception
    assert "cancelled" in bpy.context.scene.likeness_job.message
    assert counts() == before


def test_unreadable_video_is_reported_and_nothing_built(addon, tmp_path):
    if importlib.util.find_spec("likeness.core.pipeline") is None:
        pytest.skip("core.pipeline is not in this checkout yet")
    fake = tmp_path / "clip.mp4"
    fake.write_text("not a video")
    bpy.context.scene.likeness.video_path = str(fake)
    before = counts()
    with pytest.raises(RuntimeError, match="Capture failed: .*clip.mp4"):
        bpy.ops.likeness.capture_video()
    assert counts() == before
    assert bpy.context.scene.likeness_job.message.startswith("Capture failed")


def test_panel_options_reach_the_request(addon):
    from likeness.addon import jobs

    settings = bpy.context.scene.likeness
    settings.video_path, settings.frame_start, settings.frame_end = __file__, 0, -1
    assert jobs.request_from_settings(settings).photometric is True  # the panel's default: the accurate fit
    settings.photometric, settings.personalize = False, True
    request = jobs.request_from_settings(settings)
    # personal blendshapes are opt-in (they still measure worse than the generic ones)
    assert request.photometric is False and request.personalize is True and request.personal_shapes is False
    settings.personal_shapes = True
    assert jobs.request_from_settings(settings).personal_shapes is True


def test_the_panel_loads_the_fit_once_before_the_first_capture(addon, model, monkeypatch):
    """Shown with the face model set up, the panel has the fit's kernels and tables loaded on a thread (once a
    session), from the add-on's cache folder, so that the first capture does not load them during its own pass."""
    from likeness.addon import jobs
    from likeness.core.facemodel import cache as model_cache
    from likeness.core.render.atlas import texture_coords

    monkeypatch.setattr(jobs, "_WARMING", None)
    texture_coords.cache_clear()  # the photometric refinement's warm-up fills it
    thread = jobs.warm_up_once(bpy.context)
    assert thread is not None and thread.name == "likeness-warm-up"
    thread.join(120)
    assert not thread.is_alive()
    assert texture_coords.cache_info().currsize == 1
    assert model_cache.current_cache_folder(jobs.cache_dir()) in model_cache._LOADED
    assert jobs.warm_up_once(bpy.context) is None  # once a session


def test_a_cache_without_the_correspondence_is_not_ready(addon, cache_without_correspondence, monkeypatch):
    """A face model converted by an older set-up (no MediaPipe correspondence) would stop every capture: the
    panel says to set up, and the capture operator refuses up front."""
    from likeness.addon import jobs

    monkeypatch.setenv("LIKENESS_CACHE_DIR", str(cache_without_correspondence))
    assert not jobs.face_model_ready()
    bpy.context.scene.likeness.video_path = __file__
    with pytest.raises(RuntimeError, match="face model is not set up"):
        bpy.ops.likeness.capture_video()


@pytest.mark.slow
def test_set_up_fits_the_correspondence_a_cache_lacks(addon, cache_without_correspondence, monkeypatch):
    """'Set up Face Model' on such a cache fits the correspondence (10 s to a minute), as `python -m core setup`
    does, and the cache is ready; the one fitted is the user cache's own (the fit is deterministic)."""
    import numpy as np
    from likeness.addon import jobs
    from likeness.core.facemodel.correspondence import correspondence_path, load_correspondence

    monkeypatch.setenv("LIKENESS_CACHE_DIR", str(cache_without_correspondence))
    assert sorted(bpy.ops.likeness.setup_face_model(directory=str(cache_without_correspondence))) == ["FINISHED"]
    assert jobs.face_model_ready()
    fitted = load_correspondence(cache_without_correspondence)
    assert correspondence_path(cache_without_correspondence).is_file()
    assert np.array_equal(fitted.triangle, load_correspondence().triangle)


def test_an_out_of_date_correspondence_is_told(addon, cache_without_correspondence, monkeypatch):
    """A correspondence fitted by an older version's code (another recipe) still captures, but the add-on can
    tell, once a session, that set-up would fit it again."""
    from likeness.addon import jobs
    from likeness.core.facemodel.correspondence import load_correspondence, save_correspondence

    current = load_correspondence()  # the user cache's, fitted by this code
    monkeypatch.setenv("LIKENESS_CACHE_DIR", str(cache_without_correspondence))
    monkeypatch.setattr(jobs, "_OUTDATED", {})
    save_correspondence(current, cache_without_correspondence)
    assert jobs.face_model_ready() and jobs.correspondence_outdated() is None

    from dataclasses import replace

    save_correspondence(replace(current, recipe="an older one"), cache_without_correspondence)
    monkeypatch.setattr(jobs, "_OUTDATED", {})
    assert "changed" in jobs.correspondence_outdated()


@pytest.mark.slow
def test_personalize_on_a_too_short_clip_builds_the_generic_head(addon, tmp_path):
    """Personalize on three frames: the head is built (generic), and the message says why there is no model."""
    video = _synthetic_clip(tmp_path, frames=3)
    settings = bpy.context.scene.likeness
    settings.video_path, settings.personalize, settings.photometric = str(video), True, False
    assert bpy.ops.likeness.capture_video() == {"FINISHED"}
    assert "Likeness Head" in bpy.data.objects
    assert "no personal model: a personal model needs at least 5 frames" in bpy.context.scene.likeness_job.message
