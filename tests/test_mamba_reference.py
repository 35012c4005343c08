"""Our pure-torch Mamba block against an independent implementation (mambapy, a test-only
dependency): with the same weights, the same outputs and the same gradients. Our block wraps the
mixer as ``x + mixer(LayerNorm(x))``; mambapy's ``MambaBlock`` is the mixer alone, so the test
compares ours with its norm set to the identity and the residual subtracted. Both compute the
scan's A, D and (ours) delta in float32 even for float64 inputs, hence float32 tolerances; a real
difference (a missing D, another dt, a shifted convolution) is of order 1."""
import pytest
import torch

from geomlib.models import MambaBlock
from geomlib.specs import Mamba

mambapy = pytest.importorskip("mambapy.mamba")


def _pair(d_model=16, d_state=8, d_conv=4, expand=2, seed=0):
    torch.manual_seed(seed)
    ours = MambaBlock(Mamba(n_layer=1, d_model=d_model, d_state=d_state, d_conv=d_conv, expand=expand),
                      compile_scan=False).double()
    ours.norm = torch.nn.Identity()
    ref = {}
    for pscan in (False, True):
        cfg = mambapy.MambaConfig(d_model=d_model, n_layers=1, d_state=d_state, expand_factor=expand, d_conv=d_conv,
                                  pscan=pscan)
        block = mambapy.MambaBlock(cfg).double()
        with torch.no_grad():  # ours -> theirs, tensor by tensor
            block.in_proj.weight.copy_(ours.in_proj.weight)
            block.conv1d.weight.copy_(ours.conv.weight)
            block.conv1d.bias.copy_(ours.conv.bias)
            block.x_proj.weight.copy_(ours.x_proj.weight)
            block.dt_proj.weight.copy_(ours.dt_proj.weight)
            block.dt_proj.bias.copy_(ours.dt_proj.bias)
            block.A_log.copy_(ours.A_log)
            block.D.copy_(ours.D)
            block.out_proj.weight.copy_(ours.out_proj.weight)
        ref[pscan] = block
    return ours, ref


NAMES = [("in_proj.weight", "in_proj.weight"), ("conv.weight", "conv1d.weight"), ("conv.bias", "conv1d.bias"),
         ("x_proj.weight", "x_proj.weight"), ("dt_proj.weight", "dt_proj.weight"), ("dt_proj.bias", "dt_proj.bias"),
         ("A_log", "A_log"), ("D", "D"), ("out_proj.weight", "out_proj.weight")]


@pytest.mark.parametrize("pscan", [False, True], ids=["sequential", "parallel-scan"])
@pytest.mark.parametrize("shape", [(3, 8, 16, 8), (2, 5, 24, 4)], ids=["b3-t8-d16", "b2-t5-d24"])
def test_our_block_matches_mambapy_in_outputs_and_gradients(pscan, shape):
    b, t, d, n = shape
    ours, refs = _pair(d_model=d, d_state=n)
    ref = refs[pscan]
    x = torch.randn(b, t, d, dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ours = ours(x1) - x1  # the mixer alone
    y_ref = ref(x2)
    torch.testing.assert_close(y_ours, y_ref, rtol=1e-5, atol=1e-6)
    w = torch.randn_like(y_ref)
    (y_ours * w).sum().backward()
    (y_ref * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)
    ours_p, ref_p = dict(ours.named_parameters()), dict(ref.named_parameters())
    for a, r in NAMES:
        torch.testing.assert_close(ours_p[a].grad, ref_p[r].grad, rtol=1e-5, atol=1e-6, msg=f"gradient of {a}")


def test_the_reference_init_of_both_agrees_in_distribution():
    """Both draw dt in [1e-3, 0.1] (softplus of the bias) and A = -(1..N) per channel."""
    ours, refs = _pair(d_model=64, d_state=16)
    fresh = mambapy.MambaBlock(mambapy.MambaConfig(d_model=64, n_layers=1, d_state=16))
    for block in (ours, fresh):
        dt = torch.nn.functional.softplus(block.dt_proj.bias.float())
        assert 1e-3 * 0.99 <= dt.min() and dt.max() <= 0.1 * 1.01
        torch.testing.assert_close(-torch.exp(block.A_log.float())[0], -torch.arange(1, 17, dtype=torch.float32))


def test_the_comparison_catches_a_broken_block():
    ours, refs = _pair()
    with torch.no_grad():
        ours.D.zero_()  # drop the skip term D * u
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(ours(x) - x, refs[False](x), rtol=1e-5, atol=1e-6)
