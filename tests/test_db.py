"""The store on SQLite and on a real PostgreSQL server: round trips, atomic enrollment, crash
recovery, index consistency, deletion without biometric trace, concurrent writers, retention."""

import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from db import (
    ArtifactChecksumError,
    PersonNotFoundError,
    SchemaOutOfDateError,
    Store,
    upgrade,
)
from db.engine import make_engine
from db.models import (
    AccessEvent,
    AccessPolicy,
    ApiKey,
    Door,
    EnrollmentJob,
    FaceSample,
    ModelArtifact,
    Person,
    PersonGroup,
)
from facegate.settings import Settings
from tests.db_support import postgres_database
from tests.db_writer import person

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'facegate.db'}"
    else:
        yield from postgres_database()


@pytest.fixture
def store_settings(tmp_path):
    return Settings(_env_file=None, data_dir=tmp_path / "data")


@pytest.fixture
def store(db_url, store_settings):
    upgrade(make_engine(db_url))
    s = Store(store_settings, url=db_url)
    yield s
    s.close()


def counts(store: Store) -> dict[str, int]:
    with store.sessions() as session:
        return {
            "persons": session.scalar(select(func.count(Person.id))),
            "samples": session.scalar(select(func.count(FaceSample.id))),
            "artifacts": session.scalar(select(func.count(ModelArtifact.id))),
        }


def test_a_database_without_the_schema_is_refused_with_the_command_to_run(db_url, store_settings):
    with pytest.raises(SchemaOutOfDateError, match="run `facegate db upgrade`"):
        Store(store_settings, url=db_url)
    upgrade(make_engine(db_url))
    Store(store_settings, url=db_url).close()


def test_every_model_round_trips(store):
    now = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
    vector = np.linspace(-1, 1, 128, dtype=np.float32)
    with store.sessions.begin() as session:
        door = Door(
            name="lobby", description="main entrance", required_level=8, require_liveness=True
        )
        group = PersonGroup(name="staff")
        p = Person(display_name="Ada", external_id="E-1", status="active", groups=[group])
        p.samples.append(
            FaceSample(
                embedding=vector.tobytes(),
                dim=128,
                embedder="dlib",
                embedder_version="v1",
                source="synthetic",
                quality={"sharpness": 120.5},
                yaw_deg=-31.5,
                frame_index=42,
            )
        )
        p.artifacts.append(
            ModelArtifact(
                kind="personal_discriminator",
                format="torch-fp16",
                size_bytes=3,
                sha256="ab" * 32,
                data=b"xyz",
            )
        )
        session.add_all([door, p])
        session.flush()
        session.add_all(
            [
                EnrollmentJob(
                    id="job-1",
                    person_id=p.id,
                    display_name="Ada",
                    source="clip.mp4",
                    status="succeeded",
                    progress=1.0,
                    metrics={"kept": 40},
                ),
                ApiKey(
                    name="door key",
                    prefix="fg_ab12",
                    key_hash="cd" * 32,
                    scopes=["access"],
                    door_id=door.id,
                ),
                AccessPolicy(
                    door_id=door.id,
                    group_id=group.id,
                    weekdays="01234",
                    start_time=time(7),
                    end_time=time(19),
                ),
                AccessEvent(
                    created_at=now,
                    door_id=door.id,
                    decision="grant",
                    person_id=p.id,
                    probability=0.9993,
                    level=8,
                    report={"version": 1},
                    latency_ms={"total": 181.0},
                    query_image=b"\x89PNG",
                ),
            ]
        )
    with store.sessions() as session:
        p = session.scalars(select(Person)).one()
        assert (p.display_name, p.external_id, p.status, [g.name for g in p.groups]) == (
            "Ada",
            "E-1",
            "active",
            ["staff"],
        )
        sample = p.samples[0]
        np.testing.assert_array_equal(np.frombuffer(sample.embedding, dtype="<f4"), vector)
        assert (sample.source, sample.quality, sample.yaw_deg, sample.frame_index) == (
            "synthetic",
            {"sharpness": 120.5},
            -31.5,
            42,
        )
        assert p.artifacts[0].data == b"xyz" and p.artifacts[0].sha256 == "ab" * 32
        assert session.get(EnrollmentJob, "job-1").metrics == {"kept": 40}
        door = session.scalars(select(Door)).one()
        assert (door.required_level, door.require_liveness) == (8, True)
        key = session.scalars(select(ApiKey)).one()
        assert key.scopes == ["access"] and key.door_id == door.id and key.revoked_at is None
        policy = session.scalars(select(AccessPolicy)).one()
        assert (policy.weekdays, policy.start_time, policy.end_time) == ("01234", time(7), time(19))
        event = session.scalars(select(AccessEvent)).one()
        assert event.created_at.replace(tzinfo=UTC) == now
        assert (event.decision, event.probability, event.level, event.query_image) == (
            "grant",
            0.9993,
            8,
            b"\x89PNG",
        )


