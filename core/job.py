"""Progress, ETA and cancellation for long work, shared by the CLI and the add-on's worker thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


class Cancelled(Exception):
    """Raised inside long work when the user cancelled; callers leave everything as it was."""


@dataclass
class Progress:
    stage: str = ""
    done: int = 0
    total: int = 0
    fraction: float = 0.0  # of the whole job, 0..1
    eta_seconds: float | None = None
    message: str = ""


@dataclass
class Job:
    """Passed into every long core function: call job.step(...) often, it raises Cancelled when asked to stop.

    on_progress runs on the calling (worker) thread; the add-on only stores what it gets and reads it
    from a timer on the main thread.
    """

    on_progress: Callable[[Progress], None] | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    # Stages and their share of the whole job, e.g. {"landmarks": 0.7, "fitting": 0.3}.
    weights: dict[str, float] = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)
    _remap: tuple[float, float] = (1.0, 0.0)  # fraction -> scale * fraction + offset (see repeat)
    _started: float = field(default_factory=time.perf_counter)
    _last_emit: float = 0.0

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled("cancelled")

    def step(self, stage: str, done: int, total: int, message: str = "") -> None:
        """Report progress within a stage and honour a pending cancel."""
        self.check()
        before = 0.0
        for name, w in self.weights.items():
            if name == stage:
                break
            before += w
        share = self.weights.get(stage, 1.0 if not self.weights else 0.0)
        within = done / total if total else 0.0
        scale, offset = self._remap
        fraction = min(1.0, scale * (before + share * within) + offset)
        elapsed = time.perf_counter() - self._started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.01 else None
        self.progress = Progress(stage, done, total, fraction, eta, message)
        now = time.perf_counter()
        # At most ~20 callbacks a second: cheap for tight loops, smooth enough for a progress bar.
        if self.on_progress and (now - self._last_emit > 0.05 or done == total):
            self._last_emit = now
            self.on_progress(self.progress)


    @contextmanager
    def repeat(self, first_stage: str, index: int, count: int) -> Iterator[None]:
        """Within the block, the stages from first_stage to the end report as the index-th (0-based) of count
        equal parts of their share, so that a loop running them up to count times moves the bar forwards
        instead of back (e.g. the personal model built again after each re-track)."""
        start = 0.0
        for name, w in self.weights.items():
            if name == first_stage:
                break
            start += w
        else:
            start = 0.0  # unknown stage, or no weights: the whole bar
        saved = self._remap
        self._remap = (1.0 / count, start * (1.0 - 1.0 / count) + (1.0 - start) * index / count)
        try:
            yield
        finally:
            self._remap = saved

    def silent(self) -> Job:
        """A job that reports nothing but is cancelled with this one (work inside another stage's share)."""
        return Job(cancel_event=self.cancel_event)


def quiet_job() -> Job:
    """A job nobody watches (tests, library calls without a UI)."""
    return Job()
