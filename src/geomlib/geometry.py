"""Reading memory out of embedding geometry: cosines, geometric level, the nearest-child probe,
PCA, distance profiles, and the geometric margin of a linear net."""
from __future__ import annotations

import numpy as np
import torch

from .graphs import Graph

LOOKUP_BAND_Z = 2.0
"""Edge of the lookup band in :func:`margin_z` units for a z-score *averaged over 2 or 3 seeds*: a
memory whose mean z is above it stores edges in its geometry; at or below it, it is
indistinguishable from a lookup. Measured on trained lookups, the associative controls of
``data/precision.json`` (4 graphs x with/without self-edges x fp32/bf16 x 5 seeds): means of 2 or 3
of their seeds reach at most 1.2 (``tests/test_metrics.py`` keeps the band above them)."""
LOOKUP_BAND_Z_ONE_RUN = 3.0
"""The same edge for *one run's* z-score: single trained lookups spread wider (up to 2.7 over those
80 controls; 8 of 80 above 2)."""

__all__ = ["LOOKUP_BAND_Z", "LOOKUP_BAND_Z_ONE_RUN", "cosine_matrix", "geometric_level", "nearest_child_probe", "ancestor_probe", "hidden_probes",
           "pca", "cosine_by_distance",
           "two_hop_auc", "geometric_margin", "margin_z", "ring_order_fraction", "edge_contrast"]


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def cosine_matrix(E) -> np.ndarray:
    """Node-by-node cosine similarity of the rows of ``E``."""
    e = _np(E)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("an embedding row is exactly zero: its cosine similarity is undefined")
    e = e / norms
    return e @ e.T


def geometric_level(E, graph: Graph) -> float:
    """Mean cosine similarity between the embeddings of the two ends of each edge."""
    e = _np(E)[: graph.num_nodes]
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    u, v = graph.edges[:, 0], graph.edges[:, 1]
    return float(np.mean(np.sum(e[u] * e[v], axis=1)))


def nearest_child_probe(E, graph: Graph, arms=None) -> float:
    """Share of leaves (of ``arms``; default all) whose embedding is, among the root's children,
    most cosine-similar to their own arm's first node ``n1``. Chance is ``1/d``."""
    if not graph.is_path_star or graph.paths.shape[1] < 3:
        raise ValueError("the nearest-child probe needs a path-star graph with l >= 3")
    return ancestor_probe(E, graph, graph.paths.shape[1] - 2, arms)


def ancestor_probe(E, graph: Graph, k: int, arms=None) -> float:
    """Share of leaves (of ``arms``) whose embedding is, among all nodes at the depth of their
    ``k``-hop ancestor, most cosine-similar to that very ancestor. ``k = 1``: the leaf's parent;
    ``k = l - 2``: ``n1`` (the nearest-child probe). Chance is ``1/d``."""
    if not graph.is_path_star:
        raise ValueError("the ancestor probe needs a path-star graph")
    l = graph.paths.shape[1]
    if not 1 <= k <= l - 2:
        raise ValueError(f"k must be in 1..{l - 2} for l = {l}, got {k}")
    arms = np.arange(len(graph.paths)) if arms is None else np.asarray(arms)
    e = _np(E)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    candidates = graph.paths[:, l - 1 - k]
    sims = e[graph.paths[arms, -1]] @ e[candidates].T
    return float(np.mean(sims.argmax(1) == arms))


