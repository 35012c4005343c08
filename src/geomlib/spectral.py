"""Spectral bias: eigenpairs of the symmetrised random-walk operator and how much of an
embedding lies along each of them."""
from __future__ import annotations

import numpy as np
import scipy.linalg

from .geometry import _np
from .graphs import Graph

__all__ = ["linearisation_check", "walk_operator", "eigenpairs", "projection_profile", "energy_share", "participation_ratio",
           "laplacian_eigenmap", "principal_angles", "node2vec_linearisation"]


def walk_operator(graph: Graph) -> np.ndarray:
    """``D^-1 A + (D^-1 A)^T``: symmetric, so its eigenvectors are orthonormal."""
    a = graph.adjacency
    deg = a.sum(1, keepdims=True)
    if np.any(deg == 0):
        raise ValueError(f"{graph.name} has an isolated node: the random walk is undefined there")
    p = a / deg
    return p + p.T


def eigenpairs(graph: Graph, drop_trivial: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of :func:`walk_operator`; the trivial
    top one (the near-constant vector) is dropped by default."""
    vals, vecs = np.linalg.eigh(walk_operator(graph))
    vals, vecs = vals[::-1], vecs[:, ::-1]
    if drop_trivial:
        vals, vecs = vals[1:], vecs[:, 1:]
    return vals, vecs


def projection_profile(E, vecs: np.ndarray, normalise: bool = True) -> np.ndarray:
    """``||E^T e_i||`` for each eigenvector ``e_i`` (rows of ``E`` are the nodes), divided by the
    first entry when ``normalise``. Spectral bias: mass on the first few; "zigzag": mass at the end."""
    e = _np(E)[: vecs.shape[0]]
    prof = np.linalg.norm(vecs.T @ e, axis=1)
    if normalise:
        if prof[0] == 0:
            raise ValueError("the first projection is zero; cannot normalise by it")
        prof = prof / prof[0]
    return prof


def energy_share(E, vecs: np.ndarray, k: int, which: str = "top", center: bool = True) -> dict:
    """Share of the embedding's energy (squared Frobenius norm, after centring the rows) that
    lies in the span of the first (``which="top"``) or last (``"bottom"``: the most negative,
    "zigzag" directions) ``k`` eigenvectors, beside the share expected for a random
    ``k``-dimensional subspace of the ``N - 1``-dimensional space of centred vectors."""
    e = _np(E)[: vecs.shape[0]]
    if center:
        e = e - e.mean(0)
    sel = {"top": vecs[:, :k], "bottom": vecs[:, vecs.shape[1] - k:]}
    if which not in sel:
        raise ValueError(f"which must be 'top' or 'bottom', got {which!r}")
    total = float((e**2).sum())
    part = float(((sel[which].T @ e) ** 2).sum())
    return {"share": part / total, "random_baseline": k / (e.shape[0] - 1)}


def participation_ratio(profile: np.ndarray) -> float:
    """Effective number of eigen-directions an embedding uses: ``(sum p^2)^2 / sum p^4`` over the
    projection profile ``p``; 2.0 for an embedding spread evenly over exactly two directions."""
    p2 = np.asarray(profile, dtype=np.float64) ** 2
    return float(p2.sum() ** 2 / (p2**2).sum())


def laplacian_eigenmap(graph: Graph, k: int = 2) -> np.ndarray:
    """Belkin-Niyogi Laplacian eigenmap: the ``k`` generalised eigenvectors of ``L y = lam D y``
    with the smallest non-zero eigenvalues (N, k)."""
    a = graph.adjacency
    d = np.diag(a.sum(1))
    vals, vecs = scipy.linalg.eigh(d - a, d)
    return vecs[:, 1: k + 1]


def principal_angles(E, basis: np.ndarray) -> np.ndarray:
    """Principal angles (radians, ascending) between the column space of the centred embedding's
    top principal directions in node space and ``basis`` (N, k)."""
    e = _np(E)[: basis.shape[0]]
    e = e - e.mean(0)
    u, _, _ = np.linalg.svd(e, full_matrices=False)
    return np.sort(scipy.linalg.subspace_angles(u[:, : basis.shape[1]], basis))


def node2vec_linearisation(graph: Graph, edges: np.ndarray | None = None) -> np.ndarray:
    """The operator ``K`` of full-batch gradient descent on 1-hop Node2Vec near zero: with
    embeddings ``E`` small, the softmax is uniform and one step of size ``lr`` is
    ``E <- (I + lr K) E`` with ``K = C + C^T - (r 1^T + 1 r^T) / N``, where ``C[u, v]`` is the
    share of training examples that are ``u -> v`` and ``r`` its row sums. The directions with
    the largest eigenvalues of ``K`` grow fastest: the spectral bias, before any nonlinearity."""
    e = graph.directed_edges if edges is None else np.asarray(edges)
    n = graph.num_nodes
    c = np.zeros((n, n))
    np.add.at(c, (e[:, 0], e[:, 1]), 1.0 / len(e))
    r = c.sum(1)
    one = np.ones(n)
    return c + c.T - (np.outer(r, one) + np.outer(one, r)) / n


def linearisation_check(graph: Graph, dim: int, init_std: float, lr: float, steps: int, seed: int = 0) -> dict:
    """Train 1-hop Node2Vec from ``init_std`` for ``steps`` of full-batch gradient descent and
    compare the result with the linear prediction ``(I + lr K)^steps E0`` (``K`` from
    :func:`node2vec_linearisation`). Returns the relative error (small only in the linear,
    small-init regime), the eigenvalues of ``K``, each eigen-direction's measured growth and its
    predicted growth ``(1 + lr lam)^steps``, their correlation in log scale, and how much the
    embedding grew overall."""
    from .models import Node2Vec
    from .tasks import Vocab, edge_examples
    from .train import TrainConfig, set_seed, train

    set_seed(seed)
    n2v = Node2Vec(graph.num_nodes, dim, init_std=init_std)
    e0 = n2v.E.detach().double().numpy().copy()
    train(n2v, edge_examples(graph, Vocab(graph.num_nodes)),
          TrainConfig(steps=steps, lr=lr, optimizer="sgd", schedule="constant", grad_clip=None), progress=False)
    k = node2vec_linearisation(graph)
    predicted = np.linalg.matrix_power(np.eye(graph.num_nodes) + lr * k, steps) @ e0
    e_t = n2v.E.detach().double().numpy()
    kvals, kvecs = np.linalg.eigh(k)
    growth = np.linalg.norm(kvecs.T @ e_t, axis=1) / np.linalg.norm(kvecs.T @ e0, axis=1)
    predicted_growth = (1 + lr * kvals) ** steps
    return {"rel_err": float(np.linalg.norm(e_t - predicted) / np.linalg.norm(e_t)), "eigenvalues": kvals,
            "growth": growth, "predicted_growth": predicted_growth,
            "growth_correlation": float(np.corrcoef(np.log(growth), np.log(predicted_growth))[0, 1]),
            "norm_growth": float(np.linalg.norm(e_t) / np.linalg.norm(e0))}
