"""dlib's face ResNet in torch, its weights read from the file face_recognition_models installs.

The file is dlib's own serialization of `anet_type` from dlib's dnn_face_recognition_ex.cpp
(dlib_face_recognition_resnet_model_v1.dat, 22.5 MB): a loss layer, the nested versions of every
layer wrapper, then each layer's details from the input up. `read_dlib_network` parses all of it
(and refuses a file with bytes left over, or a layer where the known network has another), and
`DlibResNet` runs the same arithmetic as dlib: RGB input as (pixel - mean) / 256, convolutions
with stride 2 unpadded, batch norm already folded by dlib into `affine_` (scale and shift), and
residual sums that pad the smaller tensor with zeros at the end (channels 32 -> 64 ..., and
spatially 3x3 against 4x4, 1x1 against 2x2), as dlib's `add_prev` does. Nothing is
redistributed: the weights are read from the installed file at load time.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facegate.errors import ModelFileError


@dataclass
class DlibLayer:
    """One layer's details as dlib stored them."""

    kind: str  # "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc", "input"
    params: np.ndarray | None = None  # the layer's flat float32 parameters
    info: dict = field(default_factory=dict)  # sizes, strides, paddings, means


class _Reader:
    """dlib's serialization primitives (dlib/serialize.h, dlib/cuda/tensor.h)."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelFileError(f"dlib model file ends early at byte {self.pos} (wanted {n} more)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        # a control byte (bit 7: negative, low 4 bits: byte count), then little-endian bytes
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise ModelFileError(f"dlib model file: bad integer at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        # float_details: an int64 mantissa and an int16 exponent
        mantissa, exponent = self.int(), self.int()
        return float(np.ldexp(np.float64(mantissa), exponent))

    def bool(self) -> bool:
        ch = self._take(1)
        if ch not in (b"0", b"1"):
            raise ModelFileError(f"dlib model file: bad bool at byte {self.pos - 1}")
        return ch == b"1"

    def string(self) -> str:
        return self._take(self.int()).decode("ascii")

    def peek_string(self) -> str | None:
        """The string at the current position, if one is there (without consuming it)."""
        saved = self.pos
        try:
            size = self.int()
            text = self._take(size) if 0 < size < 64 else b""
            ok = bool(text) and all(32 < c < 127 for c in text)
            return text.decode("ascii") if ok else None
        except ModelFileError:
            return None
        finally:
            self.pos = saved

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ModelFileError(f"dlib model file: tensor version {version} (expected 2)")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        return np.frombuffer(self._take(4 * count), dtype="<f4").reshape(shape).copy()

    def alias_shape(self) -> tuple[int, int, int, int]:
        if self.int() != 1:
            raise ModelFileError("dlib model file: unexpected alias_tensor version")
        return tuple(self.int() for _ in range(4))


def _layer_details(r: _Reader) -> DlibLayer:
    version = r.string()
    if version == "input_rgb_image_sized":
        means = (r.float(), r.float(), r.float())
        return DlibLayer("input", info={"mean_rgb": means, "rows": r.int(), "cols": r.int()})
    if version in ("con_4", "con_5", "con_6"):
        params = r.tensor()
        info = {
            "filters": r.int(),
            "rows": r.int(),
            "cols": r.int(),
            "stride": (r.int(), r.int()),
            "padding": (r.int(), r.int()),
        }
        info["filter_shape"], info["bias_shape"] = r.alias_shape(), r.alias_shape()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.float()
        if version in ("con_5", "con_6"):
            info["use_bias"] = r.bool()
        if version == "con_6":
            r.bool()  # use_relu (fused relu; unused by this model)
        return DlibLayer("con", params.ravel(), info)
    if version in ("affine_", "affine_2"):
        params = r.tensor()
        info = {"gamma_shape": r.alias_shape(), "beta_shape": r.alias_shape(), "mode": r.int()}
        if version == "affine_2":
            info["disabled"] = r.bool()
        return DlibLayer("affine", params.ravel(), info)
    if version in ("relu_", "relu_2"):
        if version == "relu_2":
            r.bool()
        return DlibLayer("relu")
    if version in ("max_pool_2", "avg_pool_2"):
        info = {
            "rows": r.int(),
            "cols": r.int(),
            "stride": (r.int(), r.int()),
            "padding": (r.int(), r.int()),
        }
        return DlibLayer(version[:-2], info=info)
    if version == "add_prev_":
        return DlibLayer("add_prev")
    if version in ("fc_2", "fc_3"):
        info = {"outputs": r.int(), "inputs": r.int()}
        params = r.tensor()
        info["weight_shape"], info["bias_shape"] = r.alias_shape(), r.alias_shape()
        info["bias_mode"] = r.int()
        for _ in range(4):
            r.float()
        if version == "fc_3":
            info["use_bias"] = r.bool()
        return DlibLayer("fc", params.ravel(), info)
    raise ModelFileError(f"dlib model file: layer {version!r} is not part of the face ResNet")


def read_dlib_network(path: Path) -> tuple[dict, list[DlibLayer]]:
    """(the loss layer's settings, every layer from the input up) of a dlib metric network."""
    try:
        r = _Reader(Path(path).read_bytes())
    except OSError as exc:
        raise ModelFileError(f"cannot read the dlib face model {Path(path).name}: {exc}") from exc
    if r.int() != 1:
        raise ModelFileError("dlib model file: unexpected loss-layer version")
    loss = r.string()
    if not loss.startswith("loss_metric"):
        raise ModelFileError(f"dlib model file: loss {loss!r}, expected loss_metric")
    loss_info = {"margin": r.float(), "distance_threshold": r.float()}
    # the wrappers' versions from the outside in: 1 for tags and skips, 2 for a layer with
    # details, 3 for the one right above the input
    wrappers = []
    while r.peek_string() is None:
        wrappers.append(r.int())
    layers = [_layer_details(r)]  # the input layer
    for version in reversed(wrappers):
        if version == 1:  # add_tag_layer / add_skip_layer: nothing of their own
            continue
        layers.append(_layer_details(r))
        r.bool(), r.bool(), r.bool()  # setup called, gradient stale, output/gradient disabled
        for _ in range(3):  # x_grad, cached_output, params_grad: empty in a saved model
            r.tensor()
        if version == 3:  # the layer right above the input keeps its sample expansion factor
            r.int()
    if r.pos != len(r.data):
        raise ModelFileError(f"dlib model file: {len(r.data) - r.pos} bytes left after the network")
    return loss_info, layers


class _Affine(nn.Module):
    def __init__(self, layer: DlibLayer, channels: int):
        super().__init__()
        if layer.kind != "affine" or len(layer.params) != 2 * channels:
            raise ModelFileError(f"dlib face ResNet: expected affine over {channels} channels")
        gamma, beta = layer.params[:channels], layer.params[channels:]
        self.register_buffer("gamma", torch.from_numpy(gamma.copy()).view(1, -1, 1, 1))
        self.register_buffer("beta", torch.from_numpy(beta.copy()).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta


def _conv(layer: DlibLayer, in_channels: int, stride: int) -> nn.Conv2d:
    info = layer.info
    if layer.kind != "con" or info["stride"] != (stride, stride):
        raise ModelFileError(f"dlib face ResNet: expected a stride-{stride} convolution")
    out, k = info["filters"], info["rows"]
    conv = nn.Conv2d(in_channels, out, k, stride=stride, padding=info["padding"][0])
    n_weights = out * in_channels * k * k
    if len(layer.params) != n_weights + out:
        raise ModelFileError("dlib face ResNet: a convolution's parameter count does not match")
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(layer.params[:n_weights]).view(out, in_channels, k, k))
        conv.bias.copy_(torch.from_numpy(layer.params[n_weights:]))
    return conv.requires_grad_(False)


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum over the larger shape, the smaller tensor zero-padded at the end."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True)]

    def grow(t: torch.Tensor) -> torch.Tensor:
        c, h, w = t.shape[1:]
        if (c, h, w) == tuple(shape):
            return t
        return F.pad(t, (0, shape[2] - w, 0, shape[1] - h, 0, shape[0] - c))

    return grow(a) + grow(b)


class _Residual(nn.Module):
    """relu(block(x) + shortcut(x)); block = affine(conv(relu(affine(conv(x))))). Downsampling
    blocks convolve with stride 2 and take a 2x2 average pool as the shortcut."""

    def __init__(self, layers: list[DlibLayer], in_channels: int, down: bool):
        super().__init__()
        self.down = down
        first = layers.pop(0)
        channels = first.info["filters"]
        self.conv1 = _conv(first, in_channels, 2 if down else 1)
        self.bn1 = _Affine(layers.pop(0), channels)
        _expect(layers.pop(0), "relu")
        self.conv2 = _conv(layers.pop(0), channels, 1)
        self.bn2 = _Affine(layers.pop(0), channels)
        if down:
            pool = layers.pop(0)
            if pool.kind != "avg_pool" or pool.info["stride"] != (2, 2):
                raise ModelFileError("dlib face ResNet: expected the 2x2 average-pool shortcut")
        _expect(layers.pop(0), "add_prev")
        _expect(layers.pop(0), "relu")
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_padded(y, shortcut))


