"""Graph families of the paper, with node ids randomly permuted but structure kept.

A :class:`Graph` stores its undirected edges in *token ids* (the random relabelling the
model sees) together with the structural facts the metrics and plots need: for a path-star,
the root, the arm and depth of every node and the root-to-leaf path of every arm.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx
import numpy as np

from .validate import check_int, check_num_nodes, check_seed

__all__ = ["Graph", "path_star", "cycle", "grid", "irregular16", "from_networkx", "tiny_graphs"]


@dataclass
class Graph:
    """An undirected graph whose nodes are tokens ``0..num_nodes-1``.

    ``order`` lists node ids in structural order (root, then arm by arm, for a path-star;
    around the ring for a cycle; row-major for a grid) so heatmaps can be drawn ordered.
    """

    name: str
    num_nodes: int
    edges: np.ndarray  # (E, 2) int64, undirected, each edge once
    order: np.ndarray  # (N,) node ids in structural order
    root: int | None = None
    arm: np.ndarray | None = None  # (N,) arm index of each node, -1 for the root
    depth: np.ndarray | None = None  # (N,) hops from the root
    paths: np.ndarray | None = None  # (d, l) root -> leaf node ids, one row per arm
    meta: dict = field(default_factory=dict)

    @property
    def is_path_star(self) -> bool:
        return self.paths is not None

    @property
    def leaves(self) -> np.ndarray:
        if self.paths is None:
            raise ValueError(f"graph {self.name!r} is not a path-star: it has no leaves")
        return self.paths[:, -1]

    @property
    def directed_edges(self) -> np.ndarray:
        """Both directions of every edge, shape (2E, 2)."""
        return np.concatenate([self.edges, self.edges[:, ::-1]], axis=0)

    @cached_property
    def adjacency(self) -> np.ndarray:
        a = np.zeros((self.num_nodes, self.num_nodes), dtype=np.float64)
        a[self.edges[:, 0], self.edges[:, 1]] = 1.0
        a[self.edges[:, 1], self.edges[:, 0]] = 1.0
        return a

    @cached_property
    def _edge_keys(self) -> np.ndarray:
        n = self.num_nodes
        return np.unique(np.concatenate([self.edges[:, 0] * n + self.edges[:, 1], self.edges[:, 1] * n + self.edges[:, 0]]))

    def has_edge(self, u, v) -> np.ndarray:
        """Whether ``u -- v`` is an edge, elementwise over arrays of node ids; no N x N matrix (a
        path-star of 10^4 arms has 5 x 10^4 nodes)."""
        u, v = np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64)
        keys = u * self.num_nodes + v
        valid = (u >= 0) & (u < self.num_nodes) & (v >= 0) & (v < self.num_nodes)
        pos = np.searchsorted(self._edge_keys, keys)
        found = self._edge_keys[np.minimum(pos, len(self._edge_keys) - 1)] == keys
        return valid & found

    @cached_property
    def degree(self) -> np.ndarray:
        return np.bincount(self.edges.ravel(), minlength=self.num_nodes)

    def to_networkx(self) -> nx.Graph:
        g = nx.Graph()
        g.add_nodes_from(range(self.num_nodes))
        g.add_edges_from(map(tuple, self.edges.tolist()))
        return g

    @cached_property
    def distances(self) -> np.ndarray:
        """All-pairs hop distances (N x N, ``inf`` between components). Tiny graphs only."""
        if self.num_nodes > 5000:
            raise ValueError("all-pairs distances are for small graphs (<= 5000 nodes)")
        d = np.full((self.num_nodes, self.num_nodes), np.inf)
        for u, lengths in nx.all_pairs_shortest_path_length(self.to_networkx()):
            for v, k in lengths.items():
                d[u, v] = k
        return d

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, nodes={self.num_nodes}, edges={len(self.edges)})"


def _permutation(n: int, seed: int | None) -> np.ndarray:
    """perm[structural index] = token id. ``seed=None`` keeps the structural ids."""
    if seed is None:
        return np.arange(n)
    return np.random.default_rng(check_seed(seed)).permutation(n)


def path_star(d: int, l: int, seed: int | None = 0) -> Graph:
    """Path-star graph: a root with ``d`` arms, each root-to-leaf path has ``l`` nodes.

    ``N = d * (l - 1) + 1``. Node ids are a random permutation drawn from ``seed``.
    """
    d = check_int("d (number of arms)", d, 1)
    l = check_int("l (nodes per root-to-leaf path, root included)", l, 2)
    n = check_num_nodes(f"path_star(d={d}, l={l})", d * (l - 1) + 1)
    perm = _permutation(n, seed)
    # structural ids: root 0, arm a holds 1 + a*(l-1) + (0..l-2) from the root outwards
    struct = np.concatenate(
        [np.zeros((d, 1), np.int64), 1 + np.arange(d)[:, None] * (l - 1) + np.arange(l - 1)[None, :]], axis=1
    )
    paths = perm[struct]
    edges = np.stack([paths[:, :-1].ravel(), paths[:, 1:].ravel()], axis=1).astype(np.int64)
    arm = np.full(n, -1, np.int64)
    depth = np.zeros(n, np.int64)
    arm[paths[:, 1:]] = np.arange(d)[:, None]
    depth[paths] = np.arange(l)[None, :]
    order = np.concatenate([paths[:1, 0], paths[:, 1:].ravel()])
    return Graph(f"path-star(d={d}, l={l})", n, edges, order, int(paths[0, 0]), arm, depth, paths,
                 meta=dict(kind="path_star", d=d, l=l, seed=seed))


def cycle(n: int, seed: int | None = 0) -> Graph:
    """Cycle of ``n`` nodes (n >= 3)."""
    n = check_num_nodes(f"cycle({n})", check_int("n (cycle length)", n, 3))
    perm = _permutation(n, seed)
    s = np.arange(n)
    edges = np.stack([perm[s], perm[(s + 1) % n]], axis=1).astype(np.int64)
    return Graph(f"cycle({n})", n, edges, perm[s], meta=dict(kind="cycle", n=n, seed=seed))


def grid(rows: int, cols: int, seed: int | None = 0) -> Graph:
    """``rows x cols`` square lattice (no wrap-around)."""
    rows = check_int("rows", rows, 1)
    cols = check_int("cols", cols, 1)
    if rows * cols < 2:
        raise ValueError("a grid needs at least 2 nodes")
    n = check_num_nodes(f"grid({rows}x{cols})", rows * cols)
    perm = _permutation(n, seed)
    idx = np.arange(n).reshape(rows, cols)
    pairs = [np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1), np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1)]
    edges = perm[np.concatenate(pairs)].astype(np.int64)
    return Graph(f"grid({rows}x{cols})", n, edges, perm[np.arange(n)],
                 meta=dict(kind="grid", rows=rows, cols=cols, seed=seed))


def irregular16(seed: int | None = 0) -> Graph:
    """The irregular 16-node graph of the authors' release: a 12-node ring with chords
    (1, 3) and (5, 8), plus a separate K4 on nodes 12..15."""
    ring = [(i, (i + 1) % 12) for i in range(12)] + [(1, 3), (5, 8)]
    k4 = [(a, b) for a in range(12, 16) for b in range(a + 1, 16)]
    g = from_networkx(nx.Graph(ring + k4), seed=seed, name="irregular(16)")
    g.meta["kind"] = "irregular16"
    return g


def from_networkx(g: nx.Graph, seed: int | None = 0, name: str | None = None) -> Graph:
    """Any undirected networkx graph; nodes are relabelled to random token ids."""
    if g.is_directed():
        raise ValueError("from_networkx expects an undirected graph")
    check_num_nodes(f"graph {name or ''}".strip(), g.number_of_nodes())
    nodes = sorted(g.nodes())
    if len(nodes) < 2:
        raise ValueError("a graph needs at least 2 nodes")
    if nx.number_of_selfloops(g):
        raise ValueError("self-loops are not allowed; use the self-edge task option instead")
    index = {v: i for i, v in enumerate(nodes)}
    perm = _permutation(len(nodes), seed)
    edges = np.array([[perm[index[a]], perm[index[b]]] for a, b in g.edges()], dtype=np.int64).reshape(-1, 2)
    return Graph(name or f"graph({len(nodes)})", len(nodes), edges, perm[np.arange(len(nodes))],
                 meta=dict(kind="networkx", seed=seed))


def tiny_graphs(seed: int | None = 0) -> dict[str, Graph]:
    """The four tiny graphs of the mechanism studies."""
    return {
        "path-star": path_star(4, 5, seed),
        "grid": grid(4, 4, seed),
        "cycle": cycle(15, seed),
        "irregular": irregular16(seed),
    }
