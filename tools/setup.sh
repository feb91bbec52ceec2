#!/usr/bin/env bash
# One idempotent set-up: .venv with pinned dependencies, then the ICT face-model cache.
# Re-running it is cheap: the venv is rebuilt only when a requirements file changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${LIKENESS_PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
venv="$root/.venv"
# This machine's pip config names index folders that may be absent; its warnings about them are noise.
pip_install() { "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
                  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
stamp="$venv/.likeness-requirements"
want="$(cat requirements.txt requirements-dev.txt requirements-nodeps.txt | sha256sum | cut -c1-16)"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "likeness: creating $venv (pinned dependencies, a few minutes the first time)"
  "$python" -m venv "$venv"
  pip_install --upgrade pip==25.3
  # torch==2.13.0 resolves to the local CPU wheel (2.13.0+cpu) where the machine has one; elsewhere set
  # LIKENESS_PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu" to get the CPU build.
  # shellcheck disable=SC2086
  pip_install ${LIKENESS_PIP_ARGS:-} -r requirements-dev.txt
  pip_install --no-deps -r requirements-nodeps.txt
  echo "$want" > "$stamp"
fi

# The face model: converted once from the upstream ICT-FaceKit files into the user cache.
"$venv/bin/python" -m core setup
