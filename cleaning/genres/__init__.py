"""Genre clustering: fastText document embeddings, k-means, per-cluster weights."""
