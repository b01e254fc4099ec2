"""The DuckDB store: one file, versioned migrations, short write transactions, read-only readers."""

from curation.store.store import Store, open_store

__all__ = ["Store", "open_store"]
