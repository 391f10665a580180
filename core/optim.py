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
        """One step for every parameter with a gradient, as one multi-tensor (``_foreach``) call per
        operation: the refiner has 70 small parameters, and per-tensor calls took about 2.5 ms of
        its 70 ms step (cProfile)."""
        self.steps += 1
        b1, b2 = self.betas
        # parameters without a gradient are not in this loss (for example an output head without a target)
        live = [(q, m, v) for q, m, v in zip(self.params, self.first, self.second) if q.grad is not None]
        if not live:
            return
        params, first, second = (list(group) for group in zip(*live))
        grads = [q.grad for q in params]
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        torch._foreach_mul_(first, b1)
        torch._foreach_add_(first, grads, alpha=1 - b1)
        torch._foreach_mul_(second, b2)
        torch._foreach_addcmul_(second, grads, grads, value=1 - b2)
        denominators = torch._foreach_div(second, 1 - b2**self.steps)
        torch._foreach_sqrt_(denominators)
        torch._foreach_add_(denominators, self.eps)
        torch._foreach_addcdiv_(params, first, denominators, value=-self.lr / (1 - b1**self.steps))