def _expect(layer: DlibLayer, kind: str) -> None:
    if layer.kind != kind:
        raise ModelFileError(f"dlib face ResNet: found {layer.kind} where {kind} belongs")


# (channels, blocks, whether the first one downsamples), from the input up: dlib's alevel4..0
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


class DlibResNet(nn.Module):
    """dlib_face_recognition_resnet_model_v1 as a torch module: (N, 3, 150, 150) RGB floats in
    0..255 -> (N, 128) face descriptors, equal to dlib's own."""

    def __init__(self, path: Path):
        super().__init__()
        self.loss_info, parsed = read_dlib_network(path)
        layers = list(parsed)
        inp = layers.pop(0)
        _expect(inp, "input")
        self.input_px = inp.info["rows"]
        self.register_buffer("mean", torch.tensor(inp.info["mean_rgb"]).view(1, 3, 1, 1))
        self.stem = _conv(layers.pop(0), 3, 2)
        self.stem_bn = _Affine(layers.pop(0), self.stem.out_channels)
        _expect(layers.pop(0), "relu")
        pool = layers.pop(0)
        _expect(pool, "max_pool")
        self.pool = (pool.info["rows"], pool.info["stride"][0])
        blocks, channels = [], self.stem.out_channels
        for width, count, down in STAGES:
            for i in range(count):
                blocks.append(_Residual(layers, channels, down and i == 0))
                channels = blocks[-1].out_channels
                if channels != width:
                    raise ModelFileError("dlib face ResNet: a stage has an unexpected width")
        self.blocks = nn.Sequential(*blocks)
        _expect(layers.pop(0), "avg_pool")  # avg_pool_everything
        fc = layers.pop(0)
        _expect(fc, "fc")
        inputs, outputs = fc.info["inputs"], fc.info["outputs"]
        if inputs != channels or len(fc.params) != inputs * outputs or layers:
            raise ModelFileError("dlib face ResNet: the descriptor layer does not fit the network")
        # dlib multiplies (N, inputs) by its (inputs, outputs) matrix; Linear keeps the transpose
        weight = torch.from_numpy(fc.params.reshape(inputs, outputs).T.copy())
        self.register_buffer("fc_weight", weight)
        self.dim = outputs
        self.requires_grad_(False)

    def features(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N, 256): the pooled features the descriptor layer projects."""
        x = (rgb - self.mean) / 256.0
        x = F.relu(self.stem_bn(self.stem(x)))
        x = F.max_pool2d(x, self.pool[0], self.pool[1])
        return self.blocks(x).mean(dim=(2, 3))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return F.linear(self.features(rgb), self.fc_weight)
