"""The one error type the export step raises for problems a user can fix."""


class ExportError(Exception):
    """A problem with the user's input or environment, worded as a one-line message for them."""
