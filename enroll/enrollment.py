"""Enrollment, first half: sampled frames in; the one person's clean, aligned, diverse faces out.

Every refusal raises one of facegate's own errors with a message an administrator can act on.
"""

from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from enroll.pose import POSE_BINS, missing_bins, pose_bin, pose_coverage
from enroll.select import select_diverse
from enroll.sources import SampledFrames
from facegate.errors import (
    ClipTooShortError,
    InsufficientHeadTurnError,
    MultiplePeopleError,
    NoFaceError,
    NoUsablePhotoError,
    PoorQualityError,
)
from facegate.settings import Settings
from recognize import DetectedFace, FacePipeline, FaceQuality, measure_quality, quality_issue

# Why a frame gives no face for enrollment, in the words the summary uses.
DROP_REASONS = {
    "no_face": "no face found",
    "low_confidence": "face detection too uncertain",
    "too_small": "face too small (too far from the camera)",
    "cut_off": "face partly outside the picture",
    "blurred": "blurred (motion or focus)",
    "too_dark": "too dark",
    "too_bright": "over-exposed",
    "other_person": "shows someone other than the person being enrolled",
    "not_selected": "good, but not needed (a more diverse set was kept)",
}


@dataclass
class FrameRecord:
    """One row of the per-frame quality table."""

    frame_index: int
    time_s: float
    faces_found: int
    name: str | None = None  # photo file name
    quality: FaceQuality | None = None  # of the enrolled person's face (or the largest face)
    pose_bin: str | None = None
    drop_reason: str | None = None  # a key of DROP_REASONS; None when kept
    selected: bool = False

    def as_dict(self) -> dict:
        row = {k: v for k, v in asdict(self).items() if k != "quality"}
        row["time_s"] = round(self.time_s, 3)
        row.update(self.quality.as_dict() if self.quality else {})
        return row


@dataclass
class EnrollmentResult:
    """The person's selected faces (aligned crops and embeddings) and how they were chosen."""

    name: str
    source: str
    source_kind: str
    frames_read: int
    duration_s: float
    embedder: str
    embedder_version: str
    crops_gan: np.ndarray  # (K, gan_crop_px, gan_crop_px, 3) uint8 RGB, for the personal GAN
    crops_embedder: np.ndarray  # (K, input_px, input_px, 3) uint8 RGB, what was embedded
    embeddings: np.ndarray  # (K, dim) float32
    yaws_deg: np.ndarray  # (K,)
    frames: list[FrameRecord]
    pose_coverage: dict[str, int]  # good faces per yaw bin
    warnings: list[str] = field(default_factory=list)

    @property
    def selected_frame_indices(self) -> list[int]:
        return [r.frame_index for r in self.frames if r.selected]

    def summary(self) -> dict:
        """What the CLI and API print: counts, coverage, drop reasons; JSON-serialisable."""
        kept = [r for r in self.frames if r.drop_reason in (None, "not_selected")]
        dropped = Counter(
            r.drop_reason for r in self.frames if r.drop_reason not in (None, "not_selected")
        )
        return {
            "name": self.name,
            "source": self.source,
            "source_kind": self.source_kind,
            "duration_s": round(self.duration_s, 2),
            "frames_read": self.frames_read,
            "frames_sampled": len(self.frames),
            "faces_kept": len(kept),
            "faces_selected": len(self.embeddings),
            "pose_coverage": self.pose_coverage,
            "selected_pose_coverage": pose_counts(self.frames, selected_only=True),
            "yaw_range_deg": [
                round(float(self.yaws_deg.min()), 1),
                round(float(self.yaws_deg.max()), 1),
            ],
            "dropped": {k: dropped[k] for k in DROP_REASONS if dropped.get(k)},
            "embedder": self.embedder,
            "embedder_version": self.embedder_version,
            "warnings": self.warnings,
        }


def pose_counts(frames: list[FrameRecord], selected_only: bool) -> dict[str, int]:
    counts = dict.fromkeys(POSE_BINS, 0)
    for r in frames:
        if (
            r.pose_bin
            and (r.selected or not selected_only)
            and r.drop_reason in (None, "not_selected")
        ):
            counts[r.pose_bin] += 1
    return counts


@dataclass
class _Candidate:
    frame: int  # position in SampledFrames.frames
    detection: DetectedFace
    quality: FaceQuality


def _identities(embeddings: np.ndarray, max_distance: float) -> np.ndarray:
    """Identity label per face: average-linkage clusters cut at the identity distance.

    Average linkage keeps a turning head together (profile and frontal views of one person
    average well under the threshold) while two people stay apart.
    """
    if len(embeddings) == 1:
        return np.zeros(1, dtype=int)
    tree = linkage(embeddings.astype(np.float64), method="average", metric="euclidean")
    return fcluster(tree, t=max_distance, criterion="distance")


