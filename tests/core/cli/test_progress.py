"""Command-line progress: a bar on a terminal, a few plain lines in a log."""

from __future__ import annotations

import io

from core.cli.progress import ProgressBar
from core.job import Progress


def _run(bar: ProgressBar) -> None:
    for stage, total, start, share in (("landmarks", 352, 0.0, 0.8), ("fitting", 352, 0.8, 0.2)):
        for done in range(0, total + 1, 4):
            bar(Progress(stage, done, total, start + share * done / total, eta_seconds=(total - done) / 90))
    bar.close()


def test_a_log_gets_a_line_per_stage_and_tenth_not_a_redraw_per_step():
    log = io.StringIO()
    _run(ProgressBar(stream=log))
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert 10 <= len(lines) <= 14, lines  # ~180 reports in
    assert lines[0].split() == ["landmarks", "0%", "0/352", "eta", "4s"]
    assert any(line.split()[0] == "fitting" for line in lines)
    assert lines[-1].split()[:2] == ["fitting", "98%"] or lines[-1].split()[:2] == ["fitting", "100%"]


def test_a_terminal_gets_a_bar():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    _run(ProgressBar(stream=out))
    assert "\r" in out.getvalue() and "100%" in out.getvalue()


def test_quiet_prints_nothing():
    log = io.StringIO()
    _run(ProgressBar(quiet=True, stream=log))
    assert log.getvalue() == ""
