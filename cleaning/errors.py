"""Errors a user can act on: the CLI prints them as one line and exits 2."""

import errno


class CleaningError(Exception):
    """A problem with the user's input or configuration, reported without a traceback."""


class ConservationError(CleaningError):
    """Documents were lost or invented: in != kept + rejected. Always a bug in a stage."""


NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


def os_error_line(exc: OSError) -> str:
    """One line for an error of the machine; disk full says what to do, since resume then works."""
    if exc.errno in NO_SPACE:
        where = f" ({exc.filename})" if exc.filename else ""
        return (
            f"no space left on the device{where}: free some space and rerun the same command; "
            "finished shards are kept and unfinished ones are redone"
        )
    return os_error_text(exc)


def os_error_text(exc: OSError) -> str:
    """`Permission denied (/data/x.jsonl)`: the machine's message and the file, no class name or errno."""
    return f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