def test_an_enrollment_stores_samples_artifacts_and_index_together(store):
    samples, artifacts = person(np.random.default_rng(0))
    person_id = store.add_person("Grace", "dlib", "test", samples, artifacts)
    assert counts(store) == {"persons": 1, "samples": 6, "artifacts": 2}
    with store.sessions() as session:
        rows = session.scalars(select(ModelArtifact)).all()
    for row, artifact in zip(
        sorted(rows, key=lambda r: r.kind), sorted(artifacts, key=lambda a: a.kind), strict=True
    ):
        assert store.artifacts.load(row.path, row.sha256) == artifact.data
    index = store.index("dlib")
    assert index.meta.db_version == store.db_version() == 1
    _, ids = index.search(samples[0].embedding, 1)
    assert ids[0, 0] == person_id
    assert store.check().clean


def test_artifacts_are_read_back_by_person_and_kind_and_checksum_verified(store):
    samples, artifacts = person(np.random.default_rng(1))
    first = store.add_person("First", "dlib", "test", samples, artifacts)
    second = store.add_person("Second", "dlib", "test", *person(np.random.default_rng(2)))
    by_kind = {a.kind: a.data for a in artifacts}
    assert store.artifact(first, "generator") == by_kind["generator"]
    assert store.persons_with("generator") == [second, first]  # newest first
    assert store.persons_with("generator", exclude=second) == [first]
    with pytest.raises(PersonNotFoundError, match="has no stored general_discriminator"):
        store.artifact(first, "general_discriminator")
    with store.sessions() as session:
        row = session.scalars(
            select(ModelArtifact).where(
                ModelArtifact.person_id == first, ModelArtifact.kind == "generator"
            )
        ).one()
    store.artifacts.final_path(row.path).write_bytes(b"tampered")
    with pytest.raises(ArtifactChecksumError):
        store.artifact(first, "generator")


def test_the_general_discriminator_is_replaced_whole_and_the_old_file_removed(store):
    assert store.general_discriminator() is None
    store.set_general_discriminator(b"first model", "test")
    version = store.db_version()
    store.set_general_discriminator(b"second model", "test")
    assert store.general_discriminator() == b"second model"
    assert store.db_version() == version  # the index is not made stale by it
    assert counts(store)["artifacts"] == 1 and len(list(store.artifacts.files())) == 1
    # it belongs to no person: deleting everyone leaves it
    pid = store.add_person("P", "dlib", "test", person(np.random.default_rng(3))[0])
    store.delete_person(pid)
    assert store.general_discriminator() == b"second model"
    assert store.check().clean


def enroll_failing_at(store: Store, step: str) -> None:
    """Enroll one person with an exception injected at `step` of add_person."""

    def fault(name: str) -> None:
        if name == step:
            raise RuntimeError(f"injected at {name}")

    samples, artifacts = person(np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="injected"):
        store.add_person("Half", "dlib", "test", samples, artifacts, fault=fault)


@pytest.mark.parametrize("step", ["stage", "staged", "rows", "commit"])
def test_a_failure_before_the_commit_leaves_nothing(store, step):
    enroll_failing_at(store, step)
    assert counts(store) == {"persons": 0, "samples": 0, "artifacts": 0}
    assert list(store.artifacts.files()) == [] and store.artifacts.pending() == []
    assert store.db_version() == 0
    assert store.check().clean


@pytest.mark.parametrize("step", ["committed", "published"])
def test_a_failure_after_the_commit_leaves_a_whole_person(store, store_settings, db_url, step):
    enroll_failing_at(store, step)
    assert counts(store) == {"persons": 1, "samples": 6, "artifacts": 2}
    assert len(list(store.artifacts.files())) == 2
    reopened = Store(store_settings, url=db_url)  # recovery brings the index up to date
    assert reopened.check().clean, reopened.check().problems
    reopened.close()