def _time_ranges(times: list[float]) -> str:
    """'0.0-3.2 s, 6.0-8.4 s' for sorted sample times, a gap of over a second splitting ranges."""
    if not times:
        return ""
    ranges, start, prev = [], times[0], times[0]
    for t in times[1:]:
        if t - prev > 1.0:
            ranges.append((start, prev))
            start = t
        prev = t
    ranges.append((start, prev))
    return ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in ranges[:6])


def enroll_frames(
    sampled: SampledFrames, name: str, pipeline: FacePipeline, settings: Settings
) -> EnrollmentResult:
    """Enroll `name` from sampled frames, or raise the error that says what is wrong with them."""
    s = settings
    photos = sampled.kind == "photos"
    if not photos and sampled.duration_s < s.min_clip_seconds:
        raise ClipTooShortError(
            f"the clip is {sampled.duration_s:.1f} s long; enrollment needs at least "
            f"{s.min_clip_seconds:.0f} s of the person slowly turning their head left and right"
        )
    records = [
        FrameRecord(
            frame_index=sampled.frame_indices[i],
            time_s=sampled.times_s[i],
            faces_found=0,
            name=sampled.names[i] if photos else None,
        )
        for i in range(len(sampled.frames))
    ]
    candidates = _measure_faces(sampled, pipeline, records, s)
    crops = [pipeline.align(sampled.frames[c.frame], c.detection) for c in candidates]
    vectors = pipeline.embed(crops)
    chosen, warnings = _pick_person(sampled, candidates, vectors, records, pipeline, s)

    # the person's faces that fail the quality gate are dropped with their reason
    for i, j in list(chosen.items()):
        reason = quality_issue(candidates[j].quality, s)
        if reason is not None:
            records[i].drop_reason = reason
            del chosen[i]
    kept = sorted(chosen)
    for i in kept:
        records[i].pose_bin = pose_bin(candidates[chosen[i]].quality.yaw_deg, s)
    needed = s.enroll_min_photos if photos else s.enroll_min_faces
    if len(kept) < needed:
        raise _poor_quality(records, sampled, needed)

    # pose coverage: the clip must show the head turned both ways and facing the camera
    yaws = np.array([candidates[chosen[i]].quality.yaw_deg for i in kept])
    coverage = pose_coverage(list(yaws), s)
    gaps = missing_bins(coverage, s)
    if gaps and (not photos or s.photos_require_pose_coverage):
        raise InsufficientHeadTurnError(_head_turn_message(coverage, gaps, yaws, s))
    if gaps:
        warnings.append(
            f"photos show too few faces {', '.join(gaps)}; recognition of turned heads may suffer"
        )

    # a diverse set of at most K
    picks = select_diverse(
        vectors[[chosen[i] for i in kept]],
        yaws,
        [records[i].pose_bin for i in kept],
        np.array([candidates[chosen[i]].quality.sharpness for i in kept]),
        s.enroll_max_faces,
    )
    picked_frames = [kept[p] for p in picks]
    for i in kept:
        records[i].selected = i in picked_frames
        records[i].drop_reason = None if records[i].selected else "not_selected"
    rows = [chosen[i] for i in picked_frames]
    return EnrollmentResult(
        name=name,
        source=sampled.source,
        source_kind=sampled.kind,
        frames_read=sampled.frames_read,
        duration_s=sampled.duration_s,
        embedder=pipeline.embedder.name,
        embedder_version=pipeline.embedder.version,
        crops_gan=np.stack(
            [
                pipeline.align(
                    sampled.frames[candidates[j].frame], candidates[j].detection, s.gan_crop_px
                )
                for j in rows
            ]
        ),
        crops_embedder=np.stack([crops[j] for j in rows]),
        embeddings=vectors[rows],
        yaws_deg=yaws[picks],
        frames=records,
        pose_coverage=coverage,
        warnings=warnings,
    )


def _measure_faces(
    sampled: SampledFrames, pipeline: FacePipeline, records: list[FrameRecord], s: Settings
) -> list[_Candidate]:
    """Every face of every frame, measured. Identity is judged on every confidently detected face
    big enough to embed; brightness and sharpness later decide which of the person's are kept."""
    candidates: list[_Candidate] = []
    for i, found in enumerate(pipeline.detect(sampled.frames)):
        records[i].faces_found = len(found)
        if not found:
            records[i].drop_reason = "no_face"
            continue
        measured = [_Candidate(i, d, measure_quality(sampled.frames[i], d)) for d in found]
        embeddable = [
            c
            for c in measured
            if quality_issue(c.quality, s) not in ("low_confidence", "too_small")
        ]
        candidates.extend(embeddable)
        if not embeddable:  # the largest face says why this frame gives nothing
            records[i].quality = measured[0].quality
            records[i].drop_reason = quality_issue(measured[0].quality, s)
    if not any(r.faces_found for r in records):
        raise _no_face(sampled, s)
    if not candidates:
        raise _poor_quality(records, sampled, needed=1)
    return candidates


