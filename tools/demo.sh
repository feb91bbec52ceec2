#!/usr/bin/env bash
# Set up (idempotent) and run the main job on the embedded default: python -m core demo.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh"
cd "$root"
exec .venv/bin/python -m core demo "$@"
