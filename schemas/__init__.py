"""Shared shapes: pydantic models and documented table schemas.

Depends on nothing else in this repository; curation, training and serving all import from here.
"""

from schemas.sample import Message, Role, Sample, SampleShape, split_reasoning
from schemas.batch import Batch, BatchStatus, IngestFileReport, QuarantineRecord
from schemas.tables import TABLES, VIEWS, Column, Table

__all__ = [
    "Batch",
    "BatchStatus",
    "Column",
    "IngestFileReport",
    "Message",
    "QuarantineRecord",
    "Role",
    "Sample",
    "SampleShape",
    "TABLES",
    "Table",
    "VIEWS",
    "split_reasoning",
]