def _pick_person(
    sampled: SampledFrames,
    candidates: list[_Candidate],
    vectors: np.ndarray,
    records: list[FrameRecord],
    pipeline: FacePipeline,
    s: Settings,
) -> tuple[dict[int, int], list[str]]:
    """The enrolled person is the identity seen in the most frames: their face in each frame
    (frame -> candidate index), and warnings. Refuses a source where others take turns."""
    labels = _identities(
        vectors, s.identity_cluster_distance or pipeline.embedder.identity_cluster_distance
    )
    frames_of: dict[int, set[int]] = {}
    for c, label in zip(candidates, labels, strict=True):
        frames_of.setdefault(int(label), set()).add(c.frame)
    person = max(frames_of, key=lambda lab: (len(frames_of[lab]), -min(frames_of[lab])))
    centroid = vectors[labels == person].mean(0)
    distance = np.linalg.norm(vectors - centroid, axis=1)

    chosen: dict[int, int] = {}
    for j, c in enumerate(candidates):
        if labels[j] == person and (
            c.frame not in chosen or distance[j] < distance[chosen[c.frame]]
        ):
            chosen[c.frame] = j
    for i, j in chosen.items():
        records[i].quality = candidates[j].quality

    photos = sampled.kind == "photos"
    who = "photos" if photos else "frames"
    face_frames = sum(1 for r in records if r.faces_found)
    others = sorted({c.frame for c in candidates} - set(chosen))
    warnings: list[str] = []
    if others:
        if len(others) / face_frames > s.max_other_person_share and len(others) >= 2:
            where = (
                ", ".join(sampled.names[i] for i in others[:6])
                if photos
                else "at " + _time_ranges([sampled.times_s[i] for i in others])
            )
            raise MultiplePeopleError(
                f"{len(others)} of {face_frames} {who} with a face show a different person than "
                f"the other {len(chosen)} ({where}); enrollment needs one person alone in view"
            )
        warnings.append(f"{len(others)} {who} showing someone else were left out")
    for i in others:
        records[i].drop_reason = "other_person"
        records[i].quality = next(c.quality for c in candidates if c.frame == i)
    bystanders = sum(1 for i in chosen if sum(1 for c in candidates if c.frame == i) > 1)
    if bystanders:
        warnings.append(f"another face was also visible in {bystanders} {who}")
    return chosen, warnings


def _no_face(sampled: SampledFrames, s: Settings) -> Exception:
    n = len(sampled.frames)
    photos = sampled.kind == "photos"
    what = f"{n} photo{'s' if n != 1 else ''}" if photos else f"{n} sampled frames"
    msg = f"no face found in {what}"
    brightness = float(np.mean([f.mean() for f in sampled.frames]))
    if brightness < s.min_brightness:
        msg += f"; the images are very dark (mean brightness {brightness:.0f} of 255): add light"
    if photos:
        skipped = (
            f" ({len(sampled.skipped)} other files were not photos or unreadable)"
            if sampled.skipped
            else ""
        )
        return NoUsablePhotoError(
            f"no usable photo in {sampled.source}: {msg}{skipped}; use photos of the person's face"
        )
    return NoFaceError(f"{msg}; is the camera pointed at the person?")


def _poor_quality(records: list[FrameRecord], sampled: SampledFrames, needed: int) -> Exception:
    usable = sum(1 for r in records if r.drop_reason in (None, "not_selected"))
    reasons = Counter(r.drop_reason for r in records if r.drop_reason not in (None, "not_selected"))
    detail = ", ".join(f"{n} {DROP_REASONS[k]}" for k, n in reasons.most_common())
    advice = {
        "too_dark": "record in better light",
        "too_bright": "avoid strong light behind or on the face",
        "blurred": "hold the camera still and let the person turn slowly",
        "too_small": "move the camera closer (the face should fill about a third of the frame)",
        "cut_off": "keep the whole face inside the picture",
        "low_confidence": "face the camera with the whole face visible",
        "no_face": "keep the face in view throughout",
    }
    top = reasons.most_common(1)[0][0] if reasons else "no_face"
    if sampled.kind == "photos":
        return NoUsablePhotoError(
            f"only {usable} of {len(records)} photos have a usable face (need {needed}): {detail}; "
            f"{advice.get(top, 'use clear, well-lit photos of the person alone')}"
        )
    return PoorQualityError(
        f"only {usable} of {len(records)} sampled frames have a usable face (need {needed}): "
        f"{detail}; {advice.get(top, 'record the clip again')}"
    )


def _head_turn_message(
    coverage: dict[str, int], gaps: list[str], yaws: np.ndarray, s: Settings
) -> str:
    counts = ", ".join(f"{b} {coverage[b]}" for b in POSE_BINS)
    return (
        f"the head does not turn enough: usable faces per pose are {counts} (each needs "
        f"{s.pose_min_faces_per_bin}; turned means at least {s.pose_side_min_deg:.0f} degrees, frontal "
        f"within {s.pose_frontal_max_deg:.0f}); measured yaw from {yaws.min():.0f} to {yaws.max():.0f} "
        f"degrees, missing: {', '.join(gaps)}. Ask the person to look at the camera, then turn slowly "
        "to the left and to the right"
    )
