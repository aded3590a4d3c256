"""Persons, samples, model artifacts and access events in SQLAlchemy, with a FAISS index.

One way in: `Store`. Imports nothing from enroll/, recognize/, gan/ or api/.
"""

from db.access import DoorInfo, DoorNotFoundError, EventNotFoundError, InvalidDoorError
from db.admin import (
    SCOPES,
    InvalidKeyError,
    JobNotFoundError,
    KeyInfo,
    KeyNotFoundError,
    PersonNotFoundError,
    PolicyNotFoundError,
)
from db.artifacts import ArtifactChecksumError, ArtifactError
from db.index import VectorIndex
from db.schema import SchemaOutOfDateError, upgrade
from db.store import (
    ArtifactIn,
    CheckReport,
    DuplicatePersonError,
    SampleIn,
    Store,
)

__all__ = [
    "SCOPES",
    "InvalidKeyError",
    "JobNotFoundError",
    "KeyInfo",
    "KeyNotFoundError",
    "PolicyNotFoundError",
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
