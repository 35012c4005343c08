"""The shallow models: no context, the query node is the input."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import _logits_and_loss, _node_rows

__all__ = ["LinearNet", "Node2Vec", "node2vec_loss"]


class LinearNet(nn.Module):
    """``logits(u) = E_u W E^T`` over the ``num_nodes`` nodes.

    ``freeze_embeddings=True`` keeps ``E`` at its random init: every edge must then be stored
    in ``W`` as a lookup (associative memory), none in the geometry of ``E``.
    """

    def __init__(self, num_nodes: int, width: int, init_std: float = 0.02, w_init_std: float | None = None,
                 freeze_embeddings: bool = False, dropout: float = 0.0, dropout_after_w: bool = False):
        super().__init__()
        self.dropout_after_w = dropout_after_w  # the release: logits = E drop(W E_u); else drop(E_u) W E^T
        if num_nodes < 2 or width < 1:
            raise ValueError(f"LinearNet needs num_nodes >= 2 and width >= 1, got {num_nodes}, {width}")
        self.num_nodes = num_nodes
        self.E = nn.Parameter(torch.randn(num_nodes, width) * init_std, requires_grad=not freeze_embeddings)
        self.W = nn.Parameter(torch.randn(width, width) * (init_std if w_init_std is None else w_init_std))
        self.drop = nn.Dropout(dropout)

    def scores(self) -> torch.Tensor:
        """All logits, (N, N): row u is the model's answer to ``[EDGE] u``."""
        return self.E @ self.W @ self.E.T

    def forward(self, idx, targets=None):
        rows = self.E[_node_rows(idx, targets, self.num_nodes)]
        if self.dropout_after_w:
            return _logits_and_loss(rows, targets, lambda h: self.drop(h @ self.W) @ self.E.T)
        return _logits_and_loss(self.drop(rows), targets, lambda h: h @ self.W @ self.E.T)

    def token_embeddings(self) -> torch.Tensor:
        return self.E.detach()


class Node2Vec(nn.Module):
    """1-hop Node2Vec with a full softmax and tied embeddings: only a table ``E``.

    It has no matrix in which to store a lookup, so whatever it memorises is geometry.
    """

    LOSSES = ("mean", "node_sum")

    def __init__(self, num_nodes: int, dim: int = 100, init_std: float = 0.02, loss: str = "mean"):
        super().__init__()
        if num_nodes < 2 or dim < 1:
            raise ValueError(f"Node2Vec needs num_nodes >= 2 and dim >= 1, got {num_nodes}, {dim}")
        if loss not in self.LOSSES:
            raise ValueError(f"Node2Vec loss must be one of {self.LOSSES}, got {loss!r}")
        self.num_nodes = num_nodes
        self.loss = loss  # "mean": over the batch's edges; "node_sum" (the release): per source node, summed
        self.E = nn.Parameter(torch.randn(num_nodes, dim) * init_std)

    def scores(self) -> torch.Tensor:
        return self.E @ self.E.T

    def forward(self, idx, targets=None):
        rows = _node_rows(idx, targets, self.num_nodes)
        if targets is None or self.loss == "mean":
            return _logits_and_loss(self.E[rows], targets, lambda h: h @ self.E.T)
        # the release's objective: the sum over source nodes u of the mean over u's neighbours of
        # -log P(v | u), i.e. each edge's loss weighted by 1 / (edges from u in the batch), summed
        mask = targets >= 0
        u = rows[mask]
        logits = self.E[u] @ self.E.T
        ce = F.cross_entropy(logits.float(), targets[mask], reduction="none")
        return logits, (ce / torch.bincount(u, minlength=self.num_nodes)[u]).sum()

    def token_embeddings(self) -> torch.Tensor:
        return self.E.detach()


def node2vec_loss(E: torch.Tensor, directed_edges: torch.Tensor) -> torch.Tensor:
    """1-hop Node2Vec's objective on any embedding table ``E`` (rows = nodes): mean over the
    directed edges ``u -> v`` of ``-log softmax_v(<E_u, E_w>)``, full softmax over the rows. As an
    auxiliary loss it pulls a sequence model's token embeddings towards Node2Vec's geometry."""
    return F.cross_entropy(E[directed_edges[:, 0]] @ E.T, directed_edges[:, 1])