def _nearest_share(queries: np.ndarray, candidates: np.ndarray, answers: np.ndarray) -> float:
    """Share of ``queries`` rows whose most cosine-similar ``candidates`` row is ``answers``."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    c = candidates / np.maximum(np.linalg.norm(candidates, axis=1, keepdims=True), 1e-12)
    return float(np.mean((q @ c.T).argmax(1) == answers))


@torch.no_grad()
def hidden_probes(model, task, ridge: float = 1e-2) -> dict[str, dict[str, float]]:
    """Where a sequence model's read-out of ``n1`` is geometric: nearest-child probes on every
    layer's hidden state, not only on the token-embedding table.

    For each held-out leaf, the model reads the prompt ``[PATH] leaf [PAUSE] root`` (the root given,
    the position that predicts ``n1``). At each layer (``layer0`` = the model's input, then each
    block, then ``final``, what the head reads) and at two positions (``leaf``: the leaf's own
    token; ``readout``: the root's, where ``n1`` is predicted), three scores, each the share of
    held-out leaves whose own ``n1`` wins among the root's ``d`` children (chance ``1/d``):

    * ``embedding``: cosine nearest among the children's token-embedding rows;
    * ``hidden``: cosine nearest among the children's own hidden states (each child in the leaf's
      place in the same prompt, same layer and position);
    * ``linear``: a ridge-regression map from the hidden state to the ``n1`` embedding row, fitted
      on the training leaves (whose arms the held-out ones never share), then cosine nearest among
      the children's embedding rows: geometry a linear read-out finds in the hidden state.

    Returns ``{f"{layer}/{position}": {"embedding": ..., "hidden": ..., "linear": ...}}``."""
    graph, vocab = task.graph, task.vocab
    device = next(model.parameters()).device
    paths = graph.paths  # (d, l): root, n1, ..., leaf
    children = paths[:, 1]

    def prompts(nodes: np.ndarray) -> torch.Tensor:
        m = len(nodes)
        return torch.as_tensor(np.stack([np.full(m, vocab["[PATH]"]), nodes, np.full(m, vocab["[PAUSE]"]),
                                         np.full(m, paths[0, 0])], 1), device=device)

    def states(nodes: np.ndarray) -> list[np.ndarray]:
        return [_np(h) for h in model.hidden_states(prompts(nodes))]

    was_training = model.training
    model.eval()
    leaves, kids = states(paths[:, -1]), states(children)
    model.train(was_training)
    emb = _np(model.token_embeddings())[children]
    test, train = np.asarray(task.test_arms), np.asarray(task.train_arms)
    names = ["layer0"] + [f"layer{i}" for i in range(1, len(leaves) - 1)] + ["final"]
    out = {}
    for name, h_leaf, h_kid in zip(names, leaves, kids):
        for pos_name, pos in (("leaf", 1), ("readout", 3)):
            x = h_leaf[:, pos]
            w = np.linalg.solve(x[train].T @ x[train] + ridge * len(train) * np.eye(x.shape[1]), x[train].T @ emb[train])
            out[f"{name}/{pos_name}"] = {"embedding": _nearest_share(x[test], emb, test),
                                         "hidden": _nearest_share(x[test], h_kid[:, pos], test),
                                         "linear": _nearest_share(x[test] @ w, emb, test)}
    return out


def pca(E, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Project the centred rows of ``E`` on their top-``k`` principal axes.
    Returns (coordinates (N, k), explained-variance ratios (k,))."""
    e = _np(E)
    e = e - e.mean(0)
    u, s, _ = np.linalg.svd(e, full_matrices=False)
    var = s**2 / max((s**2).sum(), 1e-300)
    return u[:, :k] * s[:k], var[:k]


def cosine_by_distance(E, graph: Graph) -> dict[int, float]:
    """Mean cosine similarity of node pairs at each hop distance (1, 2, ...)."""
    cos, dist = cosine_matrix(E)[: graph.num_nodes, : graph.num_nodes], graph.distances
    out = {}
    for k in np.unique(dist[np.isfinite(dist) & (dist > 0)]).astype(int):
        out[int(k)] = float(cos[dist == k].mean())
    return out


def two_hop_auc(S, graph: Graph) -> float:
    """Probability that, for a node ``u``, a 2-hop neighbour scores above a node 3 or more hops
    away (or in another component) in row ``u`` of ``S``; ties count one half. 0.5 = no structure.
    No 2-hop pair is ever in the edge data: this is structure the data never stated."""
    s, dist = _np(S), graph.distances
    wins, total = 0.0, 0
    for u in range(graph.num_nodes):
        near, far = s[u, dist[u] == 2], s[u, dist[u] >= 3]
        if len(near) and len(far):
            diff = near[:, None] - far[None, :]
            wins += float((diff > 0).sum() + 0.5 * (diff == 0).sum())
            total += diff.size
    if total == 0:
        raise ValueError(f"{graph.name} has no (2-hop, far) node pairs to compare")
    return wins / total


