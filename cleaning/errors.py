"""Errors a user can act on: the CLI prints them as one line and exits 2."""


class CleaningError(Exception):
    """A problem with the user's input or configuration, reported without a traceback."""


class ConservationError(CleaningError):
    """Documents were lost or invented: in != kept + rejected. Always a bug in a stage."""
