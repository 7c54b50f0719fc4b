"""Weight averages the loop keeps beside the live weights: an exponential moving average (EMA) that is swapped
in for evaluation and becomes the result. Owns nothing of the loop itself (`core.engine.fit`)."""
from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    """Exponential moving average of a model's parameters, swapped in for evaluation and at the end."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self.live: list[torch.Tensor] | None = None

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))  # warm up from the first weights
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - decay)

    @torch.no_grad()
    def swap_in(self) -> None:
        self.live = [p.detach().clone() for p in self.params]
        for p, s in zip(self.params, self.shadow):
            p.copy_(s)

    @torch.no_grad()
    def swap_out(self) -> None:
        for p, live in zip(self.params, self.live or []):
            p.copy_(live)
        self.live = None
