"""Decoding and accuracies: path finding (greedy, exact match, per position, ``n1``) and
edge memorisation (top-k recall)."""
from __future__ import annotations

import numpy as np
import torch

from .graphs import Graph
from .tasks import IGNORE, Examples, PathStarTask, Vocab

__all__ = ["first_or_never", "readable_by", "lag_steps", "peak_after", "steps_at_or_above", "READ_BACKWARDS_LEVEL", "beyond_the_leafs_edge", "backward_lower_bounds", "greedy_decode", "path_accuracy", "teacher_forced_predictions", "teacher_forced_accuracy", "edge_scores", "edge_recall",
           "pathstar_metrics", "edge_metrics"]


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def greedy_decode(model, prefix: torch.Tensor, length: int, batch_size: int = 4096,
                  allowed: int | None = None) -> torch.Tensor:
    """Greedily extend each row of ``prefix`` (M, P) by ``length`` tokens. ``allowed`` restricts
    the argmax to tokens ``< allowed`` (node tokens), as the target is always a node."""
    out = []
    for chunk in prefix.split(batch_size):
        seq = chunk.to(_device(model))
        for _ in range(length):
            logits = model.next_logits(seq)  # the head at the last position only
            last = logits[:, :allowed] if allowed else logits
            seq = torch.cat([seq, last.argmax(-1, keepdim=True)], 1)
        out.append(seq[:, chunk.shape[1]:].cpu())
    return torch.cat(out)


DECODES = ("nodes", "vocab")


def path_accuracy(model, paths: Examples, vocab: Vocab, batch_size: int = 4096, decode: str = "nodes") -> dict:
    """Greedy decoding of ``[PATH] leaf [PAUSE]`` prompts: exact match of the whole path,
    accuracy of ``n1`` and of every position (``pos0`` = root ... ``pos{l-1}`` = leaf).
    ``decode="nodes"`` takes the argmax over node tokens only; ``"vocab"`` over the whole
    vocabulary, as the authors' release does (a special token then counts as a wrong answer)."""
    if decode not in DECODES:
        raise ValueError(f"decode must be one of {DECODES}, got {decode!r}")
    l = paths.inputs.shape[1] - 2
    truth = torch.cat([paths.inputs[:, 3:], paths.targets[:, -1:]], 1)  # root .. leaf
    pred = greedy_decode(model, paths.inputs[:, :3], l, batch_size,
                         allowed=vocab.num_nodes if decode == "nodes" else None)
    correct = pred == truth
    res = {"full_path": correct.all(1).float().mean().item(), "n1": correct[:, 1].float().mean().item()}
    res.update({f"pos{i}": correct[:, i].float().mean().item() for i in range(l)})
    res.update(_without_n1(correct))
    return res


#: The share of held-out leaves read backwards (``heldout_backward``) at which a run counts as reading
#: paths right to left at that evaluation: 10%, a dozen of the book's 125 held-out leaves.
READ_BACKWARDS_LEVEL = 0.1


def beyond_the_leafs_edge(l: int) -> range:
    """The path positions two or more hops before the leaf, ``n1`` excluded (``n2`` .. ``n{l-3}``): right
    while ``n1`` is wrong, they can only have been read backwards from the leaf; the leaf's parent
    (position ``l - 2``) can also come back from the leaf's own edge."""
    return range(2, l - 2)


def backward_lower_bounds(rows: list[dict], l: int) -> list[dict]:
    """Evaluation rows of a run recorded before the counts on leaves whose ``n1`` is wrong, with those
    counts bounded from below: each later position's share right while ``n1`` is wrong by its accuracy
    minus ``n1``'s (``heldout_pos{i}_without_n1``), and the leaves read backwards (``heldout_backward``)
    by the largest such bound over the nodes two or more hops before the leaf."""
    out = []
    for r in rows:
        extra = {f"heldout_pos{i}_without_n1": max(0.0, r[f"heldout_pos{i}"] - r["heldout_n1"]) for i in range(2, l)}
        extra["heldout_backward"] = max([extra[f"heldout_pos{i}_without_n1"] for i in beyond_the_leafs_edge(l)],
                                        default=0.0)
        out.append({**r, **extra})
    return out


def _without_n1(correct: torch.Tensor, prefix: str = "") -> dict:
    """From an (M, l) right/wrong matrix of path positions (0 = root ... l-1 = leaf): the share of
    paths on which position ``i`` is right while ``n1`` is wrong (``{prefix}pos{i}_without_n1``), and
    ``{prefix}backward``: the share on which ``n1`` is wrong but a node of :func:`beyond_the_leafs_edge`
    is right. Under greedy decoding such a node cannot come from the model's own (wrong) ``n1``: it is
    read backwards from the leaf, the second round of a reverse cascade."""
    wrong = ~correct[:, 1]
    out = {f"{prefix}pos{i}_without_n1": (correct[:, i] & wrong).float().mean().item() for i in range(correct.shape[1])}
    beyond = list(beyond_the_leafs_edge(correct.shape[1]))
    out[f"{prefix}backward"] = (correct[:, beyond].any(1) & wrong).float().mean().item() if beyond else 0.0
    return out


