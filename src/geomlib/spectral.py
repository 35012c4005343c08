"""Spectral bias: eigenpairs of the symmetrised random-walk operator and how much of an
embedding lies along each of them."""
from __future__ import annotations

import numpy as np
import scipy.linalg

from .geometry import _np
from .graphs import Graph

__all__ = ["walk_operator", "eigenpairs", "projection_profile", "energy_share", "laplacian_eigenmap",
           "principal_angles"]


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


def energy_share(E, vecs: np.ndarray, k: int, center: bool = True) -> dict:
    """Share of the embedding's energy (squared Frobenius norm, after centring the rows) that
    lies in the span of the first ``k`` eigenvectors, beside the share expected for a random
    ``k``-dimensional subspace of the ``N - 1``-dimensional space of centred vectors."""
    e = _np(E)[: vecs.shape[0]]
    if center:
        e = e - e.mean(0)
    total = float((e**2).sum())
    top = float(((vecs[:, :k].T @ e) ** 2).sum())
    return {"share": top / total, "random_baseline": k / (e.shape[0] - 1)}


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