@pytest.mark.parametrize("step", ["staged", "rows", "commit", "committed", "published", "indexed"])
def test_kill_9_mid_enrollment_leaves_a_consistent_store(store, store_settings, db_url, step):
    samples, artifacts = person(np.random.default_rng(5))
    store.add_person("Before", "dlib", "test", samples, artifacts)
    writer = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.db_writer",
            db_url,
            str(store_settings.data_dir),
            "kill",
            step,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert writer.returncode == -9, writer.stderr
    reopened = Store(store_settings, url=db_url)
    report = reopened.check()
    assert report.clean, report.problems
    committed = step in ("committed", "published", "indexed")
    assert counts(reopened)["persons"] == (2 if committed else 1)
    assert len(list(reopened.artifacts.files())) == (4 if committed else 2)
    assert reopened.artifacts.pending() == []
    reopened.close()


def test_the_index_rebuilt_from_the_database_equals_the_incremental_one(store):
    rng = np.random.default_rng(3)
    ids = [store.add_person(f"p{i}", "dlib", "test", *person(rng)) for i in range(20)]
    for person_id in ids[::4]:
        store.delete_person(person_id)
    incremental = store.index("dlib").vectors_by_id()
    rebuilt = store.rebuild_index("dlib").vectors_by_id()
    assert sorted(incremental) == sorted(rebuilt) == sorted(set(ids) - set(ids[::4]))
    for person_id, vector in rebuilt.items():
        np.testing.assert_allclose(incremental[person_id], vector, atol=1e-6)


def test_an_approximate_index_above_the_size_setting_finds_the_same_people(db_url, tmp_path):
    upgrade(make_engine(db_url))
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "ivf", index_approximate_above=50, index_nprobe=64
    )
    store = Store(settings, url=db_url)
    rng = np.random.default_rng(7)
    ids = [store.add_person(f"p{i}", "dlib", "test", *person(rng, n=2)) for i in range(120)]
    index = store.index("dlib")
    assert index.meta.kind == "ivf" and index.meta.count == 120
    _, templates = store.templates("dlib")[1:]
    _, found = index.search(templates[:20], 1)
    assert found[:, 0].tolist() == ids[:20]
    store.close()


def test_deleting_a_person_leaves_no_biometric_trace(store):
    rng = np.random.default_rng(11)
    keep = store.add_person("Keep", "dlib", "test", *person(rng))
    gone = store.add_person("Gone", "dlib", "test", *person(rng))
    with store.sessions.begin() as session:
        door = Door(name="lab")
        session.add(door)
        session.flush()
        for who in (keep, gone):
            session.add(
                AccessEvent(
                    door_id=door.id,
                    decision="grant",
                    person_id=who,
                    probability=0.99,
                    level=7,
                    report={
                        "version": 1,
                        "decision": "grant",
                        "embedding": [0.1] * 128,
                        "face_crop_png": "iVBOR",
                    },
                    query_image=b"jpeg-bytes",
                )
            )
    files_before = set(store.artifacts.files())
    store.delete_person(gone)
    with store.sessions() as session:
        assert session.get(Person, gone) is None
        assert (
            session.scalar(select(func.count(FaceSample.id)).where(FaceSample.person_id == gone))
            == 0
        )
        assert (
            session.scalar(
                select(func.count(ModelArtifact.id)).where(ModelArtifact.person_id == gone)
            )
            == 0
        )
        events = {e.person_id: e for e in session.scalars(select(AccessEvent))}
    assert set(events) == {keep, None}
    erased = events[None]
    assert (erased.decision, erased.door_id, erased.level) == ("grant", events[keep].door_id, 7)
    assert erased.query_image is None and erased.biometrics_erased
    assert erased.report == {"version": 1, "decision": "grant"}
    assert events[keep].query_image == b"jpeg-bytes" and "embedding" in events[keep].report
    assert len(files_before - set(store.artifacts.files())) == 2
    assert gone not in store.index("dlib").vectors_by_id()
    assert store.check().clean
    with pytest.raises(PersonNotFoundError):
        store.delete_person(gone)


def test_a_damaged_artifact_is_an_error_on_load_and_in_check(store):
    store.add_person("Dana", "dlib", "test", *person(np.random.default_rng(2)))
    with store.sessions() as session:
        row = session.scalars(select(ModelArtifact)).first()
    path = store.artifacts.final_path(row.path)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactChecksumError, match="damaged"):
        store.artifacts.load(row.path, row.sha256)
    problems = store.check().problems
    assert len(problems) == 1 and "damaged" in problems[0]


