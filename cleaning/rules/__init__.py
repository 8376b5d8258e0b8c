"""Japanese rule-based cleaning: rule data from `rules/`, line classification, document metrics."""
