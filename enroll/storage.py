"""Store an enrollment: the person and their selected faces, in one transaction."""

from db import SampleIn, Store
from enroll.enrollment import EnrollmentResult


def save_enrollment(store: Store, result: EnrollmentResult, external_id: str | None = None) -> int:
    """The new person's id. Samples carry their quality, yaw and frame index; the personal GAN's
    artifacts join them once issue 4 trains it."""
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
    return store.add_person(
        result.name, result.embedder, result.embedder_version, samples, external_id=external_id
    )
