"""The store: one way in to the database, the artifact files and the vector index, kept in step.

An enrollment commits atomically (person, samples, artifact rows and the version bump in one
transaction; files staged before and published after it; the index updated from the committed
state). `check()` reports any disagreement between the three.
"""

import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db.access import AccessRecords
from db.admin import AdminRecords, PersonNotFoundError
from db.artifacts import ArtifactStore, real_crops_from_bytes
from db.engine import make_engine, make_sessionmaker, sqlite_url
from db.index import VectorIndex
from db.models import (
    AccessEvent,
    EnrollmentJob,
    FaceSample,
    LevelCalibration,
    ModelArtifact,
    Person,
    StoreState,
    utcnow,
)
from db.outbox import WebhookOutbox
from db.schema import require_current
from facegate.errors import FacegateError
from facegate.settings import Settings

# Report keys that carry biometric data; erased from past events when their person is deleted.
BIOMETRIC_REPORT_KEYS = ("face_crop", "face_crop_png", "embedding", "candidates", "faces")


class DuplicatePersonError(FacegateError):
    code = "duplicate_external_id"


@dataclass
class SampleIn:
    """One face to store with a new person."""

    embedding: np.ndarray
    source: str = "real"  # real | synthetic
    quality: dict | None = None
    yaw_deg: float | None = None
    frame_index: int | None = None


@dataclass
class ArtifactIn:
    kind: str  # generator | personal_discriminator
    format: str
    data: bytes


class DataFolderError(FacegateError):
    """The data folder is missing, read-only or full: nothing can be stored there."""

    code = "data_folder_error"


