"""Face embedders behind one interface: `dlib` (default, ships offline; run in torch, or by dlib-bin
as the reference, FACEGATE_DLIB_RUNTIME=dlib-bin) and `facenet` (local weights)."""

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from facegate.errors import ConfigurationError, ModelFileError
from facegate.settings import Settings
from recognize.align import FACE_TEMPLATE


class Embedder(ABC):
    """Maps aligned RGB uint8 crops of side `input_px` to vectors of length `dim`.

    Two faces are the same person when the Euclidean distance between their vectors is below
    `same_person_max_distance` (the backend's own operating point). Groups of faces (average
    linkage) are one identity while their mean distance stays below `identity_cluster_distance`,
    which is higher: one person's profile and frontal views sit further apart than a pair.
    """

    name: str
    version: str
    dim: int
    input_px: int
    template: np.ndarray = FACE_TEMPLATE
    same_person_max_distance: float
    identity_cluster_distance: float

    @abstractmethod
    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, dim) float32 vectors for N crops of input_px x input_px x 3."""


def _face_recognition_models_dir() -> Path:
    # Importing face_recognition_models runs `import pkg_resources`, which new setuptools no
    # longer has; find its files without importing it.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            "the dlib embedder needs the face_recognition_models package; run scripts/setup"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def dlib_model_path() -> Path:
    path = _face_recognition_models_dir() / "dlib_face_recognition_resnet_model_v1.dat"
    if not path.is_file():
        raise ModelFileError(
            "dlib face model dlib_face_recognition_resnet_model_v1.dat is missing from "
            "face_recognition_models; reinstall it (scripts/setup)"
        )
    return path


class DlibEmbedder(Embedder):
    """dlib's face ResNet (face_recognition_models, 99.38% on LFW), run in torch: the weights are
    read from the installed model file (recognize/dlib_resnet.py), the vectors are dlib's own
    (within 1e-5, tests/test_dlib_resnet.py), batched, on CPU or CUDA, and differentiable.

    Keywords:
        device: torch device (default CPU).
        batch_size: crops per forward pass (default 32).
    """

    name = "dlib"
    version = "dlib_face_recognition_resnet_model_v1+mtcnn5"
    dim = 128
    input_px = 150
    same_person_max_distance = 0.6  # dlib's published operating point for this model
    # Measured (benchmarks/thresholds.py) on 60 CelebA identities through this pipeline:
    # genuine pairs average 0.472, impostor pairs 0.859. Clips and photo folders of one person
    # (turning heads, profiles, beards) keep their outlier groups within 0.616-0.666 of the
    # rest; real second people in a clip sat 0.699-0.803 away.
    identity_cluster_distance = 0.7

    def __init__(self, device: torch.device | str = "cpu", batch_size: int = 32):
        from recognize.dlib_resnet import DlibResNet

        self.device = torch.device(device)
        self.batch_size = batch_size
        self.network = DlibResNet(dlib_model_path()).eval().to(self.device)

    def tensor(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """(N, 3, px, px) float RGB 0..255 on the embedder's device."""
        x = torch.from_numpy(np.ascontiguousarray(np.stack(crops), dtype=np.uint8))
        return x.to(self.device).permute(0, 3, 1, 2).float()

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        with torch.inference_mode(), _ieee_float32(self.device):
            for i in range(0, len(crops), self.batch_size):
                out.append(self.network(self.tensor(crops[i : i + self.batch_size])).cpu())
        return torch.cat(out).numpy().astype(np.float32)


@contextmanager
def _ieee_float32(device: torch.device):
    """cuDNN convolutions in full float32 (not TF32, torch's default on recent GPUs, whose 10-bit
    mantissa would move the vectors by ~1e-3): dlib's vectors are the contract."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if device.type != "cuda":
        yield
    elif conv is not None and hasattr(conv, "fp32_precision"):
        saved = conv.fp32_precision
        conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = saved
    else:
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            yield


class DlibNativeEmbedder(DlibEmbedder):
    """The same ResNet run by dlib-bin itself, one crop at a time on the CPU: the reference the
    torch port is tested against (same name and version: its vectors are interchangeable)."""

    def __init__(self, device: torch.device | str = "cpu", batch_size: int = 32):
        import dlib

        self.device = torch.device("cpu")
        self.batch_size = batch_size
        self._model = dlib.face_recognition_model_v1(str(dlib_model_path()))

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        chips = [np.ascontiguousarray(c, dtype=np.uint8) for c in crops]
        vectors = self._model.compute_face_descriptor(chips)
        return np.asarray([np.asarray(v) for v in vectors], dtype=np.float32)


class FacenetEmbedder(Embedder):
    """facenet-pytorch InceptionResnetV1 with VGGFace2 weights (99.65% on LFW) from a local file.

    Keywords:
        weights: path of the state dict (the setting FACEGATE_FACENET_WEIGHTS).
        device: torch device (default CPU).
    """

    name = "facenet"
    version = "inception_resnet_v1_vggface2+mtcnn5"
    dim = 512
    input_px = 160
    same_person_max_distance = 1.1  # on unit vectors; facenet-pytorch's VGGFace2 examples use ~1.1
    identity_cluster_distance = 1.2  # not yet measured here (no VGGFace2 weights on this machine)

    def __init__(self, weights: Path | None, device: torch.device | str = "cpu"):
        from facenet_pytorch import InceptionResnetV1

        if weights is None:
            raise ConfigurationError(
                "embedder=facenet needs its VGGFace2 weights file, which cannot be downloaded here: "
                "set FACEGATE_FACENET_WEIGHTS to a local copy of 20180402-114759-vggface2.pt"
            )
        weights = Path(weights)
        if not weights.is_file():
            raise ModelFileError(
                f"FACEGATE_FACENET_WEIGHTS points at {weights}, which does not exist or is not a file"
            )
        self.device = torch.device(device)
        model = InceptionResnetV1(pretrained=None, classify=False)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            # the published file carries the VGGFace2 classifier head too; embeddings do not use it
            state = {k: v for k, v in state.items() if not k.startswith("logits.")}
            model.load_state_dict(state)
        except Exception as exc:  # torch raises many kinds for a wrong or damaged file
            raise ModelFileError(
                f"FACEGATE_FACENET_WEIGHTS={weights} is not an InceptionResnetV1 state dict: {exc}"
            ) from exc
        self._model = model.eval().to(self.device)

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        x = torch.from_numpy(np.stack(crops)).to(self.device).permute(0, 3, 1, 2).float()
        x = (x - 127.5) / 128.0  # facenet-pytorch's fixed_image_standardization
        with torch.inference_mode():
            return self._model(x).cpu().numpy().astype(np.float32)


def make_embedder(settings: Settings, device: torch.device | str = "cpu") -> Embedder:
    """The embedder the settings name."""
    if settings.embedder == "dlib":
        if settings.dlib_runtime == "dlib-bin":
            return DlibNativeEmbedder()
        return DlibEmbedder(device=device)
    return FacenetEmbedder(settings.facenet_weights, device=device)
