"""Command line: python -m core <command> ... (setup, synth, capture, model, demo, ...)."""

import sys

from .cli import main

sys.exit(main())
