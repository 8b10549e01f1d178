"""Errors the runtime reports to people: one line each, naming the problem, and the exit codes
every front end (``nst``, its subcommands, the workers) ends with."""

EXIT_OK = 0
EXIT_ERROR = 1  # bad input, an unusable environment, a failed photo of a batch
EXIT_USAGE = 2  # a command line argparse refuses
EXIT_CANCELLED = 130  # Ctrl-C, SIGTERM, the GIMP dialog's Stop (128 + SIGINT, as shells report it)


class NSTError(Exception):
    """Bad input or an unusable environment; ``str()`` is the whole message for the user."""


class Cancelled(Exception):
    """The caller asked the run to stop (Ctrl-C, SIGTERM, GIMP's cancel, a threading.Event)."""


def describe_failure(exc: BaseException) -> str:
    """One line for the user whatever went wrong: ours as is, memory with advice, the rest by type."""
    if isinstance(exc, NSTError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "not enough memory for this size: try a smaller size"
    text = str(exc).strip()
    return f"unexpected {type(exc).__name__}: {text.splitlines()[0] if text else ''}"
