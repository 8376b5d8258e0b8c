"""Japanese pretraining-corpus cleaning: stages over Parquet shards, run in parallel with Ray."""

__version__ = "0.1.0"
