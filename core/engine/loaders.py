"""Mini-batch loaders for the engine: in-memory tensors, or a set composed afresh every epoch.

Both reshuffle (or recompose) from their own seeded `generator`, which the engine reseeds from the run's
config and `core.engine.resume` saves and restores, so batch order is part of a run's reproducible state.
"""
from __future__ import annotations

import math
from typing import Callable

import torch


class TensorLoader:
    """Mini-batches of in-memory tensors, reshuffled each epoch by a seeded generator."""

    def __init__(self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0):
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("TensorLoader needs tensors of equal length")
        self.tensors, self.batch_size, self.shuffle, self.drop_last = tensors, batch_size, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.tensors[0])
        return n // self.batch_size if self.drop_last and n >= self.batch_size else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.tensors[0])
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield tuple(t[idx] for t in self.tensors)


class ComposedLoader:
    """Mini-batches of a freshly composed set every epoch: `make(n, seed)` returns the tensors."""

    def __init__(self, make: Callable[[int, int], tuple], n: int, batch_size: int, seed: int = 0):
        self.make, self.n, self.batch_size = make, n, batch_size
        self.generator = torch.Generator().manual_seed(seed)  # the engine reseeds it from the config

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self):
        tensors = self.make(self.n, int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator)))
        for i in range(len(self)):
            yield tuple(t[i * self.batch_size:(i + 1) * self.batch_size] for t in tensors)
