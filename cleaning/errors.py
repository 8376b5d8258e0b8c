"""Errors a user can act on: the CLI prints them as one line and exits 2."""

import errno


class CleaningError(Exception):
    """A problem with the user's input or configuration, reported without a traceback."""


class ConservationError(CleaningError):
    """Documents were lost or invented: in != kept + rejected. Always a bug in a stage."""


NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


def os_error_line(exc: OSError) -> str:
    """One line for an error of the machine; disk full says what to do, since resume then works."""
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in NO_SPACE:
        return (
            f"no space left on the device{where}: free some space and rerun the same command; "
            "finished shards are kept and unfinished ones are redone"
        )
    return f"{exc.strerror or exc}{where}"
