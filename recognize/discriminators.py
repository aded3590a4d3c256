"""Step 7 of the paper: the shortlisted candidates' personal discriminators scoring one query face
in parallel, as one network. Each loaded discriminator is frozen into its inference form (spectral
norm applied to the weights once); for k candidates, every layer's k weights are concatenated and
run as one grouped convolution: the first layer reads the shared input once with k times the
output channels, the others use groups=k. On the GPU when present; loaded models stay on the
device in an LRU cache."""

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from db.artifacts import ArtifactError
from gan.dcgan import SNConv2d
from gan.train import to_tensor
from gan.verifier import CalibratedDiscriminator


@dataclass(frozen=True)
class FrozenDiscriminator:
    """A calibrated discriminator's inference form: the normalised conv weights in order, the
    LeakyReLU slope between them, its Platt (a, b) and whether it reads grey."""

    weights: tuple[torch.Tensor, ...]
    strides: tuple[int, ...]
    paddings: tuple[int, ...]
    slope: float
    platt: torch.Tensor  # (2,)
    greyscale: bool

    @classmethod
    @torch.no_grad()
    def of(cls, model: CalibratedDiscriminator) -> "FrozenDiscriminator":
        model.eval()
        weights, strides, paddings, slope = [], [], [], 0.2
        for layer in model.discriminator.main:
            if isinstance(layer, nn.Conv2d):
                w = layer.normalised_weight() if isinstance(layer, SNConv2d) else layer.weight
                weights.append(w.detach().clone())
                strides.append(layer.stride[0])
                paddings.append(layer.padding[0])
            elif isinstance(layer, nn.LeakyReLU):
                slope = layer.negative_slope
            else:
                raise TypeError(f"a personal discriminator has no {type(layer).__name__} layers")
        return cls(
            tuple(weights),
            tuple(strides),
            tuple(paddings),
            slope,
            model.platt.detach().clone(),
            model.greyscale,
        )

    def shape_key(self) -> tuple:
        return (
            tuple(w.shape for w in self.weights),
            self.strides,
            self.paddings,
            self.slope,
            self.greyscale,
        )


# Below this many output pixels a layer runs as unfold + batched matmul instead of a grouped
# convolution: on 2 CPU cores the grouped 96->192 layer (4x4 output) took 27 ms at k=32, the
# matmul 6.7 ms, while at 16x16 the grouped convolution was the faster (3.6 against 12 ms).
_MATMUL_BELOW_PX = 64


