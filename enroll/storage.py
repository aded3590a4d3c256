"""Store an enrollment: the person, their selected faces and their personal models, in one
transaction."""

from typing import Protocol

from db import ArtifactIn, SampleIn, Store
from db.artifacts import REAL_CROPS_FORMAT, real_crops_to_bytes
from enroll.enrollment import EnrollmentResult


class StoredModels(Protocol):
    """What storing needs of a person's trained models (enroll/personal.py's PersonalModels)."""

    def artifacts(self) -> list[ArtifactIn]: ...

    def synthetic_samples(self) -> list[SampleIn]: ...


def save_enrollment(
    store: Store,
    result: EnrollmentResult,
    external_id: str | None = None,
    models: StoredModels | None = None,
) -> int:
    """The new person's id. Samples carry their quality, yaw and frame index; with `models`, the
    generator and personal discriminator are stored with them, and the synthetic samples that
    verified as the person join the real ones (source 'synthetic'; the index template stays the
    mean of the real ones), and so do the real 64 px crops with their embeddings."""
    selected = [r for r in result.frames if r.selected]
    samples = [
        SampleIn(
            embedding=vector,
            source="real",
            quality=record.quality.as_dict() if record.quality else None,
            yaw_deg=float(yaw),
            frame_index=record.frame_index,
        )
        for vector, yaw, record in zip(result.embeddings, result.yaws_deg, selected, strict=True)
    ]
    artifacts = []
    if models is not None:
        samples += models.synthetic_samples()
        # the real crops stay with the models: calibration's genuine trials (the held-out ones
        # the personal discriminator never trained on) and the general discriminator's data
        crops = real_crops_to_bytes(result.crops_gan, result.embeddings)
        artifacts = [*models.artifacts(), ArtifactIn("real_crops", REAL_CROPS_FORMAT, crops)]
    return store.add_person(
        result.name,
        result.embedder,
        result.embedder_version,
        samples,
        artifacts=artifacts,
        external_id=external_id,
    )
