#!/bin/sh
# Runs where GIMP 3 is (inside tools/gimp3-run.sh), under Xvfb, with the batch driver.
#   gui_driver.sh cancel WORK_DIR   the full GIMP GUI with the image on screen: once the worker
#                                   ($NST_WORKER_NEEDLE in its command line) iterates, dump the
#                                   screen to WORK_DIR/progress.xwd and click Cancel on the
#                                   progress bar in the status bar; WORK_DIR/cancel.txt gets the
#                                   click time and the time the worker was gone.
#   gui_driver.sh undo WORK_DIR     the full GIMP GUI: when the batch driver has the result
#                                   (WORK_DIR/ready-for-undo), press Ctrl+Z once in the image
#                                   window, then create WORK_DIR/undone.
# No window manager: windows sit at 0,0 and GIMP keeps the keyboard focus unless a window takes
# it (RECIPE pitfall 10). Env: GIMP3_DIRECTORY, NST_BATCH_SPEC, NST_GIMP_GUI (gimp-3.0 or gimp-3.2, set by tools/gimp3-run.sh).
set -u
MODE=$1 WORK=$2
HERE=$(cd "$(dirname "$0")" && pwd)
BATCH="--batch-interpreter=python-fu-eval -b - --quit"
# Xvfb picks a free display and writes its number when it is ready (other GIMP tests may run beside)
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$WORK/display" >"$WORK/xvfb.log" 2>&1 &
XVFB=$!
trap 'kill $XVFB 2>/dev/null' EXIT
for _ in $(seq 300); do [ -s "$WORK/display" ] && break; sleep 0.1; done
[ -s "$WORK/display" ] || { echo "gui_driver: Xvfb did not start" >&2; cat "$WORK/xvfb.log" >&2; exit 1; }
export DISPLAY=":$(cat "$WORK/display")" GSETTINGS_BACKEND=memory
now() { date +%s.%N; }

image_window() { xdotool search --name ' – GIMP$' | head -1; }   # title ends "– GIMP"

if [ "$MODE" = undo ]; then
  # shellcheck disable=SC2086
  "$NST_GIMP_GUI" -n -s -d -f $BATCH <"$HERE/batch_driver.py" &
  GIMP=$!
  for _ in $(seq 3000); do [ -e "$WORK/ready-for-undo" ] && break; sleep 0.1; done
  WID=$(image_window)
  xdotool windowfocus --sync "$WID" key ctrl+z
  sleep 1
  xwd -silent -root >"$WORK/undone.xwd"
  touch "$WORK/undone"
else
  LOG=$WORK/gui.log
  trap 'kill $XVFB 2>/dev/null; cat "$LOG"' EXIT
  # shellcheck disable=SC2086
  "$NST_GIMP_GUI" -n -s -d -f $BATCH <"$HERE/batch_driver.py" >"$LOG" 2>&1 &
  GIMP=$!
  for _ in $(seq 3000); do   # the plug-in logs the worker's first progress event
    grep -q "worker progress:" "$LOG" && break
    sleep 0.1
  done
  # our worker: a child of our plug-in, a child of our GIMP (other GIMPs may be running)
  plugin=$(pgrep -P "$GIMP" -f nst-style-transfer.py | head -1)
  worker=$([ -n "$plugin" ] && pgrep -P "$plugin" -f -- "$NST_WORKER_NEEDLE" | head -1)
  if [ -z "$worker" ]; then echo "gui_driver: no iterating worker" >&2; kill $GIMP; exit 1; fi
  WID=$(image_window)   # its status bar holds the progress bar
  xwd -silent -root >"$WORK/progress.xwd"
  eval "$(xdotool getwindowgeometry --shell "$WID")"
  clicked=$(now)
  xdotool mousemove --window "$WID" $((WIDTH - 282)) $((HEIGHT - 18)) click 1   # "Cancel"
  running() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1")" != Z ]; }
  plugin_gone=
  while running "$worker"; do
    [ -z "$plugin_gone" ] && ! running "$plugin" && plugin_gone=$(now)
    sleep 0.02
  done
  echo "$clicked $(now) ${plugin_gone:-$(now)}" >"$WORK/cancel.txt"
fi
wait $GIMP