def check_data_folder(data_dir: Path, min_free_bytes: int = 0) -> None:
    """Refuse (DataFolderError) a data folder that is not a writable folder, or that has less
    than `min_free_bytes` free."""
    name = str(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataFolderError(
            f"the data folder {name} cannot be created ({error.strerror})"
        ) from None
    if not data_dir.is_dir():
        raise DataFolderError(f"the data folder {name} is not a folder")
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise DataFolderError(
            f"the data folder {name} is read-only (or not writable by this user): facegate "
            "keeps its database, models and uploads there; mount it read-write or point "
            "FACEGATE_DATA_DIR elsewhere"
        )
    if min_free_bytes:
        free = shutil.disk_usage(data_dir).free
        if free < min_free_bytes:
            raise DataFolderError(
                f"the data folder {name} has {free / 1e6:.0f} MB free; at least "
                f"{min_free_bytes / 1e6:.0f} MB are needed to record access events and enrollments"
            )


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    persons: int = 0
    samples: int = 0
    artifacts: int = 0
    db_version: int = 0

    @property
    def clean(self) -> bool:
        return not self.problems


Fault = Callable[[str], None]  # called with each step's name; tests raise or kill there


def _no_fault(_step: str) -> None:
    pass


class Store(AccessRecords, AdminRecords, WebhookOutbox):
    """Keywords:
    settings: facegate settings (database URL, data folder, index choices).
    url: a database URL that overrides the settings.
    check_schema: refuse to open a database whose schema is not the newest (default True).
    """

    def __init__(self, settings: Settings, url: str | None = None, check_schema: bool = True):
        self.settings = settings
        data_dir = Path(settings.data_dir)
        check_data_folder(data_dir)
        self.url = url or settings.database_url or sqlite_url(data_dir)
        self.engine = make_engine(self.url)
        try:
            if check_schema:
                require_current(self.engine)
        except OperationalError as error:  # the database file cannot be opened or locked
            self.engine.dispose()
            raise DataFolderError(
                f"the database cannot be opened ({error.orig}); check the data folder "
                f"{data_dir.name!r}: it must be readable and writable by this user, with space"
            ) from None
        self.sessions = make_sessionmaker(self.engine)
        self.artifacts = ArtifactStore(data_dir / "artifacts")
        self.index_dir = data_dir / "index"
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self._indexes: dict[str, VectorIndex] = {}  # loaded once per database version
        self.recover()

    def close(self) -> None:
        self.engine.dispose()

    # --- enrollment ---------------------------------------------------------------------------

    def add_person(
        self,
        display_name: str,
        embedder: str,
        embedder_version: str,
        samples: list[SampleIn],
        artifacts: list[ArtifactIn] = (),
        external_id: str | None = None,
        fault: Fault = _no_fault,
    ) -> int:
        """Store a person with their samples and model artifacts; all of it or none of it."""
        if not samples:
            raise FacegateError("a person needs at least one face sample")
        with self.artifacts.stage() as staging:
            fault("stage")
            staged = [(a, staging.put(a.data)) for a in artifacts]
            fault("staged")
            with self.sessions.begin() as session:
                if external_id is not None:
                    self._refuse_duplicate(session, external_id)
                person = Person(display_name=display_name, external_id=external_id)
                session.add(person)
                for s in samples:
                    vector = np.asarray(s.embedding, dtype="<f4")
                    person.samples.append(
                        FaceSample(
                            embedding=vector.tobytes(),
                            dim=vector.size,
                            embedder=embedder,
                            embedder_version=embedder_version,
                            source=s.source,
                            quality=s.quality,
                            yaw_deg=s.yaw_deg,
                            frame_index=s.frame_index,
                        )
                    )
                for a, item in staged:
                    person.artifacts.append(
                        ModelArtifact(
                            kind=a.kind,
                            format=a.format,
                            size_bytes=item.size_bytes,
                            sha256=item.sha256,
                            path=item.path,
                        )
                    )
                fault("rows")
                version = self._bump_version(session)
                session.flush()
                person_id = person.id
                fault("commit")
            staging.committed = True
            fault("committed")
            staging.publish()
        fault("published")
        self._index_update(embedder, version, add={person_id: self._template(samples)})
        fault("indexed")
        return person_id

    @staticmethod
    def _refuse_duplicate(session: Session, external_id: str) -> None:
        existing = session.scalar(select(Person.id).where(Person.external_id == external_id))
        if existing is not None:
            raise DuplicatePersonError(
                f"external id {external_id!r} is already enrolled as person {existing}; "
                "delete that person first to enroll them again"
            )

    @staticmethod
    def _template(samples: list[SampleIn]) -> np.ndarray:
        real = [s.embedding for s in samples if s.source == "real"] or [
            s.embedding for s in samples
        ]
        mean = np.mean(np.stack(real).astype(np.float32), axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    def _bump_version(self, session: Session) -> int:
        # an UPDATE takes the row lock, so concurrent writers serialise on it
        session.execute(
            update(StoreState).where(StoreState.id == 1).values(version=StoreState.version + 1)
        )
        return session.scalar(select(StoreState.version).where(StoreState.id == 1))

    def db_version(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(StoreState.version).where(StoreState.id == 1))

    # --- reading -----------------------------------------------------------------------------

    def person_by_external_id(self, external_id: str) -> Person | None:
        with self.sessions() as session:
            return session.scalars(select(Person).where(Person.external_id == external_id)).first()

    def persons(self, offset: int = 0, limit: int = 100) -> list[tuple[Person, int]]:
        """Persons by id with their sample counts."""
        with self.sessions() as session:
            rows = session.execute(
                select(Person, func.count(FaceSample.id))
                .outerjoin(FaceSample)
                .group_by(Person.id)
                .order_by(Person.id)
                .offset(offset)
                .limit(limit)
            ).all()
        return [(p, n) for p, n in rows]

    def samples(
        self, person_ids: list[int], embedder: str, source: str | None = "real"
    ) -> dict[int, np.ndarray]:
        """Each person's stored embeddings for one embedder, as (n, dim) arrays."""
        query = select(FaceSample.person_id, FaceSample.embedding).where(
            FaceSample.person_id.in_(person_ids), FaceSample.embedder == embedder
        )
        if source is not None:
            query = query.where(FaceSample.source == source)
        out: dict[int, list[np.ndarray]] = {}
        with self.sessions() as session:
            for person_id, blob in session.execute(query.order_by(FaceSample.id)):
                out.setdefault(person_id, []).append(np.frombuffer(blob, dtype="<f4"))
        return {k: np.stack(v) for k, v in out.items()}

    def display_names(self, person_ids: list[int]) -> dict[int, str]:
        with self.sessions() as session:
            return dict(
                session.execute(
                    select(Person.id, Person.display_name).where(Person.id.in_(person_ids))
                ).all()
            )

    # --- deletion and retention ---------------------------------------------------------------

    # --- model artifacts ------------------------------------------------------------------------

    def _load(self, artifact: ModelArtifact) -> bytes:
        if artifact.data is not None:
            return artifact.data
        return self.artifacts.load(artifact.path, artifact.sha256)

    def artifact(self, person_id: int, kind: str) -> bytes:
        """The bytes of a person's newest artifact of `kind`, checksum verified."""
        with self.sessions() as session:
            row = session.scalars(
                select(ModelArtifact)
                .where(ModelArtifact.person_id == person_id, ModelArtifact.kind == kind)
                .order_by(ModelArtifact.id.desc())
            ).first()
            if row is None:
                raise PersonNotFoundError(f"person {person_id} has no stored {kind}")
            return self._load(row)

    def persons_missing_artifacts(self) -> list[int]:
        """Ids of persons one of whose artifact files is not in the artifact store (a stat per
        file, no checksums: `check` does those)."""
        with self.sessions() as session:
            rows = session.execute(
                select(ModelArtifact.person_id, ModelArtifact.path).where(
                    ModelArtifact.person_id.is_not(None), ModelArtifact.path.is_not(None)
                )
            ).all()
        return sorted({pid for pid, path in rows if not self.artifacts.final_path(path).is_file()})

    def persons_with(self, kind: str, exclude: int | None = None, limit: int = 100) -> list[int]:
        """Ids of persons holding an artifact of `kind`, newest first."""
        query = select(ModelArtifact.person_id).where(
            ModelArtifact.kind == kind, ModelArtifact.person_id.is_not(None)
        )
        if exclude is not None:
            query = query.where(ModelArtifact.person_id != exclude)
        with self.sessions() as session:
            ids = session.scalars(query.order_by(ModelArtifact.id.desc())).all()
        return list(dict.fromkeys(ids))[:limit]

    def real_crops(self, exclude: int | None = None, max_persons: int = 64) -> np.ndarray:
        """The stored real 64 px crops of up to `max_persons` enrolled persons (newest first),
        as one (N, 64, 64, 3) uint8 array."""
        crops = [np.zeros((0, 64, 64, 3), np.uint8)]
        for person_id in self.persons_with("real_crops", exclude, max_persons):
            crops.append(real_crops_from_bytes(self.artifact(person_id, "real_crops"))[0])
        return np.concatenate(crops)

    def holding(self, kind: str, person_ids: list[int]) -> set[int]:
        """Those of `person_ids` that hold an artifact of `kind`."""
        if not person_ids:
            return set()
        with self.sessions() as session:
            return set(
                session.scalars(
                    select(ModelArtifact.person_id).where(
                        ModelArtifact.kind == kind, ModelArtifact.person_id.in_(person_ids)
                    )
                )
            )

    def general_discriminator(self) -> bytes | None:
        """The current general discriminator's bytes, or None before the first is trained."""
        with self.sessions() as session:
            row = session.scalars(
                select(ModelArtifact).where(ModelArtifact.kind == "general_discriminator")
            ).first()
            return None if row is None else self._load(row)

    def models_stamp(self, embedder: str) -> tuple:
        """Changes whenever the general discriminator or the level table for `embedder` is
        replaced: a long-running reader (the API) compares it to know when to reload them."""
        with self.sessions() as session:
            general = session.scalar(
                select(ModelArtifact.sha256).where(ModelArtifact.kind == "general_discriminator")
            )
            levels = session.scalar(
                select(func.max(LevelCalibration.id)).where(LevelCalibration.embedder == embedder)
            )
        return general, levels

    def set_general_discriminator(self, data: bytes, format: str) -> None:
        """Replace the general discriminator: the new one is published and the old one removed
        in one transaction, so readers see one or the other, never none."""
        with self.artifacts.stage() as staging:
            item = staging.put(data)
            with self.sessions.begin() as session:
                old = session.scalars(
                    select(ModelArtifact).where(ModelArtifact.kind == "general_discriminator")
                ).all()
                paths = {a.sha256: a.path for a in old if a.path and a.sha256 != item.sha256}
                for a in old:
                    session.delete(a)
                session.flush()
                session.add(
                    ModelArtifact(
                        person_id=None,
                        kind="general_discriminator",
                        format=format,
                        size_bytes=item.size_bytes,
                        sha256=item.sha256,
                        path=item.path,
                    )
                )
                # no version bump: the version tracks what the vector index reflects
            staging.committed = True
            staging.publish()
        self._delete_unreferenced(paths)

    def delete_person(self, person_id: int) -> None:
        """Remove the person's samples, artifacts and index entry; past events keep time, door
        and decision but lose the person link, the query image and the report's face data."""
        with self.sessions.begin() as session:
            person = session.get(Person, person_id)
            if person is None:
                raise PersonNotFoundError(f"no person with id {person_id}")
            embedders = set(
                session.scalars(
                    select(FaceSample.embedder).where(FaceSample.person_id == person_id)
                )
            )
            paths = {a.sha256: a.path for a in person.artifacts if a.path}
            for event in session.scalars(
                select(AccessEvent).where(AccessEvent.person_id == person_id)
            ):
                _erase_biometrics(event)
            # the enrollment report's sample grid shows synthesized faces of the person
            session.execute(
                update(EnrollmentJob)
                .where(EnrollmentJob.person_id == person_id)
                .values(sample_grid=None, metrics=None)
            )
            session.delete(person)
            version = self._bump_version(session)
        self._delete_unreferenced(paths)
        for embedder in embedders:
            self._index_update(embedder, version, remove=[person_id])

    def _delete_unreferenced(self, paths: dict[str, str]) -> None:
        if not paths:
            return
        with self.sessions() as session:
            still = set(
                session.scalars(select(ModelArtifact.sha256).where(ModelArtifact.sha256.in_(paths)))
            )
        for sha, path in paths.items():
            if sha not in still:
                self.artifacts.delete(path)

    # --- uploaded clips ---------------------------------------------------------------------

    @property
    def uploads_dir(self) -> Path:
        return Path(self.settings.data_dir) / "uploads"

    def stale_uploads(self, min_age_s: float = 3600.0) -> list[Path]:
        """Uploaded clips no unfinished job will read: `<job id>.bin` of a job that ended (or is
        unknown), and `upload-*.bin` (a request still writing, or killed) older than min_age_s."""
        if not self.uploads_dir.is_dir():
            return []
        with self.sessions() as session:
            alive = set(
                session.scalars(
                    select(EnrollmentJob.id).where(EnrollmentJob.status.in_(("queued", "running")))
                )
            )
        now = time.time()
        stale = []
        for path in sorted(self.uploads_dir.iterdir()):
            if path.stem in alive:
                continue
            if path.name.startswith("upload-"):
                try:
                    if now - path.stat().st_mtime < min_age_s:
                        continue
                except FileNotFoundError:
                    continue
            stale.append(path)
        return stale

    def remove_stale_uploads(self, min_age_s: float = 3600.0) -> int:
        removed = 0
        for path in self.stale_uploads(min_age_s):
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    def purge(self, now: datetime | None = None) -> dict[str, int]:
        """Apply the retention settings: old events go, old query images are dropped; uploaded
        clips no job will read are removed."""
        now = now or utcnow()
        out = {"events_deleted": 0, "query_images_dropped": 0}
        out["uploads_removed"] = self.remove_stale_uploads()
        with self.sessions.begin() as session:
            if self.settings.event_retention_days is not None:
                cutoff = now - timedelta(days=self.settings.event_retention_days)
                out["events_deleted"] = session.execute(
                    delete(AccessEvent).where(AccessEvent.created_at < cutoff)
                ).rowcount
            if self.settings.query_image_retention_days is not None:
                cutoff = now - timedelta(days=self.settings.query_image_retention_days)
                out["query_images_dropped"] = session.execute(
                    update(AccessEvent)
                    .where(AccessEvent.created_at < cutoff, AccessEvent.query_image.is_not(None))
                    .values(query_image=None)
                ).rowcount
        return out

    # --- the vector index ---------------------------------------------------------------------

    @contextmanager
    def _index_lock(self, embedder: str) -> Iterator[None]:
        fd = os.open(self.index_dir / f"{embedder}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _index_update(
        self,
        embedder: str,
        version: int,
        add: dict[int, np.ndarray] | None = None,
        remove: list[int] = (),
    ) -> None:
        """Apply one committed change to the persisted index; if the file is not exactly one
        version behind, rebuild it from the database instead."""
        with self._index_lock(embedder):
            index = VectorIndex.load(self.index_dir, embedder)
            if index is None or index.meta.db_version != version - 1:
                self._rebuild_locked(embedder)
                return
            if remove:
                index.remove(np.array(remove))
            if add:
                index.add(np.array(list(add)), np.stack(list(add.values())))
            if index.meta.needs_rebuild(self.settings.index_approximate_above):
                self._rebuild_locked(embedder)
                return
            index.meta.db_version = version
            index.save(self.index_dir)

    def templates(self, embedder: str) -> tuple[int, np.ndarray, np.ndarray]:
        """(db version, person ids, unit templates) read from one consistent database state."""
        while True:
            with self.sessions() as session:
                before = session.scalar(select(StoreState.version).where(StoreState.id == 1))
                rows = session.execute(
                    select(FaceSample.person_id, FaceSample.source, FaceSample.embedding)
                    .join(Person)
                    .where(FaceSample.embedder == embedder, Person.status == "active")
                    .order_by(FaceSample.person_id, FaceSample.id)
                ).all()
                after = session.scalar(select(StoreState.version).where(StoreState.id == 1))
            if before == after:
                break
        by_person: dict[int, list[SampleIn]] = {}
        for person_id, source, blob in rows:
            by_person.setdefault(person_id, []).append(
                SampleIn(np.frombuffer(blob, dtype="<f4"), source)
            )
        ids = np.array(list(by_person), dtype=np.int64)
        vectors = (
            np.stack([self._template(s) for s in by_person.values()])
            if by_person
            else np.zeros((0, 0), np.float32)
        )
        return after, ids, vectors

    def _rebuild_locked(self, embedder: str) -> VectorIndex:
        version, ids, vectors = self.templates(embedder)
        dim = vectors.shape[1] if len(ids) else self._embedder_dim(embedder)
        index = VectorIndex.build(
            embedder,
            dim,
            ids,
            vectors,
            version,
            self.settings.index_approximate_above,
            self.settings.index_nprobe,
        )
        index.save(self.index_dir)
        return index

    def _embedder_dim(self, embedder: str) -> int:
        with self.sessions() as session:
            dim = session.scalar(
                select(FaceSample.dim).where(FaceSample.embedder == embedder).limit(1)
            )
        return dim or {"dlib": 128, "facenet": 512}.get(embedder, 128)

    def rebuild_index(self, embedder: str) -> VectorIndex:
        with self._index_lock(embedder):
            return self._rebuild_locked(embedder)

    def index(self, embedder: str) -> VectorIndex:
        """The index for queries: kept in memory while the database version stands still, else
        loaded from its file, or rebuilt when that is missing or behind the database."""
        version = self.db_version()
        cached = self._indexes.get(embedder)
        if cached is not None and cached.meta.db_version == version:
            return cached
        with self._index_lock(embedder):
            index = VectorIndex.load(self.index_dir, embedder)
            if index is None or index.meta.db_version != version:
                index = self._rebuild_locked(embedder)
        self._indexes[embedder] = index
        return index

    # --- recovery and consistency -------------------------------------------------------------

    def recover(self) -> dict[str, int]:
        """After a crash: publish staged files the database committed, remove the rest."""
        with self.sessions() as session:
            referenced = set(
                session.scalars(select(ModelArtifact.sha256).where(ModelArtifact.path.is_not(None)))
            )
            embedders = set(session.scalars(select(FaceSample.embedder).distinct()))
        out = self.artifacts.recover(referenced)
        # an index left behind by a crash between commit and index update is rebuilt now
        out["indexes_rebuilt"] = 0
        version = self.db_version()
        for embedder in embedders | self._index_files():
            with self._index_lock(embedder):
                index = VectorIndex.load(self.index_dir, embedder)
                if index is None or index.meta.db_version != version:
                    self._rebuild_locked(embedder)
                    out["indexes_rebuilt"] += 1
        return out

    def check(self, verify_checksums: bool = True) -> CheckReport:
        """Every disagreement between database, artifact files and index, in words."""
        report = CheckReport()
        with self.sessions() as session:
            report.db_version = session.scalar(select(StoreState.version).where(StoreState.id == 1))
            report.persons = session.scalar(select(func.count(Person.id)))
            report.samples = session.scalar(select(func.count(FaceSample.id)))
            rows = session.execute(
                select(ModelArtifact.id, ModelArtifact.path, ModelArtifact.sha256)
            ).all()
            embedders = set(session.scalars(select(FaceSample.embedder).distinct()))
            orphan_samples = session.scalar(
                select(func.count(FaceSample.id)).where(
                    ~FaceSample.person_id.in_(select(Person.id))
                )
            )
        report.artifacts = len(rows)
        if orphan_samples:
            report.problems.append(f"{orphan_samples} face samples belong to no person")
        referenced = set()
        for artifact_id, path, sha in rows:
            if path is None:
                continue
            referenced.add(path)
            if not self.artifacts.final_path(path).is_file():
                report.problems.append(
                    f"artifact {artifact_id} ({path}) is missing from the artifact store"
                )
            elif verify_checksums:
                try:
                    self.artifacts.load(path, sha)
                except FacegateError as exc:
                    report.problems.append(exc.message)
        for path in sorted(set(self.artifacts.files()) - referenced):
            report.problems.append(
                f"artifact file {path} is referenced by no database row (orphan)"
            )
        for name in self.artifacts.pending():
            report.problems.append(f"staging folder {name} is left from an interrupted enrollment")
        stale = self.stale_uploads()
        if stale:
            names = ", ".join(p.name for p in stale[:5]) + (" ..." if len(stale) > 5 else "")
            report.problems.append(
                f"{len(stale)} uploaded clip(s) in uploads/ that no job will read ({names}): "
                "`facegate db purge` removes them"
            )
        for embedder in sorted(embedders | self._index_files()):
            index = VectorIndex.load(self.index_dir, embedder)
            version, ids, vectors = self.templates(embedder)
            if index is None:
                report.problems.append(
                    f"the {embedder} index is missing or unreadable (it is rebuilt on use)"
                )
                continue
            if index.meta.db_version != version:
                report.problems.append(
                    f"the {embedder} index reflects database version {index.meta.db_version}, "
                    f"the database is at {version} (stale; it is rebuilt on use)"
                )
                continue
            stored = index.vectors_by_id()
            if set(stored) != set(ids.tolist()):
                missing, extra = set(ids.tolist()) - set(stored), set(stored) - set(ids.tolist())
                report.problems.append(
                    f"the {embedder} index lacks persons {sorted(missing)[:10]} and has unknown {sorted(extra)[:10]}"
                )
                continue
            for person_id, vector in zip(ids.tolist(), vectors, strict=True):
                if not np.allclose(stored[person_id], vector, atol=1e-5):
                    report.problems.append(
                        f"the {embedder} index template of person {person_id} differs"
                    )
                    break
        return report

    def _index_files(self) -> set[str]:
        return {p.stem for p in self.index_dir.glob("*.json")}


def _erase_biometrics(event: AccessEvent) -> None:
    event.person_id = None
    event.query_image = None
    if event.report:
        event.report = {k: v for k, v in event.report.items() if k not in BIOMETRIC_REPORT_KEYS}
    event.biometrics_erased = True
