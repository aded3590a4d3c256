"""The impostor bank: faces of people who are not the person being enrolled, as 64 px crops aligned
like the enrollment crops, the negatives of every personal discriminator.

By default it holds the 100 faces of scikit-image's LFW subset (`skimage.data.lfw_subset()`,
25x25 grey, shipped inside the registry package, so nothing is downloaded). An operator may point
`impostor_bank_dir` at a folder of photos of their own (one face each, any people who will never be
enrolled); its faces are detected and aligned once and cached beside the database.
"""

from pathlib import Path

import cv2
import numpy as np

from enroll.sources import read_photos
from facegate.errors import ConfigurationError
from facegate.settings import Settings
from recognize import FacePipeline

# Where the LFW subset's 25 px crops sit on our alignment template: measured by eye on the subset's
# mean face (eye centres at about 40% of the height, 30% and 70% of the width; mouth at 75%).
# Scaling the crop to 91% of our side and lifting it by 6% puts those points on the template's
# eyes (30%, 32%/68%) and near its mouth (69%).
_LFW_SCALE = 0.91
_LFW_TOP = -0.06

_CACHE_NAME = "impostor_bank.npz"


def lfw_subset_crops(size: int = 64) -> np.ndarray:
    """The 100 LFW-subset faces as (100, size, size, 3) uint8 grey-as-RGB crops on our template."""
    from skimage.data import lfw_subset

    faces = (lfw_subset()[:100] * 255).round().astype(np.uint8)  # the first 100 are the faces
    side = int(round(size * _LFW_SCALE))
    left, top = (size - side) / 2, size * _LFW_TOP
    m = np.array([[side / 25, 0, left], [0, side / 25, top]], dtype=np.float64)
    out = np.empty((len(faces), size, size, 3), np.uint8)
    for i, face in enumerate(faces):
        warped = cv2.warpAffine(
            face, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        )
        out[i] = warped[..., None]
    return out


def folder_crops(folder: Path, pipeline: FacePipeline, size: int = 64) -> np.ndarray:
    """The largest face of every photo in `folder`, aligned at `size` px. Photos with no face are
    skipped; a folder with no face at all is an error."""
    photos = read_photos(folder, pipeline.settings.detect_max_side_px)
    crops = []
    for frame, found in zip(photos.frames, pipeline.detect(photos.frames), strict=True):
        if found:
            crops.append(pipeline.align(frame, found[0], size))
    if not crops:
        raise ConfigurationError(
            f"FACEGATE_IMPOSTOR_BANK_DIR {folder}: no face found in {len(photos.frames)} photos; "
            "point it at photos of people who will never be enrolled, one face each"
        )
    return np.stack(crops)


def impostor_bank(settings: Settings, pipeline: FacePipeline | None = None) -> np.ndarray:
    """The bank the settings name: the operator's folder (cached after the first use) or the
    built-in LFW subset."""
    size = settings.gan_crop_px
    if settings.impostor_bank_dir is None:
        return lfw_subset_crops(size)
    folder = Path(settings.impostor_bank_dir)
    cache = Path(settings.data_dir) / _CACHE_NAME
    stamp = f"{folder.resolve()}|{size}|{sorted(p.name for p in folder.iterdir())}"
    if cache.is_file():
        saved = np.load(cache, allow_pickle=False)
        if str(saved["stamp"]) == stamp:
            return saved["crops"]
    crops = folder_crops(folder, pipeline or FacePipeline(settings), size)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, crops=crops, stamp=np.array(stamp))
    tmp.replace(cache)
    return crops