def _margin_of(z: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """Mean over nodes of (best true-edge logit - best non-edge logit), self excluded, for one
    logit matrix ``(N, N)`` or a stack ``(..., N, N)``."""
    n = adj.shape[0]
    eye = np.eye(n, dtype=bool)
    true_best = np.where(adj & ~eye, z, -np.inf).max(-1)
    false_best = np.where(~adj & ~eye, z, -np.inf).max(-1)
    return (true_best - false_best).mean(-1)


def geometric_margin(E, W, graph: Graph) -> dict:
    """Read a linear net's memory off its geometry alone.

    With ``E = U S V^T`` keep only the diagonal of ``W`` in the right-singular basis,
    ``lam = diag(V^T W V)``; the *skewed* logits are ``E V diag(lam) V^T E^T``. The margin is the
    mean over nodes of (best true-edge logit - best non-edge logit), self excluded. Positive: the
    edges can be read off the geometry; negative: the memory sits in the off-diagonal,
    associative part of ``W``. Also returns the skewed logits' top-1 neighbour accuracy."""
    e, w = _np(E), _np(W)
    _, _, vt = np.linalg.svd(e, full_matrices=False)
    v = vt.T
    lam = np.diag(v.T @ w @ v)
    z = e @ v @ np.diag(lam) @ v.T @ e.T
    adj = graph.adjacency.astype(bool)
    zz = z.copy()
    np.fill_diagonal(zz, np.nan)
    top1 = np.nanargmax(zz, axis=1)
    return {"margin": float(_margin_of(z, adj)), "skewed_top1": float(adj[np.arange(len(z)), top1].mean()),
            "lam": lam}


def margin_z(E, W, graph: Graph, draws: int = 500, seed: int = 0) -> dict:
    """The geometric margin against its noise band: how far it lies above the margins of *lookup
    memories with the same answers*, i.e. random embeddings ``E'`` with ``W'`` chosen so that
    ``E' W' E'^T`` equals this net's logits ``S = E W E^T`` exactly.

    For such a lookup the skewed logits are ``U diag(diag(U^T S U)) U^T`` with ``U`` the left
    singular vectors of ``E'``, a uniformly random orthogonal matrix, so the band is sampled over
    ``draws`` random orthogonal ``U`` (no training, no width). Returns ``z`` (margin minus the
    band's mean, in units of its standard deviation; a lookup lies within about +-2), the margin,
    and the band's mean, standard deviation and 99th percentile."""
    e, w = _np(E), _np(W)
    S = e @ w @ e.T
    n = S.shape[0]
    adj = graph.adjacency.astype(bool)[:n, :n]
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((draws, n, n)))
    U = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]  # Haar-distributed orthogonal matrices
    d = np.einsum("bij,jk,bki->bi", U.transpose(0, 2, 1), S, U)  # diag(U^T S U) per draw
    band = _margin_of(np.einsum("bij,bj,bkj->bik", U, d, U), adj)
    margin = geometric_margin(e, w, graph)["margin"]
    mean, sd = float(band.mean()), float(band.std())
    return {"z": (margin - mean) / max(sd, 1e-12), "margin": margin, "band_mean": mean, "band_sd": sd,
            "band_p99": float(np.percentile(band, 99))}


def ring_order_fraction(E, graph: Graph) -> float:
    """Sort the nodes by their angle in the embedding's top-2 PCA plane and return the share of
    consecutive nodes (cyclically) that are joined by an edge: 1.0 when the PCA picture is the
    graph's own ring, about ``2/N`` for a random arrangement of a cycle."""
    xy, _ = pca(E[: graph.num_nodes], 2)
    order = np.argsort(np.arctan2(xy[:, 1], xy[:, 0]))
    a = graph.adjacency
    return float(np.mean(a[order, np.roll(order, -1)]))


def edge_contrast(E, graph: Graph) -> float:
    """Mean cosine over edges minus mean cosine over non-adjacent pairs (self excluded): the
    geometric level corrected for a common drift of all embeddings; about 0 for a lookup."""
    c = cosine_matrix(E)[: graph.num_nodes, : graph.num_nodes]
    adj = graph.adjacency.astype(bool)
    off = ~adj & ~np.eye(graph.num_nodes, dtype=bool)
    return float(c[adj].mean() - c[off].mean())
