"""Which torch device to run on: CUDA when present and allowed, the CPU otherwise."""

import torch

from facegate.errors import ConfigurationError


def resolve_device(choice: str = "auto") -> torch.device:
    """Map the `device` setting ('auto', 'cpu', 'cuda') to a torch device; never assumes a GPU."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError(
            "FACEGATE_DEVICE=cuda but torch sees no CUDA device; set FACEGATE_DEVICE=auto or cpu"
        )
    return torch.device(choice)
