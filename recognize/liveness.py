"""The head-turn challenge for a burst of frames: the same person throughout, and the head's yaw
changing by at least the configured angle. A photo or a still screen held up to the camera keeps
its yaw; a repeated frame has none to change."""

from dataclasses import dataclass

import numpy as np

from recognize.pipeline import face_distance

MIN_FRAMES = 3


@dataclass(frozen=True)
class HeadTurn:
    passed: bool
    reason: str  # one sentence; what failed, or what was seen
    frames: int  # frames with a face
    yaw_range_deg: float
    max_identity_distance: float  # the farthest frame from the decision face


def head_turn(
    yaws_deg: list[float],
    embeddings: np.ndarray,
    reference: np.ndarray,
    min_yaw_change_deg: float,
    same_person_max_distance: float,
) -> HeadTurn:
    """`yaws_deg` and `embeddings` (N, D): the chosen face of each frame of the burst that has
    one; `reference`: the embedding the decision is made on."""
    n = len(yaws_deg)
    yaw_range = float(max(yaws_deg) - min(yaws_deg)) if n else 0.0
    far = float(face_distance(reference, embeddings).max()) if n else 0.0
    if n < MIN_FRAMES:
        reason = (
            f"the door requires a head-turn challenge: send a burst of at least {MIN_FRAMES} "
            f"frames with a face (got {n})"
        )
        return HeadTurn(False, reason, n, yaw_range, far)
    if far > same_person_max_distance:
        reason = (
            f"the burst shows more than one person (a face {far:.2f} from the decision face; "
            f"the same person is within {same_person_max_distance:.2f})"
        )
        return HeadTurn(False, reason, n, yaw_range, far)
    if yaw_range < min_yaw_change_deg:
        reason = (
            f"the head turned {yaw_range:.1f} degrees across {n} frames; the challenge needs "
            f"{min_yaw_change_deg:.0f} (a photo or a still screen does not turn)"
        )
        return HeadTurn(False, reason, n, yaw_range, far)
    reason = f"the head turned {yaw_range:.1f} degrees across {n} frames, one person throughout"
    return HeadTurn(True, reason, n, yaw_range, far)
