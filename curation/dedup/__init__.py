"""Near-duplicate (MinHash LSH) and semantic dedup, and decontamination against evaluation sets."""

from __future__ import annotations

from curation.dedup.minhash import minhash_clusters

__all__ = ["minhash_clusters"]
