"""Built-in stages; importing this package registers them by name."""

from cleaning.stages import normalize, rules  # noqa: F401
