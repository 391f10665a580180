"""core/optim.py: Adam without torch.optim, against torch.optim.Adam."""

import pytest
import torch

from core.emotion.from_params import ParamEmotionNet
from core.optim import Adam


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_adam_takes_torch_s_steps(weight_decay):
    torch.manual_seed(0)
    ours = torch.randn(5, 3, requires_grad=True)
    theirs = ours.detach().clone().requires_grad_(True)
    target = torch.randn(5, 3)
    optimisers = [(ours, Adam([ours], lr=1e-2, weight_decay=weight_decay)),
                  (theirs, torch.optim.Adam([theirs], lr=1e-2, weight_decay=weight_decay))]
    start = ours.detach().clone()
    for _ in range(200):
        for parameter, optimiser in optimisers:
            optimiser.zero_grad()
            ((parameter.sin() - target) ** 2).sum().backward()
            optimiser.step()
    assert (ours - start).abs().max() > 0.5  # it moved a long way ...
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)  # ... as torch's did
    assert ours.grad is not None
    optimisers[0][1].zero_grad()
    assert ours.grad is None


def test_a_head_without_a_gradient_stays_and_the_rest_steps_as_torch_s_adam():
    torch.manual_seed(0)
    ours, reference = ParamEmotionNet(52), ParamEmotionNet(52)
    reference.load_state_dict(ours.state_dict())
    x = torch.rand(100, 52)
    steps = [(ours, Adam(list(ours.parameters()), lr=3e-3, weight_decay=1e-4)),
             (reference, torch.optim.Adam(reference.parameters(), lr=3e-3, weight_decay=1e-4))]
    for _ in range(50):
        for net, optimiser in steps:
            net.zero_grad()
            log_q, _ = net(x)  # the affect head gets no gradient: its weights stay
            (log_q[:, 1].mean() ** 2).backward()
            optimiser.step()
    for a, b in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert not torch.equal(ours.classes.weight, ParamEmotionNet(52).classes.weight)
