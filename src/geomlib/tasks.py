"""Token vocabulary and the training examples of the paper's tasks, built as tensors.

Every example is a pair ``(inputs, targets)`` of equal-length token rows; ``targets`` holds
:data:`IGNORE` wherever no loss is taken (the prefix), so a model only pays for the tokens it
is asked to predict.

* Edge memorisation: ``[EDGE] u`` -> ``v``.
* Path finding: ``[PATH] leaf [PAUSE]`` -> ``root n1 ... leaf`` (teacher-forced).
* In-context path-star (Bachmann & Nagarajan): a shuffled edge list, ``[QUERY] source goal [EQ]``
  -> the path from source to goal.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch

from .graphs import Graph, path_star
from .validate import check_seed

__all__ = ["IGNORE", "Vocab", "Examples", "edge_examples", "path_examples", "split_arms",
           "PathStarTask", "pathstar_task", "InContextPathStar"]

#: The target of a position that takes no loss (the prompt): ``cross_entropy``'s ignore index.
IGNORE = -100


@dataclass(frozen=True)
class Vocab:
    """Node tokens ``0..num_nodes-1`` followed by the special tokens."""

    num_nodes: int
    specials: tuple[str, ...] = ("[EDGE]", "[PATH]", "[PAUSE]", "[QUERY]", "[EQ]")

    def __post_init__(self):
        if isinstance(self.num_nodes, bool) or not isinstance(self.num_nodes, numbers.Integral) or self.num_nodes < 1:
            raise ValueError(f"Vocab.num_nodes must be an integer >= 1 (the graph's node count), got {self.num_nodes!r}")

    def __getitem__(self, name: str) -> int:
        try:
            return self.num_nodes + self.specials.index(name)
        except ValueError:
            raise KeyError(f"unknown special token {name!r}; known: {self.specials}") from None

    @property
    def size(self) -> int:
        return self.num_nodes + len(self.specials)

    def decode(self, tokens) -> list[str]:
        out = []
        for t in np.asarray(tokens).ravel().tolist():
            if t == IGNORE:
                out.append("_")
            elif 0 <= t < self.num_nodes:
                out.append(str(t))
            elif self.num_nodes <= t < self.size:
                out.append(self.specials[t - self.num_nodes])
            else:
                raise ValueError(f"token {t} is outside the vocabulary of size {self.size}")
        return out


@dataclass
class Examples:
    """A set of sequences: ``inputs`` and ``targets`` are (M, T) long tensors."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def __post_init__(self):
        if self.inputs.shape != self.targets.shape or self.inputs.dim() != 2:
            raise ValueError(f"inputs {tuple(self.inputs.shape)} and targets {tuple(self.targets.shape)} "
                             "must be equal (M, T) tensors")

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, idx) -> "Examples":
        return Examples(self.inputs[idx], self.targets[idx])

    @property
    def num_targets(self) -> int:
        return int((self.targets != IGNORE).sum())

    def to(self, device) -> "Examples":
        return Examples(self.inputs.to(device), self.targets.to(device))


def _check_vocab(graph: Graph, vocab: Vocab) -> None:
    """The vocabulary must give every node of ``graph`` its own token, below the special tokens."""
    if not isinstance(vocab, Vocab):
        raise TypeError(f"vocab must be a Vocab, got {type(vocab).__name__}")
    if vocab.num_nodes < graph.num_nodes:
        raise ValueError(f"Vocab({vocab.num_nodes}) is too small for {graph.name} ({graph.num_nodes} nodes): its special "
                         f"tokens would collide with node ids; use Vocab(graph.num_nodes)")


def _long(a) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.long)


def edge_examples(graph: Graph, vocab: Vocab, directions: str = "both", self_edges: bool = False) -> Examples:
    """One example ``[EDGE] u -> v`` per directed edge.

    ``directions``: ``"both"`` (every edge both ways) or ``"forward"`` (as stored: root -> leaf
    on a path-star). ``self_edges`` adds ``v -> v`` for every node.
    """
    _check_vocab(graph, vocab)
    if directions == "both":
        pairs = graph.directed_edges
    elif directions == "forward":
        pairs = graph.edges
    else:
        raise ValueError(f"directions must be 'both' or 'forward', got {directions!r}")
    if self_edges:
        nodes = np.arange(graph.num_nodes)
        pairs = np.concatenate([pairs, np.stack([nodes, nodes], 1)])
    m = len(pairs)
    inputs = np.stack([np.full(m, vocab["[EDGE]"]), pairs[:, 0]], 1)
    targets = np.stack([np.full(m, IGNORE), pairs[:, 1]], 1)
    return Examples(_long(inputs), _long(targets))


def path_examples(graph: Graph, vocab: Vocab, arms, order: str = "forward",
                  hardest_token: bool = False) -> Examples:
    """``[PATH] leaf [PAUSE]`` followed by the path of each arm in ``arms``.

    ``order="forward"`` targets ``root, n1, ..., leaf``; ``"reverse"`` targets ``leaf, ..., root``.
    ``hardest_token=True`` supervises only ``n1`` (the root's child on the leaf's arm).
    """
    if not graph.is_path_star:
        raise ValueError(f"path examples need a path-star graph, got {graph.name}")
    _check_vocab(graph, vocab)
    arms = np.asarray(arms, dtype=np.int64)
    paths = graph.paths[arms]
    if order == "reverse":
        paths = paths[:, ::-1]
    elif order != "forward":
        raise ValueError(f"order must be 'forward' or 'reverse', got {order!r}")
    if hardest_token and order != "forward":
        raise ValueError("hardest_token supervises n1 of a forward path; use order='forward'")
    m, l = paths.shape
    prefix = np.stack([np.full(m, vocab["[PATH]"]), graph.paths[arms, -1], np.full(m, vocab["[PAUSE]"])], 1)
    seq = np.concatenate([prefix, paths], 1)
    inputs, targets = seq[:, :-1].copy(), seq[:, 1:].copy()
    targets[:, :2] = IGNORE
    if hardest_token:
        keep = targets[:, 3].copy()  # position 3 sees [.. PAUSE root] and must say n1
        targets[:] = IGNORE
        targets[:, 3] = keep
    return Examples(_long(inputs), _long(targets))


