"""The quality classifier: annotations, training with cross-validation, scoring, active learning."""
