"""Progress on the terminal (a bar with stage, percent, elapsed, frames and ETA) or in a log (a line per step)."""

from __future__ import annotations

import sys
from typing import TextIO

from ..job import Progress

LOG_STEP = 0.1  # in a log, a line each time the job gets this much further (and at each new stage)


class ProgressBar:
    """Pass as Job(on_progress=bar); close() when done. Quiet bars print nothing.

    On a terminal, a tqdm bar, made on the first report so that a job that fails before it starts (an
    unreadable video) prints only its one error line. Elsewhere (a batch job's log, a pipe), a bar's
    carriage-return redraws would pile up into one long line: a plain line per stage and per tenth of the
    job instead.
    """

    def __init__(self, quiet: bool = False, stream: TextIO | None = None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar = None
        self._logged: tuple[str, float] | None = None  # (stage, fraction) of the last line in a log

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        if not self.terminal:
            self._log(p)
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=1000, file=self.stream,
                             bar_format="{desc:>10} {percentage:3.0f}%|{bar}| {elapsed}{postfix}")
        self._bar.set_description_str(p.stage, refresh=False)
        self._bar.n = int(p.fraction * 1000)
        if p.eta_seconds is not None:
            self._bar.set_postfix_str(f"{p.done}/{p.total} eta {p.eta_seconds:.0f}s", refresh=False)
        self._bar.refresh()

    def _log(self, p: Progress) -> None:
        if self._logged is not None and p.stage == self._logged[0] and p.fraction < self._logged[1] + LOG_STEP:
            return
        eta = f" eta {p.eta_seconds:.0f}s" if p.eta_seconds is not None else ""
        self.stream.write(f"{p.stage:>10} {100 * p.fraction:3.0f}% {p.done}/{p.total}{eta}\n")
        self.stream.flush()
        self._logged = (p.stage, p.fraction)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
