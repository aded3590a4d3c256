"""Persons, samples, model artifacts and access events in SQLAlchemy, with a FAISS index.

One way in: `Store`. Imports nothing from enroll/, recognize/, gan/ or api/.
"""

from db.access import DoorInfo, DoorNotFoundError, EventNotFoundError, InvalidDoorError
from db.artifacts import ArtifactChecksumError, ArtifactError
from db.index import VectorIndex
from db.schema import SchemaOutOfDateError, upgrade
from db.store import (
    ArtifactIn,
    CheckReport,
    DuplicatePersonError,
    PersonNotFoundError,
    SampleIn,
    Store,
)

__all__ = [
    "ArtifactChecksumError",
    "ArtifactError",
    "ArtifactIn",
    "CheckReport",
    "DoorInfo",
    "DoorNotFoundError",
    "EventNotFoundError",
    "InvalidDoorError",
    "DuplicatePersonError",
    "PersonNotFoundError",
    "SampleIn",
    "SchemaOutOfDateError",
    "Store",
    "VectorIndex",
    "upgrade",
]
