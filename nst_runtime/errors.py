"""Errors the runtime reports to people: one line each, naming the problem."""


class NSTError(Exception):
    """Bad input or an unusable environment; ``str()`` is the whole message for the user."""


class Cancelled(Exception):
    """The caller asked the run to stop (Ctrl-C, SIGTERM, GIMP's cancel, a threading.Event)."""
