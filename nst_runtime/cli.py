"""``nst``: the runtime's command line (filled in by the runtime issue)."""

import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "install-gimp-plugin":
        from nst_runtime import gimp_install

        return gimp_install.main(argv[1:])
    raise SystemExit("nst: the runtime is not built yet")