@torch.no_grad()
def teacher_forced_predictions(model, data: Examples, batch_size: int = 4096) -> torch.Tensor:
    """The model's argmax token at every position with the true previous tokens given: (M, T)."""
    return torch.cat([model(inp.to(_device(model)))[0].argmax(-1).cpu() for inp in data.inputs.split(batch_size)])


def teacher_forced_accuracy(model, data: Examples, batch_size: int = 4096, predictions=None) -> np.ndarray:
    """Per-position accuracy with the true previous tokens given (NaN where nothing is supervised).
    Note the Clever Hans cheat: given the true previous node, each later path token is a single
    edge lookup, so high teacher-forced accuracy there says nothing about planning. Pass
    ``predictions`` (from :func:`teacher_forced_predictions`) to score them without a forward pass."""
    preds = teacher_forced_predictions(model, data, batch_size) if predictions is None else predictions
    mask = data.targets != IGNORE
    hits = ((preds == data.targets) & mask).sum(0).float()
    counts = mask.sum(0).float()
    return (hits / counts.clamp(min=1)).where(counts > 0, torch.tensor(float("nan"))).numpy()


@torch.no_grad()
def edge_scores(model, vocab: Vocab, nodes: np.ndarray | None = None, batch_size: int = 4096) -> torch.Tensor:
    """Logits over the node tokens after ``[EDGE] u`` for each ``u`` in ``nodes`` (default all):
    (len(nodes), N). Shallow models (no context) are queried with ``u`` alone."""
    n = vocab.num_nodes
    nodes = torch.arange(n) if nodes is None else torch.as_tensor(nodes)
    rows = []
    for chunk in nodes.split(batch_size):
        if hasattr(model, "scores") and not hasattr(model, "hidden"):
            logits = model(chunk[:, None].to(_device(model)))[0][:, 0]
        else:
            idx = torch.stack([torch.full_like(chunk, vocab["[EDGE]"]), chunk], 1).to(_device(model))
            logits = model.next_logits(idx)
        rows.append(logits[:, :n].float().cpu())
    return torch.cat(rows)


def edge_recall(scores: torch.Tensor | np.ndarray, graph: Graph, k: int | str = 1, directed=None,
                exclude_self: bool = True) -> float:
    """Share of directed edges ``u -> v`` whose ``v`` is in the top-``k`` of row ``u`` of ``scores``.

    ``k="degree"`` uses ``k = deg(u)``: recall 1.0 then means every node ranks exactly its
    neighbours first (top-1 has an ambiguity ceiling when a node has two neighbours). A tie with
    a non-neighbour is a miss."""
    if isinstance(scores, torch.Tensor):
        s = scores.detach().to("cpu", torch.float64).clone()
    else:
        s = torch.as_tensor(np.asarray(scores), dtype=torch.float64).clone()
    if s.shape != (graph.num_nodes, graph.num_nodes):
        raise ValueError(f"scores must be (N, N) = ({graph.num_nodes}, {graph.num_nodes}), got {tuple(s.shape)}")
    if exclude_self:
        s.fill_diagonal_(-torch.inf)
    e = torch.as_tensor(graph.directed_edges if directed is None else directed)
    u, v = e[:, 0], e[:, 1]
    # rank of v in row u = number of other entries at least as large: ties count against v, so a
    # constant (or otherwise uninformative) score matrix recalls nothing
    rank = (s[u] >= s[u, v][:, None]).sum(1) - 1
    kk = torch.as_tensor(graph.degree)[u] if k == "degree" else torch.full_like(rank, int(k))
    return (rank < kk).double().mean().item()


