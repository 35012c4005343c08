"""The models of the paper, in plain torch.

Every model maps a batch of token rows ``idx`` (B, T) to next-token logits and, given
``targets`` (B, T), negative where no loss is taken (the tasks write ``IGNORE = -100`` there), returns
``(logits, loss)`` with logits computed **only at the target positions** (the output matmul
over the vocabulary dominates the cost on CPU).

* :class:`~geomlib.models.gpt.GPT`: nanoGPT-style decoder, learned positions, pre-LayerNorm, tied embeddings.
* :class:`~geomlib.models.mamba.Mamba`: selective state-space blocks (pure torch, sequential scan), tied embeddings.
* :class:`~geomlib.models.shallow.LinearNet`: ``logits = E W E^T``; ``freeze_embeddings=True`` is the associative control.
* :class:`~geomlib.models.shallow.Node2Vec`: 1-hop, tied, full softmax: ``P(v | u) = softmax_v(<E_u, E_v>)``.

The two shallow models (LinearNet, Node2Vec) read only the token at each target position: they
have no context, the query node *is* the input.
"""
from __future__ import annotations

import torch.nn as nn

from .base import Decoder, check_tokens
from .gpt import GPT, GPTConfig
from .mamba import Mamba, MambaBlock, MambaConfig
from .shallow import LinearNet, Node2Vec, node2vec_loss

__all__ = ["GPTConfig", "GPT", "MambaConfig", "Mamba", "LinearNet", "Node2Vec", "build_model", "count_parameters"]
__all__ = ["Decoder", "GPTConfig", "GPT", "MambaConfig", "MambaBlock", "Mamba", "LinearNet", "Node2Vec",
           "node2vec_loss", "build_model", "count_parameters", "check_tokens"]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Distinct parameters (tied weights counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


_MODELS = {"gpt": (GPT, GPTConfig), "mamba": (Mamba, MambaConfig)}
_SHALLOW = {"linear": LinearNet, "node2vec": Node2Vec}


def build_model(kind: str, **config) -> nn.Module:
    """Build a model from a plain dict (as stored in presets and caches): ``"gpt"`` and
    ``"mamba"`` take their config fields; ``"linear"`` and ``"node2vec"`` take ``num_nodes`` and
    their constructor arguments."""
    try:
        if kind in _SHALLOW:
            return _SHALLOW[kind](**config)
        if kind in _MODELS:
            cls, cfg_cls = _MODELS[kind]
            return cls(cfg_cls(**config))
    except TypeError as e:
        raise ValueError(f"bad {kind} config: {e}") from None
    raise ValueError(f"unknown model kind {kind!r}; choose from {sorted(_MODELS) + sorted(_SHALLOW)}")
