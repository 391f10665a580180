"""Adam without torch.optim: torch's optimisers import torch._dynamo on first use, about 1 s of
every process that trains a small network during an analysis (the emotion-from-parameters
network, the micro-expression refiner) on this machine."""

from __future__ import annotations

import torch


class Adam:
    """Adam with optional L2 weight decay, computed as torch.optim.Adam computes it (up to the
    order of floating-point operations). One step count for all parameters: a parameter without a
    gradient in a step is left as it is, and is expected to have one in most steps."""

    def __init__(self, params: list[torch.Tensor], lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.lr, self.weight_decay, self.betas, self.eps = list(params), lr, weight_decay, betas, eps
        self.first = [torch.zeros_like(q) for q in self.params]
        self.second = [torch.zeros_like(q) for q in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for q in self.params:
            q.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        b1, b2 = self.betas
        for q, m, v in zip(self.params, self.first, self.second):
            if q.grad is None:  # not in this loss (for example an output head without a target)
                continue
            grad = q.grad + self.weight_decay * q if self.weight_decay else q.grad
            m.mul_(b1).add_(grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denominator = (v / (1 - b2**self.steps)).sqrt_().add_(self.eps)
            q.addcdiv_(m, denominator, value=-self.lr / (1 - b1**self.steps))
