"""Ingest: read JSONL, JSON arrays, CSV/TSV, Parquet and Hugging Face datasets into the store."""

from curation.ingest.ingest import FORMATS, IngestOptions, detect_format, ingest_paths
from curation.ingest.mapping import FieldMapping

__all__ = ["FORMATS", "FieldMapping", "IngestOptions", "detect_format", "ingest_paths"]
