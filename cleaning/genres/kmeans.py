"""Fit genre centroids on a sample of document vectors; assign every document to its nearest one.

Clusters are numbered by size in the fit sample (0 = largest) so ids mean something to a reader,
and optional coarse domains group the fine centroids (k-means over centroids, weighted by size),
so a 10,000-cluster corpus can be read and split as ~100 domains.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass
class Fit:
    centroids: np.ndarray  # k × dim, float32
    domain_of: np.ndarray  # k, int32: the domain of each cluster (all 0 without domains)
    sizes: np.ndarray  # k: fit-sample documents per cluster
    inertia: float
    seconds: float = 0.0


EXACT_LIMIT = 50_000_000  # documents × k up to which full k-means (k-means++, Lloyd) is affordable


def fit(vectors: np.ndarray, k: int, domains: int, seed: int, batch_size: int = 4096) -> Fit:
    """k-means on `vectors` (rows L2-normalised); k is capped at the number of vectors.

    Full k-means when documents × k is small (better and steadier: +0.04 purity on livedoor at
    20k × 50), MiniBatchKMeans beyond, where full k-means would take hours.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans

    k = max(1, min(k, len(vectors)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on tiny samples is expected and harmless
        if len(vectors) * k <= EXACT_LIMIT:
            model = KMeans(n_clusters=k, random_state=seed, n_init=3).fit(vectors)
        else:
            # k-means++ seeding costs init_size × k × dim per start: one start beyond 1,000 clusters
            model = MiniBatchKMeans(
                n_clusters=k,
                random_state=seed,
                batch_size=max(batch_size, 2 * k),
                n_init=3 if k <= 1000 else 1,
                max_no_improvement=20,
            ).fit(vectors)
    labels = model.labels_
    sizes = np.bincount(labels, minlength=k)
    order = np.lexsort((np.arange(k), -sizes))  # largest first, ties by index
    centroids = model.cluster_centers_[order].astype(np.float32)
    sizes = sizes[order]
    domain_of = np.zeros(k, dtype=np.int32)
    if domains > 1 and k > domains:
        unit = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coarse = KMeans(n_clusters=domains, random_state=seed, n_init=10).fit(unit, sample_weight=sizes + 1)
        weight = np.bincount(coarse.labels_, weights=sizes, minlength=domains)
        rank = np.empty(domains, dtype=np.int32)
        rank[np.lexsort((np.arange(domains), -weight))] = np.arange(domains)
        domain_of = rank[coarse.labels_].astype(np.int32)
    return Fit(centroids, domain_of, sizes, float(model.inertia_))


def assign(vectors: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid (Euclidean, as k-means) and the cosine similarity to it, per row."""
    dots = vectors @ centroids.T
    distance = (centroids * centroids).sum(axis=1)[None, :] - 2 * dots
    labels = distance.argmin(axis=1).astype(np.int32)
    norms = np.maximum(np.linalg.norm(centroids, axis=1), 1e-12)
    sims = dots[np.arange(len(vectors)), labels] / norms[labels]
    return labels, sims.astype(np.float32)