def split_arms(d: int, train_fraction: float = 0.75, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split arm indices into (train, held-out); held-out arms' paths are never trained."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    seed = check_seed(seed)
    n_train = int(round(train_fraction * d))
    if n_train < 1 or n_train >= d:
        smallest = next(k for k in range(2, 10**6) if 1 <= round(train_fraction * k) < k)
        raise ValueError(f"with d={d} arms a {train_fraction:.2f} split leaves an empty side "
                         f"({n_train} training, {d - n_train} held-out arms); use d >= {smallest}")
    perm = np.random.default_rng(seed + 7919).permutation(d)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


@dataclass
class PathStarTask:
    """The in-weights path-star task: all edges, training paths, held-out paths."""

    graph: Graph
    vocab: Vocab
    edges: Examples
    train_paths: Examples
    test_paths: Examples
    train_arms: np.ndarray
    test_arms: np.ndarray

    @property
    def d(self) -> int:
        return self.graph.meta["d"]

    @property
    def l(self) -> int:
        return self.graph.meta["l"]

    def describe(self) -> str:
        return (f"{self.graph.name}: {self.graph.num_nodes:,} nodes, vocabulary {self.vocab.size:,}; "
                f"{len(self.edges):,} edge examples, {len(self.train_paths):,} training paths, "
                f"{len(self.test_paths):,} held-out paths (chance for n1: 1/{self.d})")


def pathstar_task(d: int, l: int, seed: int = 0, train_fraction: float = 0.75, directions: str = "both",
                  self_edges: bool = False, hardest_token: bool = False, order: str = "forward") -> PathStarTask:
    """Build the graph, its vocabulary, and the edge and path examples in one call.

    Held-out paths are always full forward paths (evaluation), whatever the training variant.
    """
    graph = path_star(d, l, seed)
    vocab = Vocab(graph.num_nodes)
    train_arms, test_arms = split_arms(d, train_fraction, seed)
    return PathStarTask(
        graph, vocab,
        edges=edge_examples(graph, vocab, directions, self_edges),
        train_paths=path_examples(graph, vocab, train_arms, order, hardest_token),
        test_paths=path_examples(graph, vocab, test_arms),
        train_arms=train_arms, test_arms=test_arms,
    )


class InContextPathStar:
    """Fresh path-star graphs given in context (Bachmann & Nagarajan 2024).

    Each example draws ``N = d(l-1)+1`` distinct labels out of ``num_labels``, lists the
    directed edges (root outwards) in random order as ``u v`` pairs, then
    ``[QUERY] source goal [EQ]`` and the target path ``source ... goal``.
    """

    def __init__(self, d: int, l: int, num_labels: int = 50):
        if d < 2 or l < 2:
            raise ValueError(f"in-context path-star needs d >= 2 and l >= 2, got d={d}, l={l}")
        n = d * (l - 1) + 1
        if num_labels < n:
            raise ValueError(f"num_labels={num_labels} is smaller than the {n} nodes of a d={d}, l={l} star")
        self.d, self.l, self.num_labels, self.num_nodes = d, l, num_labels, n
        self.vocab = Vocab(num_labels)
        self.num_edges = d * (l - 1)
        self.seq_len = 2 * self.num_edges + 4 + l - 1  # inputs length

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Examples:
        b, d, l, e = batch_size, self.d, self.l, self.num_edges
        labels = torch.rand(b, self.num_labels, generator=generator).argsort(1)[:, : self.num_nodes]
        struct = torch.cat([torch.zeros(d, 1, dtype=torch.long),
                            1 + torch.arange(d)[:, None] * (l - 1) + torch.arange(l - 1)[None, :]], 1)
        paths = labels[:, struct]  # (b, d, l)
        src, dst = paths[:, :, :-1].reshape(b, e), paths[:, :, 1:].reshape(b, e)
        shuffle = torch.rand(b, e, generator=generator).argsort(1)
        edge_tokens = torch.stack([src.gather(1, shuffle), dst.gather(1, shuffle)], 2).reshape(b, 2 * e)
        goal_arm = torch.randint(d, (b,), generator=generator)
        path = paths[torch.arange(b), goal_arm]  # (b, l)
        query = torch.stack([torch.full((b,), self.vocab["[QUERY]"]), path[:, 0], path[:, -1],
                             torch.full((b,), self.vocab["[EQ]"])], 1)
        seq = torch.cat([edge_tokens, query, path], 1)
        inputs, targets = seq[:, :-1].clone(), seq[:, 1:].clone()
        targets[:, : 2 * e + 3] = IGNORE
        return Examples(inputs, targets)

    @property
    def n1_position(self) -> int:
        """Input position whose target is n1 (the source's child on the goal's arm)."""
        return 2 * self.num_edges + 4
