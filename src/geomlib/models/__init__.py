"""The models of the paper, in plain torch.

Every model maps a batch of token rows ``idx`` (B, T) to next-token logits and, given
``targets`` (B, T), negative where no loss is taken (the tasks write ``IGNORE = -100`` there), returns
``(logits, loss)`` with logits computed **only at the target positions** (the output matmul
over the vocabulary dominates the cost on CPU).

* :class:`~geomlib.models.gpt.GPT`: nanoGPT-style decoder, learned positions, pre-LayerNorm, tied embeddings.
* :class:`~geomlib.models.mamba.Mamba`: selective state-space blocks (pure torch, sequential scan), tied embeddings.
* :class:`~geomlib.models.shallow.LinearNet`: ``logits = E W E^T``; ``freeze_embeddings=True`` is the associative control.
* :class:`~geomlib.models.shallow.Node2Vec`: 1-hop, tied, full softmax: ``P(v | u) = softmax_v(<E_u, E_v>)``.

Each is built from its spec in :mod:`geomlib.specs` (the one place a model's settings are written)
and the task's sizes: ``build_model(specs.GPT(n_layer=2, n_head=4, n_embd=128), vocab_size=...,
block_size=...)``.

The two shallow models (LinearNet, Node2Vec) read only the token at each target position: they
have no context, the query node *is* the input.
"""
from __future__ import annotations

import torch.nn as nn

from ..specs import values
from .base import Decoder, check_tokens
from .gpt import GPT
from .mamba import Mamba, MambaBlock
from .shallow import LinearNet, Node2Vec, node2vec_loss

__all__ = ["Decoder", "GPT", "MambaBlock", "Mamba", "LinearNet", "Node2Vec", "node2vec_loss", "build_model",
           "count_parameters", "check_tokens"]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Distinct parameters (tied weights counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


_NETWORKS = {"gpt": GPT, "mamba": Mamba, "linear": LinearNet, "node2vec": Node2Vec}
_SIZES = {"gpt": ("vocab_size", "block_size"), "mamba": ("vocab_size",), "linear": ("num_nodes",),
          "node2vec": ("num_nodes",)}


def build_model(spec, compile_scan: bool = True, **sizes: int) -> nn.Module:
    """The untrained network of a model spec (:class:`geomlib.specs.GPT`, ``Mamba``, ``Linear`` or
    ``Node2Vec``) for a task of the given sizes: ``vocab_size`` and ``block_size`` for the GPT,
    ``vocab_size`` for the Mamba, ``num_nodes`` for the shallow models. ``compile_scan``: the
    Mamba's scan runs compiled where it can (how it runs, not what it computes)."""
    kind = getattr(type(spec), "kind", None)
    if kind not in _NETWORKS:
        raise TypeError(f"build_model takes a model spec from geomlib.specs (one of {sorted(_NETWORKS)}), got "
                        f"{type(spec).__name__}")
    needed = _SIZES[kind]
    if set(sizes) != set(needed):
        raise TypeError(f"a {kind} model is built with the task's sizes {', '.join(needed)}; got "
                        f"{', '.join(sorted(sizes)) or 'none'}")
    if kind == "gpt":
        return GPT(spec, **sizes)
    if kind == "mamba":
        return Mamba(spec, **sizes, compile_scan=compile_scan)
    return _NETWORKS[kind](**sizes, **{f.name: getattr(spec, f.name) for f in values(spec)})
