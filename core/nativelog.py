"""What native libraries (FFmpeg, TFLite, absl) write straight to the process's stderr, held back and sifted.

Their lines bypass Python's sys.stderr, so neither logging nor warnings filters reach them; the only handle is
file descriptor 2 itself. Nothing is lost by default: held lines are written out at the block's end.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

# Descriptor 2 is one per process: two threads swapping it at once could leave it on a temporary file for good.
_SWAP = threading.RLock()


class HeldLines:
    """What a `stderr_held` block caught: lines (bytes, newlines kept) once the block has ended."""

    def __init__(self):
        self.lines: list[bytes] = []
        self.discarded = False

    def discard(self) -> None:
        """Write none of the block's lines out (where the caller's own message says it all)."""
        self.discarded = True


@contextlib.contextmanager
def stderr_held(drop: re.Pattern[bytes] | None = None) -> Iterator[HeldLines]:
    """Runs the block with descriptor 2 captured; yields a HeldLines whose lines, less those matching drop
    (all of them where the block called discard()), are written out when the block ends, an error included.
    Where there is no descriptor 2 to capture, the block just runs. Process-wide while it lasts: keep it short."""
    with _SWAP:
        yield from _held(drop)


def _held(drop: re.Pattern[bytes] | None) -> Iterator[HeldLines]:
    held = HeldLines()
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield held
        return
    sink = tempfile.TemporaryFile()
    try:
        os.dup2(sink.fileno(), 2)
        yield held
    finally:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sink.seek(0)
        held.lines = sink.read().splitlines(keepends=True)
        sink.close()
        kept = [] if held.discarded else [line for line in held.lines if drop is None or not drop.search(line)]
        if kept:
            with contextlib.suppress(OSError):
                os.write(2, b"".join(kept))
