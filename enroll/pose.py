"""Pose coverage: how many good faces fall in each yaw bin (left, frontal, right)."""

from facegate.settings import Settings

POSE_BINS = ("left", "frontal", "right")


def pose_bin(yaw_deg: float, settings: Settings) -> str | None:
    """'left' / 'right' when the nose points that way in the image by at least the side angle,
    'frontal' within the frontal angle, None in between."""
    if abs(yaw_deg) <= settings.pose_frontal_max_deg:
        return "frontal"
    if yaw_deg <= -settings.pose_side_min_deg:
        return "left"
    if yaw_deg >= settings.pose_side_min_deg:
        return "right"
    return None


def pose_coverage(yaws_deg: list[float], settings: Settings) -> dict[str, int]:
    """Faces per yaw bin."""
    counts = dict.fromkeys(POSE_BINS, 0)
    for yaw in yaws_deg:
        b = pose_bin(yaw, settings)
        if b is not None:
            counts[b] += 1
    return counts


def missing_bins(coverage: dict[str, int], settings: Settings) -> list[str]:
    return [b for b in POSE_BINS if coverage[b] < settings.pose_min_faces_per_bin]
