# Shared settings of provision-gimp3.sh and gimp3-run.sh (sourced, not run).
# NST_GIMP3_ROOT  the Debian 13 root used on hosts without GIMP 3 (default <repo>/.cache/gimp3-root)
# NST_GIMP3_MODE  force "native" or "chroot" (default: native when the host has GIMP 3 or is Debian >= 13)
NST_REPO=$(cd "$(dirname "$0")/.." && pwd)
NST_GIMP3_ROOT=${NST_GIMP3_ROOT:-$NST_REPO/.cache/gimp3-root}
NST_GIMP3_STAMP=$NST_GIMP3_ROOT/.nst-gimp3-complete

# Debian 13 (trixie) or later ships GIMP 3 itself; Debian 12 only has 2.10.
nst_gimp3_mode() {
  if [ -n "${NST_GIMP3_MODE:-}" ]; then echo "$NST_GIMP3_MODE"; return; fi
  if command -v gimp-console-3.0 >/dev/null 2>&1; then echo native; return; fi
  ver=$(. /etc/os-release 2>/dev/null && echo "${VERSION_ID:-0}")
  codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  case "$codename" in trixie|forky|sid) echo native; return;; esac
  if [ "${ver%%.*}" -ge 13 ] 2>/dev/null; then echo native; else echo chroot; fi
}
