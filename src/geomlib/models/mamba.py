"""Mamba: selective state-space blocks in pure torch (a sequential scan, compiled where it can be),
tied embeddings, no positions; the release's block variants are options of its spec (:class:`geomlib.specs.Mamba`)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..validate import check_int
from .base import Decoder

if TYPE_CHECKING:
    from .. import specs

__all__ = ["MambaBlock", "Mamba", "selective_scan"]


class MambaBlock(nn.Module):
    """Selective SSM block (Gu & Dao 2023): in-proj, causal depthwise conv, input-dependent
    (delta, B, C), diagonal state update ``h_t = exp(delta A) h_{t-1} + delta B x_t``, gated output."""

    def __init__(self, cfg: specs.Mamba, compile_scan: bool = True):
        super().__init__()
        d_inner = cfg.expand * cfg.d_model
        self.dt_rank = math.ceil(cfg.d_model / 16)
        self.d_state = cfg.d_state
        self.compile_scan = compile_scan
        self.norm = nn.LayerNorm(cfg.d_model)
        self.in_proj = nn.Linear(cfg.d_model, 2 * d_inner, bias=False)
        self.conv = nn.Conv1d(d_inner, d_inner, cfg.d_conv, groups=d_inner, padding=cfg.d_conv - 1)
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * cfg.d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, cfg.d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, cfg.d_model, bias=False)
        with torch.no_grad():  # dt initialised in [1e-3, 1e-1] as in the reference implementation
            dt = torch.exp(torch.rand(d_inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.residual = cfg.residual
        if cfg.release_init:
            for lin in (self.in_proj, self.x_proj, self.dt_proj, self.out_proj):
                nn.init.normal_(lin.weight, 0.0, cfg.init_std)
                if lin.bias is not None:
                    nn.init.zeros_(lin.bias)
        if cfg.no_decay_ssm:  # read by the trainer's AdamW parameter groups
            for p in (self.A_log, self.D, self.conv.weight, self.conv.bias, self.dt_proj.bias):
                p._no_weight_decay = True

    def forward(self, x):
        b, t, _ = x.shape
        xz = self.in_proj(self.norm(x))
        u, z = xz.chunk(2, dim=-1)
        u = F.silu(self._causal_conv(u))
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt)).float()  # (b, t, d_inner)
        A = -torch.exp(self.A_log.float())  # (d_inner, n)
        y = _scan(self.compile_scan)(delta, A, B.float(), C.float(), u.float())
        y = y.to(u.dtype) + u * self.D
        out = self.out_proj(y * F.silu(z))
        return x + out if self.residual else out

    def _causal_conv(self, u):
        """The depthwise causal convolution over time, as ``d_conv`` shifted multiply-adds: the
        same weights as ``self.conv`` but about 10x cheaper than Conv1d on these short sequences."""
        k, t = self.conv.weight.shape[-1], u.shape[1]
        w = self.conv.weight[:, 0, :]  # (d_inner, k); tap k-1 multiplies the current token
        padded = F.pad(u, (0, 0, k - 1, 0))
        out = self.conv.bias
        for j in range(k):
            out = out + padded[:, j: j + t] * w[:, j]
        return out


def selective_scan(delta, A, B, C, u):
    """The selective-SSM recurrence ``h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t``,
    ``y_t = C_t . h_t``, with ``delta, u: (b, t, d)``, ``A: (d, n)``, ``B, C: (b, t, n)``; returns
    ``y: (b, t, d)``. Written per step so that a compiler can fuse each step into one loop and
    never materialise the ``(b, t, d, n)`` tensors (sequences here are short)."""
    h = torch.zeros(u.shape[0], u.shape[2], A.shape[1], device=u.device, dtype=u.dtype)
    ys = []
    for i in range(u.shape[1]):
        h = torch.exp(delta[:, i, :, None] * A) * h + (delta[:, i, :, None] * u[:, i, :, None]) * B[:, i, None, :]
        ys.append((h * C[:, i, None, :]).sum(-1))
    return torch.stack(ys, 1)


_COMPILED: dict[str, object] = {}


def _scan(compile_scan: bool):
    """:func:`selective_scan`, compiled with ``torch.compile`` for training when asked and
    possible (3-4x faster on CPU here; about 20 s of compilation per sequence length). If compilation fails on
    this platform, warn once and run the plain version: the same numbers, only slower."""
    if not compile_scan or _COMPILED.get("failed") or not torch.is_grad_enabled():
        return selective_scan  # evaluation (no grad) is cheap, and greedy decoding's growing
        # lengths would each cost a compilation
    return _compiled_scan


def _compiled_scan(*args):
    try:
        if "fn" not in _COMPILED:
            fn = torch.compile(selective_scan, dynamic=True)
            # a trial forward *and backward* on copies of the first inputs: a compiled backward that
            # fails would otherwise escape later, from ``loss.backward()``, past this fallback
            trial = [a.detach().clone().requires_grad_(a.is_floating_point()) for a in args]
            fn(*trial).float().sum().backward()
            _COMPILED["fn"] = fn
        return _COMPILED["fn"](*args)
    except Exception as e:  # noqa: BLE001 - inductor needs a C++ toolchain; fall back loudly
        import warnings
        warnings.warn(f"torch.compile of the Mamba scan failed ({type(e).__name__}: {e}); using the "
                      "uncompiled scan (same results, slower)", RuntimeWarning, stacklevel=2)
        _COMPILED["failed"] = True
        return selective_scan(*args)


class Mamba(Decoder):
    """A stack of selective state-space blocks (pure torch) with tied token embeddings and no
    positional embeddings."""

    def __init__(self, cfg: specs.Mamba, vocab_size: int, compile_scan: bool = True):
        """``compile_scan``: torch.compile the selective scan (falls back to eager, with a warning);
        how the scan runs, not what it computes, so not part of the spec."""
        super().__init__()
        self.spec = cfg
        self.vocab_size = check_int("vocab_size", vocab_size, 1)
        self.wte = nn.Embedding(vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(MambaBlock(cfg, compile_scan) for _ in range(cfg.n_layer))
        self.norm_f = nn.LayerNorm(cfg.d_model) if cfg.final_norm else nn.Identity()
        self.lm_head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        nn.init.normal_(self.wte.weight, 0.0, cfg.init_std)
        nn.init.normal_(self.lm_head.weight, 0.0, cfg.init_std)
        if cfg.tied:
            self.lm_head.weight = self.wte.weight
        if cfg.freeze_embeddings:
            self.wte.weight.requires_grad_(False)

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        return self.wte(idx)

    def _stack(self) -> tuple[nn.ModuleList, nn.Module]:
        return self.layers, self.norm_f
