"""Step 7 of the paper: the shortlisted candidates' personal discriminators scoring one query face
in parallel. Their parameters are stacked (torch.func.stack_module_state) and one vmapped forward
serves all k of them, on the GPU when present. Loaded models stay on the device in an LRU cache."""

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import astuple

import numpy as np
import torch

from gan.batched import Stacked
from gan.train import to_tensor
from gan.verifier import CalibratedDiscriminator


class PersonalDiscriminators:
    """Keywords:
    load: person id -> the stored personal discriminator's bytes (Store.artifact).
    device: where the models live and run.
    capacity: how many persons' models the cache keeps on the device (787 kB each in fp16,
        about 0.7 MB of float32 parameters each on the device).
    """

    def __init__(
        self,
        load: Callable[[int], bytes],
        device: torch.device | str = "cpu",
        capacity: int = 512,
    ):
        self.load = load
        self.device = torch.device(device)
        self.capacity = capacity
        self._cache: OrderedDict[int, CalibratedDiscriminator] = OrderedDict()
        self.loads = 0  # cache misses, for the benchmark and the tests

    def get(self, person_id: int) -> CalibratedDiscriminator:
        model = self._cache.get(person_id)
        if model is None:
            model = CalibratedDiscriminator.from_bytes(self.load(person_id), self.device)
            self.loads += 1
            self._cache[person_id] = model
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        self._cache.move_to_end(person_id)
        return model

    def forget(self, person_id: int) -> None:
        """Drop a person's cached model (after a re-enrollment or a deletion)."""
        self._cache.pop(person_id, None)

    @torch.no_grad()
    def score(self, person_ids: Sequence[int], crop_64: np.ndarray) -> np.ndarray:
        """Calibrated logits (k,) of one aligned 64 px RGB crop under each person's discriminator,
        in one batched pass (one per architecture, should the stored models differ)."""
        models = [self.get(p) for p in person_ids]
        out = torch.empty(len(models), dtype=torch.float32)
        if not models:
            return out.numpy()
        x = to_tensor(crop_64[None]).to(self.device)
        groups: dict[tuple, list[int]] = {}
        for i, m in enumerate(models):
            groups.setdefault((astuple(m.net), m.greyscale), []).append(i)
        for members in groups.values():
            stacked = Stacked([models[i] for i in members], training=False)
            logits = stacked(x, shared=True)  # (len(members), 1)
            out[members] = logits.reshape(len(members)).float().cpu()
        return out.numpy()

    @torch.no_grad()
    def score_each(self, person_ids: Sequence[int], crop_64: np.ndarray) -> np.ndarray:
        """The same logits from k separate calls: the reference the batched pass is held to."""
        x = to_tensor(crop_64[None]).to(self.device)
        return np.array([float(self.get(p)(x)[0]) for p in person_ids], dtype=np.float32)
