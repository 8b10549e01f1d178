# Shared settings of provision-gimp3.sh and gimp3-run.sh (sourced, not run).
# NST_GIMP_VERSION  which GIMP 3: "3.0" (default; Debian 13 "trixie" ships 3.0.4) or "3.2" (Debian sid
#                   ships 3.2.x, the version of Flathub, Fedora, Arch and Windows)
# NST_GIMP3_ROOT    the Debian trixie root for GIMP 3.0 on hosts without it (default <repo>/.cache/gimp3-root)
# NST_GIMP32_ROOT   the Debian sid root for GIMP 3.2 on hosts without it (default <repo>/.cache/gimp3.2-root)
# NST_GIMP3_MODE    force "native" or "chroot" (default: native when the host has that GIMP's
#                   gimp-console-3.x or is the Debian release that ships it)
# Sets NST_GIMP_SUITE (the Debian suite holding that GIMP), NST_GIMP_CONSOLE / NST_GIMP_GUI (its
# binaries), NST_GIMP_ROOT and NST_GIMP_STAMP (the root for that version and its completeness stamp).
NST_REPO=$(cd "$(dirname "$0")/.." && pwd)
NST_GIMP_VERSION=${NST_GIMP_VERSION:-3.0}
case "$NST_GIMP_VERSION" in
  3.0) NST_GIMP_SUITE=trixie NST_GIMP_ROOT=${NST_GIMP3_ROOT:-$NST_REPO/.cache/gimp3-root} ;;
  3.2) NST_GIMP_SUITE=sid NST_GIMP_ROOT=${NST_GIMP32_ROOT:-$NST_REPO/.cache/gimp3.2-root} ;;
  *) echo "NST_GIMP_VERSION must be 3.0 or 3.2, not '$NST_GIMP_VERSION'" >&2; exit 2 ;;
esac
NST_GIMP_CONSOLE=gimp-console-$NST_GIMP_VERSION
NST_GIMP_GUI=gimp-$NST_GIMP_VERSION
NST_GIMP_STAMP=$NST_GIMP_ROOT/.nst-gimp3-complete

# The host runs this GIMP itself when it has the binary, or when it is the Debian release that
# ships it (trixie: 3.0; forky and sid: 3.2); otherwise it runs in a root of that release.
nst_gimp3_mode() {
  if [ -n "${NST_GIMP3_MODE:-}" ]; then echo "$NST_GIMP3_MODE"; return; fi
  if command -v "$NST_GIMP_CONSOLE" >/dev/null 2>&1; then echo native; return; fi
  codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  case "$NST_GIMP_VERSION:$codename" in
    3.0:trixie | 3.2:forky | 3.2:sid) echo native ;;
    *) echo chroot ;;
  esac
}
