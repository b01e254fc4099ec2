"""Curation: the DuckDB store, ingest, pipeline steps, review, snapshots and the `curate` CLI.

Importing this package stays cheap: heavy dependencies load inside the functions that need them.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("llm-curate")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
