"""The artifact store: model files written whole or not at all, named by checksum, verified on load.

A write goes to a staging folder of its own (held under an exclusive lock while its enrollment
runs), is fsynced and checksummed there, and only moves to its final content-addressed place once
the database transaction that references it has committed. A crash therefore leaves at most a
staging folder whose lock nobody holds, which `recover()` clears (publishing what the database
did commit): never a half-written model and never a file in the final area that no row references.
"""

import fcntl
import hashlib
import io
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegate.errors import FacegateError

REAL_CROPS_FORMAT = "npz-real-crops-v1"


class ArtifactError(FacegateError):
    code = "artifact_error"


class ArtifactChecksumError(ArtifactError):
    code = "artifact_checksum_mismatch"


def real_crops_to_bytes(crops_64: np.ndarray, embeddings: np.ndarray) -> bytes:
    """A person's real 64 px crops (N, 64, 64, 3) uint8 and their embeddings (N, D), row for row."""
    if len(crops_64) != len(embeddings):
        raise ValueError(f"{len(crops_64)} crops but {len(embeddings)} embeddings")
    out = io.BytesIO()
    np.savez_compressed(
        out,
        crops=np.ascontiguousarray(crops_64, dtype=np.uint8),
        embeddings=np.asarray(embeddings, dtype="<f4"),
    )
    return out.getvalue()


def real_crops_from_bytes(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(crops, embeddings) as real_crops_to_bytes stored them."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as saved:
            return saved["crops"], saved["embeddings"]
    except (ValueError, KeyError, OSError) as exc:
        raise ArtifactError(f"a real-crops artifact is not readable: {exc}") from exc


@dataclass(frozen=True)
class StagedArtifact:
    sha256: str
    size_bytes: int
    path: str  # final path, relative to the store root


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ArtifactStore:
    """Content-addressed files under `root` (`ab/abcdef....bin`), staged per transaction."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.staging_root = self.root / "staging"
        self.staging_root.mkdir(parents=True, exist_ok=True)

    def final_path(self, relative: str) -> Path:
        return self.root / relative

    def stage(self) -> "Staging":
        return Staging(self)

    def load(self, relative: str, sha256: str) -> bytes:
        """The artifact's bytes; a missing file or a checksum mismatch is an error, never bad data."""
        path = self.final_path(relative)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactError(
                f"model artifact {relative} is missing from the data folder; run `facegate db check`"
            ) from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ArtifactChecksumError(
                f"model artifact {relative} is damaged: sha256 {actual[:12]}... but the database "
                f"recorded {sha256[:12]}...; re-enroll the person or restore the file"
            )
        return data

    def delete(self, relative: str) -> None:
        self.final_path(relative).unlink(missing_ok=True)

    def files(self) -> Iterator[str]:
        """Relative paths of every file in the final area."""
        for path in self.root.glob("??/*.bin"):
            yield str(path.relative_to(self.root))

    def recover(self, referenced: set[str]) -> dict[str, int]:
        """Clean up after crashed writers (staging folders whose lock nobody holds): files whose
        checksum the database references were committed, so they are published; the rest go."""
        out = {"published": 0, "removed": 0}
        for folder in [p for p in self.staging_root.iterdir() if p.is_dir()]:
            lock_path = self.staging_root / f"{folder.name}.lock"
            fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live writer holds it
            try:
                for path in folder.glob("*.bin"):
                    if path.stem in referenced:
                        final = self.final_path(f"{path.stem[:2]}/{path.name}")
                        final.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(path, final)
                        out["published"] += 1
                    else:
                        out["removed"] += 1
                shutil.rmtree(folder, ignore_errors=True)
                lock_path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return out

    def pending(self) -> list[str]:
        """Staging folders present now (live writers or crashed ones)."""
        return sorted(p.name for p in self.staging_root.iterdir() if p.is_dir())


class Staging:
    """Files of one transaction: `put` them, then `publish()` after the commit or `discard()`."""

    def __init__(self, store: ArtifactStore):
        self.store = store
        name = uuid.uuid4().hex
        # lock first, folder second: a recoverer never sees this folder unlocked
        self._lock_path = store.staging_root / f"{name}.lock"
        self._lock_fd: int | None = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self.folder = store.staging_root / name
        self.folder.mkdir()
        self.staged: list[StagedArtifact] = []
        self.committed = False  # set once the database transaction referencing these committed

    def put(self, data: bytes) -> StagedArtifact:
        sha = hashlib.sha256(data).hexdigest()
        tmp = self.folder / f"{sha}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        written = hashlib.sha256(tmp.read_bytes()).hexdigest()
        if written != sha:
            raise ArtifactChecksumError(
                f"artifact {sha[:12]}... read back as {written[:12]}...: the disk is failing"
            )
        tmp.rename(self.folder / f"{sha}.bin")
        item = StagedArtifact(sha, len(data), f"{sha[:2]}/{sha}.bin")
        self.staged.append(item)
        return item

    def publish(self) -> None:
        """Move every staged file to its final place (after the database commit)."""
        for item in self.staged:
            final = self.store.final_path(item.path)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.folder / f"{item.sha256}.bin", final)
            _fsync_dir(final.parent)
        self._close()

    def discard(self) -> None:
        self._close()

    def _close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self._lock_path.unlink(missing_ok=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc) -> None:
        if self._lock_fd is None:
            return
        # after the commit the database references these files: publish them whatever happened
        if self.committed:
            self.publish()
        else:
            self.discard()
