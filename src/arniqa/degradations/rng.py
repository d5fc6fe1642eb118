"""Random draws from an optional torch.Generator, moved to the data's device.

Drawing on the generator's own device and then moving keeps a seed's output identical whatever
device the images are on (a CPU generator can drive CUDA images, at the cost of a copy).
"""

from __future__ import annotations

import torch


def check_generator(generator) -> None:
    """Raise ValueError unless ``generator`` is a torch.Generator or None."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def _device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def rand(shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """U[0, 1) float32 of ``shape`` on ``device``."""
    return torch.rand(shape, generator=generator, device=_device(generator, device)).to(device)


def randint(low: int, high: int, shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Integers uniform on [low, high) (high exclusive), int64 on ``device``."""
    return torch.randint(low, high, shape, generator=generator, device=_device(generator, device)).to(device)


def randn_(out: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Fill ``out`` in place with N(0, 1), drawn on the generator's device, as :func:`rand` draws."""
    device = _device(generator, out.device)
    if device == out.device:
        return torch.randn(out.shape, generator=generator, device=device, out=out)
    return out.copy_(torch.randn(out.shape, generator=generator, device=device))
