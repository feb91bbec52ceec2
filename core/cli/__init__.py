"""The command-line front: one module per subcommand, each with add_arguments(parser) and run(args)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path


class UserError(Exception):
    """An error whose message is for the user (bad input, missing set-up); the CLI prints it, no traceback."""


def writable_output(path: str | os.PathLike, what: str = "the output") -> Path:
    """path, checked before a long run (core.io.outputs): a capture of a long clip takes minutes, and finding
    only at its end that the output cannot be written loses them."""
    from ..io.outputs import unwritable_because

    why = unwritable_because(path)
    if why:
        raise UserError(f"cannot write {what} to {path}: {why}")
    return Path(path)


# subcommand -> module in this package; each module owns its own flags and is imported only when used,
# so `python -m core setup` does not pay for torch or mediapipe.
COMMANDS = {
    "setup": ("setup", "convert the ICT-FaceKit source into the face-model cache"),
    "synth": ("synth", "render a synthetic clip with ground truth"),
    "capture": ("capture", "track a face in a video into a Capture (.npz)"),
    "model": ("model", "build a PersonalModel from a video and its Capture"),
    "convert": ("convert", "convert captures to and from Live Link Face CSV"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core", description="Likeness: face capture from video")
    sub = parser.add_subparsers(dest="command", required=True)
    argv = sys.argv[1:] if argv is None else argv
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == wanted:
            try:
                mod = importlib.import_module(f".{module}", __name__)
            except ModuleNotFoundError as e:
                if e.name and e.name.endswith(f"cli.{module}"):
                    print(f"likeness: `{name}` is not available in this build", file=sys.stderr)
                    return 2
                raise
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("likeness: cancelled", file=sys.stderr)
        return 130
    except UserError as e:
        print(f"likeness: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # the disk filled up or a file went away mid-run: the system's words, not a traceback
        where = f": {e.filename}" if e.filename else ""
        print(f"likeness: {e.strerror or e}{where}", file=sys.stderr)
        return 1
