"""``nst``: the runtime's command line (filled in by the runtime issue)."""


def main(argv=None) -> int:
    raise SystemExit("nst: the runtime is not built yet")
