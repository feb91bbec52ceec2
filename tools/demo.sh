#!/usr/bin/env bash
# Set up (idempotent), then the main job on the embedded default: the project's own synthetic clip
# (shippable: it is generated, not recorded) -> capture and personal model -> personalized head in out/demo/demo.blend.
# Pass a video to capture that instead: bash tools/demo.sh path/to/video.mp4
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh"
cd "$root"
out="$root/out/demo"
mkdir -p "$out"
video="${1:-}"
if [ -z "$video" ]; then
  video="$out/video.mp4"
  [ -f "$video" ] || .venv/bin/python -m core synth --seed 7 --frames 150 --size 640 480 -o "$out"
fi
# --personalize also models the person (their albedo on the head): capture.npz and capture.person.npz. Where
# the clip cannot give a personal model (it says why and exits 1, the capture written), the head is the generic one.
rm -f "$out/capture.npz" "$out/capture.person.npz"
personal=()
if .venv/bin/python -m core capture "$video" -o "$out/capture.npz" --personalize --overlay "$out/overlays"; then
  personal=(--personal "$out/capture.person.npz")
elif [ ! -f "$out/capture.npz" ]; then
  exit 1
fi
# The same headless entry point as `blender -b --python tools/blender_batch.py -- ...`, through the bpy module.
.venv/bin/python tools/blender_batch.py -- --video "$video" --capture "$out/capture.npz" "${personal[@]}" \
  --out "$out/demo.blend" --render "$out/demo.png"
echo "likeness: wrote $out/demo.blend (preview $out/demo.png, overlays in $out/overlays)"
