"""A terminal progress bar (stage, percent, elapsed, frames and ETA) fed by a Job's progress callback."""

from __future__ import annotations

import sys

from ..job import Progress


class ProgressBar:
    """Pass as Job(on_progress=bar); close() when done. Quiet bars print nothing.

    The tqdm bar is made on the first report, so a job that fails before it starts (an unreadable video)
    prints only its one error line.
    """

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._bar = None

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=1000, file=sys.stderr,
                             bar_format="{desc:>10} {percentage:3.0f}%|{bar}| {elapsed}{postfix}")
        self._bar.set_description_str(p.stage)
        self._bar.n = int(p.fraction * 1000)
        if p.eta_seconds is not None:
            self._bar.set_postfix_str(f"{p.done}/{p.total} eta {p.eta_seconds:.0f}s")
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
