"""Operators: capture from video and set up the face model, each a modal operator polling a worker thread.

Interactive use (invoke): the worker runs core code while a window timer copies its progress into the
scene's job state for the panel; Esc or the panel's Cancel button cancels. The result is built on the main
thread when the operator finishes, so one undo step removes it. From scripts and in background mode
(execute) the same work runs to the end before the operator returns.
"""

from __future__ import annotations

import os
from pathlib import Path

import bpy
from bpy.props import StringProperty

from . import jobs, retarget_ops

POLL_SECONDS = 0.1


class _WorkerOperator:
    """A modal operator around one jobs.Worker; subclasses say how to start it and what to do when done."""

    _worker: jobs.Worker | None = None
    _timer = None

    def start(self, context) -> jobs.Worker:
        raise NotImplementedError

    def finish(self, context, worker: jobs.Worker) -> set[str]:
        raise NotImplementedError

    def invoke(self, context, event):
        return self._start_modal(context)

    def _start_modal(self, context):
        try:
            self._worker = self.start(context).start()
        except jobs.InputError as e:
            return self._fail(context, str(e))
        jobs.show_progress(context.scene.likeness_job, self._worker)
        wm = context.window_manager
        self._timer = wm.event_timer_add(POLL_SECONDS, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        worker = self._worker
        if event.type == "ESC" and event.value == "PRESS" and not worker.done:
            worker.cancel()
            return {"RUNNING_MODAL"}  # Esc is ours while the job runs: not passed on to other tools
        if event.type == "TIMER":
            jobs.show_progress(context.scene.likeness_job, worker)
            _redraw(context)
        if not worker.done:
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        return self._end(context)

    def execute(self, context):
        try:
            self._worker = self.start(context).start()
        except jobs.InputError as e:
            return self._fail(context, str(e))
        self._worker.wait()
        return self._end(context)

    def cancel(self, context):  # Blender calls this when the window closes while modal
        if self._worker is not None:
            self._worker.cancel()
            self._worker.wait(5.0)
            self._worker.release()

    def _end(self, context) -> set[str]:
        worker = self._worker
        worker.release()
        try:
            if worker.cancelled:
                return self._fail(context, f"{worker.title.capitalize()} cancelled; nothing was changed",
                                  level="WARNING")
            if worker.error is not None:
                print(worker.error_trace)
                return self._fail(context, f"{worker.title.capitalize()} failed: {_message(worker.error)}")
            return self.finish(context, worker)
        finally:
            _redraw(context)

    def _fail(self, context, message: str, level: str = "ERROR") -> set[str]:
        self.report({level}, message)
        jobs.clear_progress(context.scene.likeness_job, message)
        return {"CANCELLED"}


class LIKENESS_OT_capture_video(_WorkerOperator, bpy.types.Operator):
    """Track the face in the video and build an animated head (Esc cancels)"""

    bl_idname = "likeness.capture_video"
    bl_label = "Capture from Video"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return context.scene is not None and not jobs.busy()

    def start(self, context) -> jobs.Worker:
        self._request = jobs.request_from_settings(context.scene.likeness, context)
        request = self._request
        return jobs.Worker(lambda job: jobs.run_capture(request, job), "capture")

    def finish(self, context, worker):
        try:
            built = jobs.build_result(context, self._request, worker.result)
        except Exception as e:
            return self._fail(context, f"Building the head failed: {_message(e)}")
        capture, _ = jobs.capture_and_personal(worker.result)
        # The Retarget panel's "Last Capture" source is this one from now on.
        retarget_ops.remember_capture(capture, Path(self._request.video).name)
        message = (f"Likeness: built '{built.collection.name}' from {int(capture.tracked.sum())} of "
                   f"{capture.n_frames} frames in {_elapsed(worker)}")
        self.report({"INFO"}, message)
        why = getattr(worker.result, "personal_error", None)
        if why:  # the capture is built with the generic head; the person could not be modeled from this clip
            self.report({"WARNING"}, f"No personal model (the head is the generic one): {why}")
            message += f"; no personal model: {why}"
        outdated = jobs.correspondence_outdated(context)
        if outdated:  # an upgrade changed how MediaPipe's points are tied to the model: the capture still ran
            self.report({"WARNING"}, f"The face model's landmark correspondence is out of date ({outdated}): "
                                     "press 'Set up Face Model' to fit it again (10 s to a minute)")
        jobs.clear_progress(context.scene.likeness_job, message)
        return {"FINISHED"}


class LIKENESS_OT_cancel(bpy.types.Operator):
    """Cancel the running Likeness job"""

    bl_idname = "likeness.cancel"
    bl_label = "Cancel"
    bl_options = {"INTERNAL"}

    @classmethod
    def poll(cls, context):
        return jobs.busy()

    def execute(self, context):
        jobs.ACTIVE.cancel()
        return {"FINISHED"}


class LIKENESS_OT_setup_face_model(_WorkerOperator, bpy.types.Operator):
    """Convert the ICT-FaceKit archive (.zip, .tar.xz or its folder) into the face-model cache, or use an
    existing cache folder"""

    bl_idname = "likeness.setup_face_model"
    bl_label = "Set up Face Model"
    bl_options = {"REGISTER"}

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})
    directory: StringProperty(subtype="DIR_PATH", options={"SKIP_SAVE"})
    filter_glob: StringProperty(default="*.zip;*.tar.xz;*.json", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        return not jobs.busy()

    def invoke(self, context, event):
        if not self.filepath and not self.directory:
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return self._start_modal(context)

    def execute(self, context):
        # Blender calls execute after the file browser: stay responsive there, run to the end elsewhere.
        if context.window is not None and not bpy.app.background:
            return self._start_modal(context)
        return super().execute(context)

    def start(self, context) -> jobs.Worker:
        path = Path(bpy.path.abspath(self.filepath or self.directory))
        if path.name == "current.json":
            path = path.parent
        if not path.exists():
            raise jobs.InputError(f"Not found: {path}")
        # MediaPipe's points are tied to the model by a correspondence fitted on renders of it (10 s to a
        # minute, once): made here too, where a cache lacks it or its recipe changed, or a capture would stop.
        if path.is_dir() and (path / "current.json").is_file():  # an existing cache: point at it
            def existing(job):
                from ..core.synth.correspondence_fit import ensure_correspondence

                os.environ["LIKENESS_CACHE_DIR"] = str(path)  # as a capture does: compiled kernels cache there too
                ensure_correspondence(path, job=job)
                return "existing", path

            return jobs.Worker(existing, "face model set-up")
        target = jobs.cache_dir(context)
        source = str(path)

        def work(job):
            from ..core.facemodel.cache import build_cache
            from ..core.synth.correspondence_fit import ensure_correspondence

            def progress(fraction: float, message: str = "") -> None:
                job.step("converting the face model", int(1000 * fraction), 1000, message)

            folder = build_cache(source, target, progress)
            os.environ["LIKENESS_CACHE_DIR"] = str(target)  # as a capture does: compiled kernels cache there too
            ensure_correspondence(target, job=job)
            return "built", folder

        return jobs.Worker(work, "face model set-up")

    def finish(self, context, worker):
        kind, folder = worker.result
        jobs.forget_correspondence_checks()  # fitted again where it was out of date
        if kind == "existing":
            prefs = jobs.preferences(context)
            if prefs is None:
                os.environ["LIKENESS_CACHE_DIR"] = str(folder)
                message = f"Using the face-model cache in {folder} for this session"
            else:
                prefs.cache_dir = str(folder)
                message = f"Using the face-model cache in {folder}"
        else:
            message = f"Face model ready in {folder}"
        self.report({"INFO"}, message)
        jobs.clear_progress(context.scene.likeness_job, message)
        return {"FINISHED"}


def _message(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


def _elapsed(worker: jobs.Worker) -> str:
    import time

    return jobs.format_eta(time.perf_counter() - worker.started)


def _redraw(context) -> None:
    screen = context.screen
    if screen is None:
        return
    for area in screen.areas:
        if area.type == "VIEW_3D":
            area.tag_redraw()


CLASSES = (LIKENESS_OT_capture_video, LIKENESS_OT_cancel, LIKENESS_OT_setup_face_model)
