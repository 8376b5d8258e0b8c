"""Corpus-wide deduplication: exact hashes, MinHash-LSH candidates, connected components."""
