"""Built-in stages; importing this package registers them by name."""

from cleaning.stages import balance, dedup, genres, normalize, quality, rules, tokenize  # noqa: F401
