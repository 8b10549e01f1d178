#!/bin/sh
# Run a command where GIMP 3 lives: directly on a host that has it, otherwise inside the Debian
# root made by provision-gimp3.sh for $NST_GIMP_VERSION (3.0: trixie, 3.2: sid; see
# gimp3-common.sh), in a private mount namespace (every mount vanishes with the command) with
# these host dirs bind-mounted at the same path:
#   - the repo (read-only) and $NST_CACHE_DIR (read-write, created) when set,
#   - the Python env of $NST_GIMP3_PYTHON (default $NST_PYTHON): sys.prefix, sys.base_prefix and
#     the source dir of its nst_runtime (editable installs), read-only,
#   - NST_GIMP3_BINDS / NST_GIMP3_RO_BINDS: colon-separated extra dirs, read-write / read-only,
# and /proc mounted (torch and onnxruntime read it). PATH becomes a system PATH so that
# `#!/usr/bin/env python3` plug-ins get the root's python3, which has gi.
# A Python that lives in system dirs (a venv made from /usr/bin/python3) cannot be bound at the
# same path without hiding the root's own /usr: then the host's / is bound at /host and, unless
# NST_PYTHON is set, NST_PYTHON names a wrapper that runs that Python via `chroot /host`.
# The command sees NST_GIMP_CONSOLE and NST_GIMP_GUI, that version's binaries (gimp-console-3.x, gimp-3.x).
#   usage: [NST_GIMP_VERSION=3.2] tools/gimp3-run.sh COMMAND [ARG...]
set -eu
. "$(dirname "$0")/gimp3-common.sh"
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
export NST_GIMP_VERSION NST_GIMP_CONSOLE NST_GIMP_GUI
if [ "$(nst_gimp3_mode)" = native ]; then exec "$@"; fi
[ -f "$NST_GIMP_STAMP" ] || {
  echo "gimp3-run: no GIMP $NST_GIMP_VERSION root at $NST_GIMP_ROOT; run NST_GIMP_VERSION=$NST_GIMP_VERSION tools/provision-gimp3.sh" >&2
  exit 1
}

# Dirs a Python interpreter needs, printed one per line (run from / so the cwd shadows nothing).
python_dirs() {
  (cd / && "$1" -c '
import importlib.util, os, sys
print(sys.prefix); print(sys.base_prefix)
spec = importlib.util.find_spec("nst_runtime")
if spec and spec.origin:
    print(os.path.dirname(os.path.dirname(os.path.realpath(spec.origin))))
') 2>/dev/null || true
}

ro=$NST_REPO
py=${NST_GIMP3_PYTHON:-${NST_PYTHON:-}}
host_python=
if [ -n "$py" ]; then
  for d in $(python_dirs "$py"); do
    case "$d" in
      /usr | /usr/* | /bin | /bin/* | /sbin | /sbin/* | /lib | /lib/* | /lib64 | /lib64/* | /etc | /etc/* | /var | /var/*)
        host_python=$py ;;
      *) ro="$ro:$d" ;;
    esac
  done
fi
ro="$ro:${NST_GIMP3_RO_BINDS:-}"
rw=${NST_GIMP3_BINDS:-}
if [ -n "${NST_CACHE_DIR:-}" ]; then mkdir -p "$NST_CACHE_DIR"; rw="$rw:$NST_CACHE_DIR"; fi

# "rw DIR" / "ro DIR" lines, parents before the dirs inside them (a read-write cache inside the
# read-only repo is mounted on top of it), each dir once (read-write wins).
plan=$( { echo "$rw" | tr ':' '\n' | sed -n 's|^\(/.*[^/]\)/*$|rw \1|p'
          echo "$ro" | tr ':' '\n' | sed -n 's|^\(/.*[^/]\)/*$|ro \1|p'; } |
        awk '{ print length($2), $0 }' | sort -n -s | cut -d' ' -f2- | awk '!seen[$2]++')

export NST_GIMP_ROOT NST_GIMP3_PLAN="$plan" NST_GIMP3_HOST_PYTHON="$host_python"
exec unshare --mount --propagation private sh -eu -c '
R=$NST_GIMP_ROOT
echo "$NST_GIMP3_PLAN" | while read -r mode dir; do
  [ -n "$dir" ] && [ -d "$dir" ] || continue
  mkdir -p "$R$dir"
  mount --bind "$dir" "$R$dir"
  if [ "$mode" = ro ]; then mount -o remount,bind,ro "$R$dir"; fi
done
mount -t proc proc "$R/proc"
if [ -n "$NST_GIMP3_HOST_PYTHON" ]; then
  mkdir -p "$R/host"
  mount --rbind / "$R/host"
  mkdir -p "$R/run/nst-host"
  mount -t tmpfs -o size=1m tmpfs "$R/run/nst-host"   # private to this command, like the mounts
  wrapper=/run/nst-host/python
  printf "#!/bin/sh\n# written by tools/gimp3-run.sh: the host Python, run on the host root\n" >"$R$wrapper"
  printf "exec chroot /host /usr/bin/env --chdir=/ \"%s\" \"\$@\"\n" "$NST_GIMP3_HOST_PYTHON" >>"$R$wrapper"
  chmod +x "$R$wrapper"
  export NST_PYTHON="${NST_PYTHON:-$wrapper}"
fi
unset NST_GIMP3_PLAN NST_GIMP3_HOST_PYTHON
exec chroot "$R" env HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
' sh "$@"
