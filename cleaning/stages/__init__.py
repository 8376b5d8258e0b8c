"""Built-in stages; importing this package registers them by name."""

from cleaning.stages import normalize, quality, rules  # noqa: F401