def _grouped_layer(h: torch.Tensor, w: torch.Tensor, k: int, stride: int, padding: int):
    """(1, k*cin, H, W) through k convolutions (k*cout, cin, kh, kw) -> (1, k*cout, H', W')."""
    cout_k, cin, kh, kw = w.shape
    out_h = (h.shape[2] + 2 * padding - kh) // stride + 1
    out_w = (h.shape[3] + 2 * padding - kw) // stride + 1
    if out_h * out_w >= _MATMUL_BELOW_PX:
        return F.conv2d(h, w, None, stride, padding, groups=k)
    cols = F.unfold(h, (kh, kw), padding=padding, stride=stride)  # (1, k*cin*kh*kw, L)
    cols = cols.view(k, cin * kh * kw, out_h * out_w)
    out = torch.bmm(w.view(k, cout_k // k, cin * kh * kw), cols)
    return out.view(1, cout_k, out_h, out_w)


@dataclass(frozen=True)
class StackedDiscriminators:
    """k frozen models of one shape, each layer's weights concatenated (the costly part at k=32:
    about 1.6 MB of float32 per model), ready for grouped_logits."""

    weights: tuple[torch.Tensor, ...]
    platt: torch.Tensor  # (k, 2)
    first: FrozenDiscriminator

    @classmethod
    def of(cls, models: Sequence[FrozenDiscriminator]) -> "StackedDiscriminators":
        layers = range(len(models[0].weights))
        weights = tuple(torch.cat([m.weights[i] for m in models]) for i in layers)
        return cls(weights, torch.stack([m.platt for m in models]), models[0])


def grouped_logits(stack: StackedDiscriminators, x: torch.Tensor) -> torch.Tensor:
    """Calibrated logits (k,) of one (1, 3, H, W) input under the k stacked models."""
    first, k = stack.first, len(stack.platt)
    if first.greyscale:
        x = x.mean(1, keepdim=True).expand_as(x)
    # the first layer reads the shared input once, with k times the output channels
    h = F.conv2d(x, stack.weights[0], None, first.strides[0], first.paddings[0])
    for i in range(1, len(stack.weights)):
        h = F.leaky_relu(h, first.slope)
        h = _grouped_layer(h, stack.weights[i], k, first.strides[i], first.paddings[i])
    return stack.platt[:, 0] * h.reshape(k) + stack.platt[:, 1]


class PersonalDiscriminators:
    """Keywords:
    load: person id -> the stored personal discriminator's bytes (Store.artifact).
    device: where the models live and run.
    capacity: how many persons' models the cache keeps on the device (about 0.7 MB each).
    retry_s: a model that failed to load (ArtifactError) is not read again for this long; the
    same error is raised meanwhile, so a broken file costs one read a period, not one a query.
    """

    def __init__(
        self,
        load: Callable[[int], bytes],
        device: torch.device | str = "cpu",
        capacity: int = 512,
        retry_s: float = 60.0,
    ):
        self.load = load
        self.device = torch.device(device)
        self.capacity = capacity
        self.retry_s = retry_s
        self._broken: dict[int, tuple[float, ArtifactError]] = {}  # person -> (when, why)
        self.failed_loads = 0  # reads that raised ArtifactError
        self._cache: OrderedDict[int, tuple[CalibratedDiscriminator, FrozenDiscriminator]] = (
            OrderedDict()
        )
        # the stacks of the last few shortlists: a person at the door sends frame after frame
        self._stacks: OrderedDict[tuple[int, ...], StackedDiscriminators] = OrderedDict()
        self.stack_capacity = 8
        self.loads = 0  # cache misses, for the benchmark and the tests

    def _entry(self, person_id: int) -> tuple[CalibratedDiscriminator, FrozenDiscriminator]:
        entry = self._cache.get(person_id)
        if entry is None:
            broken = self._broken.get(person_id)
            if broken is not None and time.monotonic() - broken[0] < self.retry_s:
                raise broken[1]
            try:
                model = CalibratedDiscriminator.from_bytes(self.load(person_id), self.device)
            except ArtifactError as error:
                self._broken[person_id] = (time.monotonic(), error)
                self.failed_loads += 1
                raise
            self._broken.pop(person_id, None)
            entry = (model, FrozenDiscriminator.of(model))
            self.loads += 1
            self._cache[person_id] = entry
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
                self._stacks.clear()
        self._cache.move_to_end(person_id)
        return entry

    def get(self, person_id: int) -> CalibratedDiscriminator:
        return self._entry(person_id)[0]

    def forget(self, person_id: int) -> None:
        """Drop a person's cached model (after a re-enrollment or a deletion)."""
        self._cache.pop(person_id, None)
        self._broken.pop(person_id, None)
        self._stacks.clear()

    @torch.no_grad()
    def score(self, person_ids: Sequence[int], crop_64: np.ndarray) -> np.ndarray:
        """Calibrated logits (k,) of one aligned 64 px RGB crop under each person's discriminator,
        in one grouped pass (one per architecture, should the stored models differ)."""
        frozen = [self._entry(p)[1] for p in person_ids]
        out = np.empty(len(frozen), dtype=np.float32)
        if not frozen:
            return out
        x = to_tensor(crop_64[None]).to(self.device)
        groups: dict[tuple, list[int]] = {}
        for i, m in enumerate(frozen):
            groups.setdefault(m.shape_key(), []).append(i)
        for members in groups.values():
            key = tuple(person_ids[i] for i in members)
            stack = self._stacks.get(key)
            if stack is None:
                stack = StackedDiscriminators.of([frozen[i] for i in members])
                self._stacks[key] = stack
                while len(self._stacks) > self.stack_capacity:
                    self._stacks.popitem(last=False)
            self._stacks.move_to_end(key)
            out[members] = grouped_logits(stack, x).float().cpu().numpy()
        return out

    def clear_stacks(self) -> None:
        """Forget the stacked shortlists (the benchmark's cold case)."""
        self._stacks.clear()

    @torch.no_grad()
    def score_each(self, person_ids: Sequence[int], crop_64: np.ndarray) -> np.ndarray:
        """The same logits from k separate calls of the stored modules: the reference the
        grouped pass is held to."""
        x = to_tensor(crop_64[None]).to(self.device)
        return np.array([float(self.get(p)(x)[0]) for p in person_ids], dtype=np.float32)
