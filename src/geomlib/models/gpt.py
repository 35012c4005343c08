"""The nanoGPT-style Transformer: learned positions, pre-LayerNorm blocks, tied embeddings."""
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

__all__ = ["GPT"]


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: specs.GPT):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = cfg.dropout

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        if x.is_cuda or t > 64:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        else:  # measured: on CPU, for our short sequences, the plain math is ~3x faster than the fused kernel
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
            att = att.masked_fill(torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
            att = F.dropout(att.softmax(-1), self.dropout, self.training)
            y = att @ v
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c))


class MLP(nn.Module):
    def __init__(self, cfg: specs.GPT):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: specs.GPT):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(Decoder):
    """A nanoGPT-style decoder: learned positions, pre-LayerNorm blocks, tied token embeddings
    (``wte``, whose rows are the node embeddings the geometry metrics read)."""

    def __init__(self, cfg: specs.GPT, vocab_size: int, block_size: int):
        super().__init__()
        self.spec = cfg
        self.vocab_size, self.block_size = check_int("vocab_size", vocab_size, 1), check_int("block_size", block_size, 1)
        self.wte = nn.Embedding(vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, vocab_size, bias=False)
        self.apply(self._init)
        if cfg.scaled_residual_init:
            for name, p in self.named_parameters():  # GPT-2 scaled init of residual projections
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, 0.0, cfg.init_std / math.sqrt(2 * cfg.n_layer))
        nn.init.normal_(self.wte.weight, 0.0, cfg.emb_init_std or cfg.init_std)
        if cfg.pos_init_std is not None:
            nn.init.normal_(self.wpe.weight, 0.0, cfg.pos_init_std)
        if cfg.tied:
            self.lm_head.weight = self.wte.weight
        if cfg.freeze_embeddings:
            self.wte.weight.requires_grad_(False)

    def _init(self, m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, self.spec.init_std)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.block_size:
            raise ValueError(f"sequence length {t} exceeds block_size {self.block_size}")
        return self.drop(self.wte(idx) + self.wpe(torch.arange(t, device=idx.device)))

    def _stack(self) -> tuple[nn.ModuleList, nn.Module]:
        return self.h, self.ln_f
