#!/bin/sh
# Screenshot of the plug-in's dialog (interactive mode) under Xvfb, saved as docs/gimp-dialog.png.
# The dialog runs in the plug-in process, so gimp-console-3.0 is enough: no GIMP main window.
# A fresh GIMP config dir makes the dialog show the defaults (it ignores caller values and
# starts from the last-used ones). Needs GIMP 3 (tools/provision-gimp3.sh) and root for the chroot.
#   usage: tools/gimp-dialog-screenshot.sh [OUT.png]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")

if [ "${1:-}" = --inside ]; then   # second stage: where GIMP 3 is, with Xvfb
  WORK=$2
  export DISPLAY=:77 GIMP3_DIRECTORY="$WORK/cfg" GSETTINGS_BACKEND=memory
  Xvfb "$DISPLAY" -screen 0 1024x768x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
  XVFB=$!
  trap 'kill $XVFB 2>/dev/null || true' EXIT
  sleep 1
  gimp-console-3.0 -i -d -f --batch-interpreter=python-fu-eval -b - --quit >"$WORK/gimp.log" 2>&1 <<'PY' &
import os
import gi
gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio
photo = os.environ.get("NST_SHOT_IMAGE", "")
if photo and os.path.isfile(photo):
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(photo))
else:
    image = Gimp.Image.new(320, 240, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(image, "Background", 320, 240, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, 0)
proc = Gimp.get_pdb().lookup_procedure("python-fu-nst-style-transfer")
config = proc.create_config()
config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [image.get_layers()[0]])
print("dialog returned", proc.run(config).index(0).value_nick, flush=True)
image.delete()
PY
  GIMP=$!
  WID=$(timeout 90 xdotool search --sync --name '^Neural Style Transfer$' | head -1)
  [ -n "$WID" ] || { echo "the dialog did not appear; see $WORK/gimp.log" >&2; kill $GIMP; exit 1; }
  sleep 1.5   # let it draw
  xwd -silent -id "$WID" >"$WORK/dialog.xwd"
  xdotool windowfocus --sync "$WID" key Escape   # Cancel: the image stays untouched
  wait $GIMP
  python3 "$HERE/xwd2png.py" "$WORK/dialog.xwd" "$WORK/dialog.png"
  exit 0
fi

OUT=$(realpath -m "${1:-$REPO/docs/gimp-dialog.png}")
"$HERE/provision-gimp3.sh"
WORK=$(mktemp -d /tmp/nst-dialog-shot.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/cfg/interpreters" "$(dirname "$OUT")"
# the plug-in straight from the checkout; `#!/usr/bin/env python3` -> the python3 that has gi
printf '(plug-in-path "${gimp_dir}/plug-ins:${gimp_plug_in_dir}/plug-ins:%s")\n' "$REPO/plugin" >"$WORK/cfg/gimprc"
printf 'python=/usr/bin/python3\npython3=/usr/bin/python3\n:Python:E::py::python3:\n' \
  >"$WORK/cfg/interpreters/pygimp.interp"
IMG="$REPO/../shared/images/golden_gate.jpg"
[ -f "$IMG" ] && IMG=$(realpath "$IMG") || IMG=
NST_GIMP3_BINDS="$WORK" NST_GIMP3_RO_BINDS="${IMG:+$(dirname "$IMG")}" NST_SHOT_IMAGE="$IMG" \
  "$HERE/gimp3-run.sh" sh "$HERE/gimp-dialog-screenshot.sh" --inside "$WORK"
cp "$WORK/dialog.png" "$OUT"   # the repo is read-only inside the GIMP 3 root
echo "wrote $OUT"