def test_check_reports_orphans_and_a_stale_index(store):
    store.add_person("Eve", "dlib", "test", *person(np.random.default_rng(4)))
    orphan = store.artifacts.final_path("ee/" + "e" * 64 + ".bin")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left over")
    with store.sessions.begin() as session:
        store._bump_version(session)
    problems = " | ".join(store.check().problems)
    assert "referenced by no database row" in problems and "stale" in problems


def test_concurrent_writers_do_not_corrupt_the_store(store, store_settings, db_url):
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.db_writer",
                db_url,
                str(store_settings.data_dir),
                "many",
                "5",
                f"w{i}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for w in writers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    assert counts(store) == {"persons": 20, "samples": 120, "artifacts": 40}
    assert store.db_version() == 20
    report = store.check()
    assert report.clean, report.problems
    assert store.index("dlib").meta.count == 20


def test_purge_applies_the_retention_settings(store):
    now = datetime(2026, 11, 22, tzinfo=UTC)
    with store.sessions.begin() as session:
        for days in (1, 45, 400):
            session.add(
                AccessEvent(
                    created_at=now - timedelta(days=days), decision="unknown", query_image=b"img"
                )
            )
    purged = store.purge(now=now)
    assert purged == {"events_deleted": 1, "query_images_dropped": 1, "uploads_removed": 0}
    with store.sessions() as session:
        left = sorted(
            (e.created_at.replace(tzinfo=UTC), e.query_image)
            for e in session.scalars(select(AccessEvent))
        )
    assert left == [(now - timedelta(days=45), None), (now - timedelta(days=1), b"img")]


def test_the_migrations_build_exactly_the_models(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from db.models import Base

    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_person_ids_are_never_reused(store):
    rng = np.random.default_rng(9)
    first = store.add_person("a", "dlib", "test", *person(rng))
    store.delete_person(first)
    second = store.add_person("b", "dlib", "test", *person(rng))
    assert second > first


def test_a_duplicate_external_id_is_refused_and_stores_nothing(store):
    from db import DuplicatePersonError

    rng = np.random.default_rng(10)
    store.add_person("a", "dlib", "test", *person(rng), external_id="E-9")
    with pytest.raises(DuplicatePersonError, match="E-9"):
        store.add_person("b", "dlib", "test", *person(rng), external_id="E-9")
    assert counts(store)["persons"] == 1 and store.artifacts.pending() == []
    assert store.check().clean


def test_queries_reuse_the_loaded_index_until_the_database_changes(store):
    rng = np.random.default_rng(12)
    store.add_person("a", "dlib", "test", *person(rng))
    first = store.index("dlib")
    assert store.index("dlib") is first
    new = store.add_person("b", "dlib", "test", *person(rng))
    second = store.index("dlib")
    assert second is not first and new in second.vectors_by_id()


def test_real_crops_are_kept_with_the_person_and_erased_with_them(store):
    from db import ArtifactIn
    from db.artifacts import (
        REAL_CROPS_FORMAT,
        ArtifactError,
        real_crops_from_bytes,
        real_crops_to_bytes,
    )

    rng = np.random.default_rng(12)
    crops = rng.integers(0, 256, size=(8, 64, 64, 3), dtype=np.uint8)
    vectors = rng.normal(size=(8, 128)).astype(np.float32)
    samples, artifacts = person(rng)
    data = real_crops_to_bytes(crops, vectors)
    artifacts.append(ArtifactIn("real_crops", REAL_CROPS_FORMAT, data))
    who = store.add_person("Crops", "dlib", "test", samples, artifacts)
    assert store.holding("real_crops", [who]) == {who}
    back_crops, back_vectors = real_crops_from_bytes(store.artifact(who, "real_crops"))
    assert np.array_equal(back_crops, crops) and np.array_equal(back_vectors, vectors)
    store.delete_person(who)
    assert store.holding("real_crops", [who]) == set()
    assert store.check().clean
    with pytest.raises(ArtifactError, match="not readable"):
        real_crops_from_bytes(b"not an npz archive")
    with pytest.raises(ValueError, match="8 crops but 3 embeddings"):
        real_crops_to_bytes(crops, vectors[:3])
