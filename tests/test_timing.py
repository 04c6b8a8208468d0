import pytest
import torch
from torch import nn

from dlsaudio.ssl.methods import StepOutput
from dlsaudio.timing import T4_FLOPS, T4_STEP_OVERHEAD, t4_step_seconds, training_flops


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(5, 3, bias=False)

    def training_step(self, x1, x2, label=None):
        z1, z2 = self.encoder(x1), self.encoder(x2)
        return StepOutput((z1 * z2).sum(), z1, z2)


def test_training_flops_counts_forward_and_backward_and_keeps_gradients():
    model = Linear()
    model.encoder.weight.grad = torch.ones(3, 5)
    x = torch.randn(4, 5)
    # each matmul (4 x 5) @ (5 x 3): 2*4*5*3 FLOPs forward and as many backward for the weight
    # gradient (the input needs none); two of them, one per view
    assert training_flops(model, x, x) == 2 * 2 * (2 * 4 * 5 * 3)
    assert torch.equal(model.encoder.weight.grad, torch.ones(3, 5))


def test_t4_estimate():
    assert t4_step_seconds(2 * T4_FLOPS) == pytest.approx(2 + T4_STEP_OVERHEAD)
    with pytest.raises(ValueError, match="flops_per_step must be a non-negative number"):
        t4_step_seconds(-1)
