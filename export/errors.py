"""The one error type the export step raises for problems a user can fix."""


class ExportError(Exception):
    """A problem with the user's input or environment, worded as a one-line message for them."""


def first_line(exc: object) -> str:
    """The first line of an exception's text, short enough for a one-line error message."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
