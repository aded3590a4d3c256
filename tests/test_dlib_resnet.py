"""The torch port of dlib's face ResNet gives dlib's own vectors, batched and differentiable."""

import numpy as np
import pytest
import torch

from facegate.errors import ModelFileError
from facegate.settings import Settings
from recognize import DlibEmbedder, DlibNativeEmbedder, face_distance, make_embedder
from recognize.dlib_resnet import DlibResNet, read_dlib_network
from recognize.embed import dlib_model_path
from tests.conftest import celeba


@pytest.fixture(scope="module")
def chips(data, pipeline) -> np.ndarray:
    """40 aligned 150 px chips of 20 celeba_wild identities, as the pipeline makes them."""
    crops, labels = [], []
    for frame, label in celeba(data, 0, 20):
        found = pipeline.analyze([frame], largest_only=True)[0]
        if found and labels.count(label) < 2:
            crops.append(found[0].crop)
            labels.append(label)
    assert len(crops) >= 36
    return np.stack(crops[:40])


def test_the_model_file_is_read_to_its_last_byte():
    loss, layers = read_dlib_network(dlib_model_path())
    kinds = [layer.kind for layer in layers]
    assert kinds.count("con") == 29 and kinds.count("affine") == 29
    assert kinds.count("add_prev") == 14 and kinds[-1] == "fc"
    assert layers[0].info["mean_rgb"] == pytest.approx((122.782, 117.001, 104.298), abs=1e-3)
    assert loss["distance_threshold"] == pytest.approx(0.6)  # dlib's own operating point


def test_a_damaged_model_file_is_refused(tmp_path):
    whole = dlib_model_path().read_bytes()
    for name, data in (("short.dat", whole[: len(whole) // 2]), ("long.dat", whole + b"\x01\x00")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ModelFileError):
            DlibResNet(path)


def test_torch_port_gives_dlibs_vectors_and_decisions(chips):
    # 1e-5: dlib computes in float32 too; the two only sum in different orders (the port's
    # largest difference on these chips is a few 1e-7, on vectors whose entries reach ~0.3)
    torch_vectors = DlibEmbedder().embed(chips)
    dlib_vectors = DlibNativeEmbedder().embed(chips)
    assert torch_vectors.shape == dlib_vectors.shape == (len(chips), 128)
    assert np.abs(torch_vectors - dlib_vectors).max() < 1e-5
    upper = np.triu_indices(len(chips), k=1)
    same_torch = face_distance(torch_vectors, torch_vectors)[upper] < 0.6
    same_dlib = face_distance(dlib_vectors, dlib_vectors)[upper] < 0.6
    assert (same_torch == same_dlib).all()
    assert 0 < same_dlib.sum() < len(same_dlib)  # both kinds of decision are exercised


def test_batches_give_the_vectors_of_single_crops(chips):
    embedder = DlibEmbedder(batch_size=7)  # batches of 7 and a remainder
    one_by_one = np.concatenate([embedder.embed(chips[i : i + 1]) for i in range(len(chips))])
    assert np.abs(embedder.embed(chips) - one_by_one).max() < 1e-5
    assert embedder.embed(chips[:0]).shape == (0, 128)


def test_gradients_reach_the_pixels(chips):
    embedder = DlibEmbedder()
    x = embedder.tensor(chips[:2]).requires_grad_(True)
    vectors = embedder.network(x)
    (vectors[0] - vectors[1]).norm().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_settings_choose_the_runtime():
    assert type(make_embedder(Settings(_env_file=None))) is DlibEmbedder
    native = make_embedder(Settings(_env_file=None, dlib_runtime="dlib-bin"))
    assert isinstance(native, DlibNativeEmbedder)
    assert (native.name, native.version) == (DlibEmbedder.name, DlibEmbedder.version)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_gives_the_cpu_vectors(chips):
    # the embedder turns cuDNN's TF32 off, so only the summation order differs (as on the CPU)
    cpu = DlibEmbedder().embed(chips)
    cuda = DlibEmbedder(device="cuda").embed(chips)
    assert np.abs(cpu - cuda).max() < 1e-5
