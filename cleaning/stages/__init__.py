"""Built-in stages; importing this package registers them by name."""

from cleaning.stages import balance, genres, normalize, quality, rules  # noqa: F401
