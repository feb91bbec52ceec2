#!/usr/bin/env bash
# Set up (idempotent) and run the test suite; extra arguments go to pytest (e.g. -m "not slow").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh"
cd "$root"
.venv/bin/python -m ruff check .
exec .venv/bin/python -m pytest "$@"
