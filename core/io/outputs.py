"""Whether an output file can be written, asked before a long job rather than found out at its end."""

from __future__ import annotations

import os
from pathlib import Path


def unwritable_because(path: str | os.PathLike) -> str | None:
    """Why path cannot be written (its folder cannot be made, it is a folder, the folder is read-only), or None.
    Makes the folder where it is missing: the job would make it anyway."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"its folder cannot be made ({e.strerror or e})"
    if path.is_dir():
        return "it is a folder"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"{path.parent} is not writable"
    return None
