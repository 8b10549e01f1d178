#!/bin/sh
# Screenshot of the live dialog mid-run (the preview shows the painting forming), saved as
# docs/gimp-dialog-$NST_GIMP_VERSION.png (default GIMP 3.2: docs/gimp-dialog-3.2.png) for
# docs/gimp-plugin.md.
# It runs the GUI test that takes it (tests/gimp/test_live_dialog.py: real GIMP 3 under Xvfb,
# the real worker, a 128-px run of golden_gate.jpg in the style of starry_night.jpg from
# ../shared/images) on that GIMP version only and keeps that test's second screenshot. Needs
# that GIMP (tools/provision-gimp3.sh, run by the test) and root for the chroot.
#   usage: [NST_GIMP_VERSION=3.0] tools/gimp-dialog-screenshot.sh [OUT.png]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
VERSION=${NST_GIMP_VERSION:-3.2}
OUT=$(realpath -m "${1:-$REPO/docs/gimp-dialog-$VERSION.png}")
PY=${PYTHON:-$REPO/.venv/bin/python}
cd "$REPO"
NST_GIMP_VERSIONS="$VERSION" NST_DIALOG_SHOT="$OUT" "$PY" -m pytest -q tests/gimp/test_live_dialog.py -k preview_changes
echo "wrote $OUT"
