"""Pick a diverse set of at most K faces: every yaw bin represented, then farthest-point sampling."""

import numpy as np

# A 60 degree difference in yaw weighs about as much as a clear change of embedding.
_YAW_SCALE_DEG = 60.0


def select_diverse(
    embeddings: np.ndarray,
    yaws_deg: np.ndarray,
    bins: list[str | None],
    sharpness: np.ndarray,
    k: int,
) -> list[int]:
    """Indices of at most k faces: the sharpest face of each yaw bin first, then greedily the face
    farthest from everything chosen so far (in embedding and yaw together)."""
    n = len(embeddings)
    if n <= k:
        return list(range(n))
    features = np.hstack([embeddings, (yaws_deg / _YAW_SCALE_DEG)[:, None]])
    chosen: list[int] = []
    for b in ("frontal", "left", "right"):
        members = [i for i in range(n) if bins[i] == b]
        if members and len(chosen) < k:
            chosen.append(max(members, key=lambda i: sharpness[i]))
    if not chosen:
        chosen.append(int(np.argmax(sharpness)))
    nearest = np.min(
        np.linalg.norm(features[:, None, :] - features[None, chosen, :], axis=2), axis=1
    )
    while len(chosen) < k:
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(features - features[pick], axis=1))
    return sorted(chosen)