def pathstar_metrics(task: PathStarTask, heldout: bool = True, train: bool = False, edges: bool = False,
                     probe: bool = True, max_paths: int = 4096, decode: str = "nodes"):
    """An ``evaluate`` callback for :func:`geomlib.train.train` on the path-star task.

    Returns, on held-out leaves: greedy full-path and ``n1`` accuracy (``heldout_full_path``,
    ``heldout_n1``) and ``n1`` accuracy with the root given (``heldout_n1_tf``, teacher-forced: what the
    hardest-token recipe trains); every path position's accuracy, greedy (``heldout_pos{i}``, ``i = 0``
    the root ... ``l - 1`` the leaf, as the release logs ``token_i``) and teacher-forced
    (``heldout_tf_pos{i}``, the true previous tokens given); the reverse-cascade view, each position right while
    ``n1`` is wrong (``heldout_pos{i}_without_n1``, ``heldout_tf_pos{i}_without_n1``) and ``heldout_backward``
    (``n1`` wrong, a node two or more hops before the leaf right: read backwards from the leaf); optionally the training paths' full-path accuracy, edge
    recall (top-1 is a true neighbour: ``edge_top1_neighbour``, and ``edge_top1_neighbour_without_root`` over the
    queries other than the root's, whose one input has ``d`` right answers), and the geometry probes on held-out leaves: ``probe``
    (nearest child = own ``n1``) and ``probe_k{k}`` (own ``k``-hop ancestor nearest among its depth)."""
    from .geometry import ancestor_probe

    l = task.l

    def evaluate(model) -> dict:
        out = {}
        if heldout:
            test = task.test_paths[:max_paths]
            acc = path_accuracy(model, test, task.vocab, decode=decode)
            out.update(heldout_full_path=acc["full_path"], heldout_n1=acc["n1"])
            preds = teacher_forced_predictions(model, test)
            tf = teacher_forced_accuracy(model, test, predictions=preds)  # position 2 + i predicts path node i
            out["heldout_n1_tf"] = float(tf[3])
            out.update({f"heldout_pos{i}": acc[f"pos{i}"] for i in range(l)})
            out.update({f"heldout_tf_pos{i}": float(tf[2 + i]) for i in range(l)})
            out.update({f"heldout_{k}": v for k, v in acc.items() if k.endswith("without_n1") or k == "backward"})
            out.update({f"heldout_{k}": v for k, v in _without_n1(preds[:, 2:2 + l] == test.targets[:, 2:2 + l],
                                                                   prefix="tf_").items()})
        if train:
            acc = path_accuracy(model, task.train_paths[:max_paths], task.vocab, decode=decode)
            out.update(train_full_path=acc["full_path"])
        if edges:
            e = task.edges
            # one forward pass where it fits (the book's sizes); in chunks for a 10^5-edge graph
            chunk = len(e) if len(e) <= 65536 else 8192
            pred = torch.cat([model.next_logits(x.to(_device(model)))[:, : task.vocab.num_nodes].argmax(-1).cpu()
                              for x in e.inputs.split(chunk)]).numpy()
            u = e.inputs[:, 1].numpy()
            hit = task.graph.has_edge(u, pred)
            out["edge_top1_neighbour"] = float(hit.mean())
            # the root's queries (d of them, 1 / (2 (l - 1)) of all) share one input with d right answers, so they
            # hit or miss together; every other query has one or two right answers
            out["edge_top1_neighbour_without_root"] = float(hit[u != task.graph.root].mean())
        if probe:
            emb = model.token_embeddings()
            for k in range(1, l - 1):
                out[f"probe_k{k}"] = ancestor_probe(emb, task.graph, k, task.test_arms)
            out["probe"] = out[f"probe_k{l - 2}"]
        return out

    return evaluate


def edge_metrics(graph: Graph, vocab: Vocab, k: int | str = "degree", level: bool = True,
                 directions: str = "both"):
    """An ``evaluate`` callback for edge memorisation: top-``k`` recall of the trained edges
    (``directions``: ``"both"`` or ``"forward"``) and, if ``level``, the geometric level of the
    token embeddings."""
    from .geometry import geometric_level

    directed = {"both": graph.directed_edges, "forward": graph.edges}[directions]

    def evaluate(model) -> dict:
        out = {"recall": edge_recall(edge_scores(model, vocab), graph, k, directed=directed)}
        if level:
            out["geometric_level"] = geometric_level(model.token_embeddings()[: graph.num_nodes], graph)
        return out

    return evaluate


def first_or_never(history, key: str, threshold: float = 0.9) -> int:
    """First evaluated step at which ``key >= threshold``; one past the last evaluated step when
    it never does (so "never" compares as later than any step the run reached)."""
    step = history.first_step(key, threshold)
    return int(max(history["step"])) + 1 if step is None else step


def readable_by(history, keys: list[str], threshold: float = 0.9) -> int:
    """The step by which every probe in ``keys`` has reached ``threshold`` (the latest of their
    first steps; "never" counts as one past the last step)."""
    return max(first_or_never(history, k, threshold) for k in keys)


def lag_steps(history, lead: str, follow: str, threshold: float = 0.9) -> int:
    """Steps between ``lead`` and ``follow`` first reaching ``threshold``. When ``lead`` never
    does, there is nothing to keep pace with and the lag is "never" (one past the last step)."""
    never = int(max(history["step"])) + 1
    first = history.first_step(lead, threshold)
    return never if first is None else first_or_never(history, follow, threshold) - first


def peak_after(history, key: str, after: int = -1) -> tuple[float, int]:
    """The largest value of ``key`` at any evaluation after step ``after`` (e.g. the end of the
    edge-only stage), and the step of the first evaluation that reaches it; ``(0.0, after)`` when
    no evaluation comes after it."""
    steps, values = history["step"], history[key]
    later = steps > after
    if not later.any():
        return 0.0, after
    i = int(np.argmax(np.where(later, values, -np.inf)))
    return float(values[i]), int(steps[i])


def steps_at_or_above(history, key: str, level: float, after: int = -1) -> int:
    """How long ``key`` stayed at or above ``level`` after step ``after``, in training steps: the sum,
    over the evaluations after ``after`` at or above it, of the steps since the evaluation before
    (an evaluation stands for its whole interval, so a run evaluated every 100 steps counts a
    one-evaluation blip as 100 steps, one evaluated every 20 as 20)."""
    steps, values = history["step"], history[key]
    gaps = np.diff(steps, prepend=steps[0])
    return int(gaps[(steps > after) & (values >= level)].sum())
