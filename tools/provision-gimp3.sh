#!/bin/sh
# Provision GIMP 3 (gimp-console-3.x, Python 3 plug-ins, Xvfb + xdotool for dialog screenshots).
# NST_GIMP_VERSION picks the GIMP: 3.0 (default, GIMP 3.0.4 of Debian trixie) or 3.2 (GIMP 3.2.x
# of Debian sid); see gimp3-common.sh.
#  - a host that is the Debian release shipping that GIMP: apt-get installs the packages that are missing.
#  - any other Debian host (Debian 12 has GIMP 2.10 only): builds a root of that release with
#    debootstrap at $NST_GIMP3_ROOT (3.0, default <repo>/.cache/gimp3-root) or $NST_GIMP32_ROOT
#    (3.2, default <repo>/.cache/gimp3.2-root); run commands in it with tools/gimp3-run.sh.
# Idempotent: a complete root carries a stamp file and is reused at once; a root without the
# stamp (an interrupted build) is removed and built again. Concurrent calls wait on a lock.
# Needs root (apt-get, debootstrap, chroot). About 2-3 minutes the first time, per version.
# Exit codes: 0 ready, 1 failed, 77 cannot work here without root (tests skip on 77).
set -eu
. "$(dirname "$0")/gimp3-common.sh"
PKGS="gimp xvfb xauth x11-apps xdotool"
export DEBIAN_FRONTEND=noninteractive

say() { echo "provision-gimp3: $*" >&2; }

missing_native() {
  for p in $PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

provision_native() {
  miss=$(missing_native | tr '\n' ' ')
  if [ -z "${miss% }" ]; then say "native GIMP 3 already installed"; return; fi
  [ "$(id -u)" = 0 ] || { say "missing packages (install them as root): $miss"; exit 77; }
  say "installing on this host: $miss"
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y --no-install-recommends $miss
}

debian_mirror() {
  m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${m:-http://deb.debian.org/debian}"
}

# Refuse to delete a root that still has something mounted inside (a runner outside its namespace).
assert_nothing_mounted() {
  if awk -v r="$NST_GIMP_ROOT/" 'index($2 "/", r) == 1 {found=1} END {exit !found}' /proc/mounts; then
    say "something is mounted under $NST_GIMP_ROOT; unmount it first"; exit 1
  fi
}

provision_chroot() {
  # entering the root (unshare, chroot) needs root as much as building it does
  [ "$(id -u)" = 0 ] || { say "GIMP $NST_GIMP_VERSION on this host runs in a Debian $NST_GIMP_SUITE root, which needs root"; exit 77; }
  if [ -f "$NST_GIMP_STAMP" ] && [ -x "$NST_GIMP_ROOT/usr/bin/$NST_GIMP_CONSOLE" ]; then
    say "reusing $NST_GIMP_ROOT"; return
  fi
  if [ -e "$NST_GIMP_ROOT" ]; then
    assert_nothing_mounted
    say "removing the incomplete root $NST_GIMP_ROOT"
    rm -rf "$NST_GIMP_ROOT"
  fi
  command -v debootstrap >/dev/null 2>&1 || { apt-get update -q; apt-get install -y debootstrap; }
  mkdir -p "$(dirname "$NST_GIMP_ROOT")"
  mirror=$(debian_mirror)
  say "debootstrap $NST_GIMP_SUITE into $NST_GIMP_ROOT from $mirror"
  debootstrap --variant=minbase "$NST_GIMP_SUITE" "$NST_GIMP_ROOT" "$mirror" >&2
  # a mirror may serve sid's Release file past its Valid-Until date (sid is re-signed often)
  chroot "$NST_GIMP_ROOT" apt-get -o Acquire::Check-Valid-Until=false update -q >&2
  # shellcheck disable=SC2086
  chroot "$NST_GIMP_ROOT" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends $PKGS >&2   # "Can not write log (/dev/pts)" is harmless
  chroot "$NST_GIMP_ROOT" apt-get clean
  [ -x "$NST_GIMP_ROOT/usr/bin/$NST_GIMP_CONSOLE" ] || { say "$NST_GIMP_CONSOLE missing after install"; exit 1; }
  date -u +%Y-%m-%dT%H:%M:%SZ > "$NST_GIMP_STAMP"
  say "GIMP $NST_GIMP_VERSION root ready: $NST_GIMP_ROOT"
}

mode=$(nst_gimp3_mode)
if [ "$mode" = chroot ] && [ "$(id -u)" != 0 ]; then  # before the lock, which may be in a folder of root's
  say "GIMP $NST_GIMP_VERSION on this host runs in a Debian $NST_GIMP_SUITE root, which needs root"; exit 77
fi
mkdir -p "$(dirname "$NST_GIMP_ROOT")"
lock="$(dirname "$NST_GIMP_ROOT")/.$(basename "$NST_GIMP_ROOT").lock"
exec 9>"$lock"
flock 9
if [ "$mode" = native ]; then provision_native; else provision_chroot; fi
