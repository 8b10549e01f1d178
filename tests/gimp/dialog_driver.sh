#!/bin/sh
# Runs where GIMP 3 is (inside tools/gimp3-run.sh): the batch driver in interactive mode under
# Xvfb; waits for the plug-in's dialog, dumps it to $1/dialog.xwd and presses OK (Alt+O).
# With no window manager GIMP keeps the keyboard focus unless the dialog takes it (pitfall 10).
#   usage: dialog_driver.sh WORK_DIR    (env: GIMP3_DIRECTORY, NST_BATCH_SPEC)
set -u
WORK=$1
HERE=$(cd "$(dirname "$0")" && pwd)
export DISPLAY=:79 GSETTINGS_BACKEND=memory
Xvfb "$DISPLAY" -screen 0 1024x768x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
XVFB=$!
trap 'kill $XVFB 2>/dev/null' EXIT
sleep 1
gimp-console-3.0 -i -d -f --batch-interpreter=python-fu-eval -b - --quit <"$HERE/batch_driver.py" &
GIMP=$!
WID=$(timeout 90 xdotool search --sync --name '^Neural Style Transfer$' | head -1)
if [ -z "$WID" ]; then echo "dialog_driver: no dialog appeared" >&2; kill $GIMP; exit 1; fi
sleep 1
xwd -silent -id "$WID" >"$WORK/dialog.xwd"
xdotool windowfocus --sync "$WID" key alt+o
wait $GIMP
