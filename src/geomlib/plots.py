"""Figures, one consistent style: labelled axes, units, readable sizes."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .geometry import cosine_matrix, pca
from .graphs import Graph

__all__ = ["style", "cosine_heatmap", "adjacency_heatmap", "pca_plot", "seed_band", "curves", "stage_marker", "spectral_profile_plot",
           "cosine_distance_plot"]

COLORS = plt.get_cmap("tab10").colors


def style() -> None:
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "font.size": 10, "axes.titlesize": 11,
                         "axes.spines.top": False, "axes.spines.right": False, "axes.grid": False,
                         "figure.autolayout": False})


def _node_colors(graph: Graph) -> np.ndarray:
    """Colour nodes by arm (path-star) or by position in the structural order."""
    if graph.arm is not None:
        return np.where(graph.arm < 0, -1, graph.arm)
    pos = np.empty(graph.num_nodes)
    pos[graph.order] = np.arange(graph.num_nodes)
    return pos


def cosine_heatmap(ax, E, graph: Graph, title: str = "cosine similarity of embeddings"):
    """Node-by-node cosine matrix, rows and columns in the graph's structural order."""
    c = cosine_matrix(E)[: graph.num_nodes, : graph.num_nodes][np.ix_(graph.order, graph.order)]
    im = ax.imshow(c, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_title(title)
    ax.set_xlabel("node (structural order)")
    ax.set_ylabel("node (structural order)")
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="cosine")
    return im


def adjacency_heatmap(ax, graph: Graph, title: str = "adjacency (what training states)"):
    a = graph.adjacency[np.ix_(graph.order, graph.order)]
    ax.imshow(a, cmap="Greys", vmin=0, vmax=1)
    ax.set_title(title)
    ax.set_xlabel("node (structural order)")
    ax.set_ylabel("node (structural order)")


def pca_plot(ax, E, graph: Graph, title: str = "PCA of node embeddings", draw_edges: bool = True,
             nodes=None, cmap: str = "viridis"):
    """First two principal components of the embeddings, the graph's edges drawn between them.
    ``nodes``: only these nodes (e.g. a few arms of a large path-star), PCA fitted on them."""
    nodes = np.arange(graph.num_nodes) if nodes is None else np.asarray(nodes)
    xy, var = pca(E[nodes], 2)
    at = {int(n): i for i, n in enumerate(nodes)}
    if draw_edges:
        for u, v in graph.edges:
            if int(u) in at and int(v) in at:
                ax.plot(*xy[[at[int(u)], at[int(v)]]].T, color="0.7", lw=0.8, zorder=1)
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=_node_colors(graph)[nodes], cmap=cmap, s=30, zorder=2, edgecolor="k", lw=0.3)
    if graph.root is not None and int(graph.root) in at:
        ax.scatter(*xy[at[int(graph.root)]], marker="*", s=160, c="red", zorder=3, label="root")
        ax.legend(loc="best", fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(f"PC1 ({100 * var[0]:.0f}% var.)")
    ax.set_ylabel(f"PC2 ({100 * var[1]:.0f}% var.)")
    ax.set_aspect("equal", adjustable="datalim")
    return sc


def seed_band(ax, histories, key: str, color, label: str | None = None, center: str = "mean", alpha: float = 0.2):
    """One metric over training for several seeds (histories evaluated at the same steps): a line
    (the mean over seeds, or with ``center="first"`` the first seed's own curve) and the band
    between the smallest and largest seed."""
    steps = np.asarray(histories[0]["step"])
    ys = np.stack([np.asarray(h[key], dtype=float) for h in histories])
    ax.fill_between(steps, ys.min(0), ys.max(0), color=color, alpha=alpha, lw=0)
    ax.plot(steps, ys.mean(0) if center == "mean" else ys[0], color=color, label=label, lw=1.6)


def curves(ax, history, keys: dict[str, str], title: str = "", x: str = "step", ylabel: str = "accuracy",
           chance: float | None = None):
    """Plot ``history[key]`` for each ``{key: label}`` against steps (or ``x="seconds"``); ``history``
    is a :class:`~geomlib.train.History` or anything indexed by metric name the same way."""
    xs = history[x]
    for i, (key, label) in enumerate(keys.items()):
        ax.plot(xs, history[key], label=label, color=COLORS[i % 10], lw=1.6)
    if chance is not None:
        ax.axhline(chance, color="k", ls=":", lw=1, label=f"chance ({chance:.2g})")
    ax.set_xlabel({"step": "training step", "seconds": "wall time (s)"}.get(x, x))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")


def stage_marker(ax, history_or_step, label: str | None = "mixed stage starts", y: float = 0.5) -> None:
    """The dashed vertical line where a path-star recipe's second (mixed) stage starts: the step
    recorded in ``history.meta["stage_starts"]``, or a step given directly; with a small label."""
    step = history_or_step if isinstance(history_or_step, (int, np.integer)) else \
        history_or_step.meta["stage_starts"][1]
    ax.axvline(step, color="0.5", ls="--", lw=1)
    if label:
        ax.text(step, y, f"  {label}", color="0.4", fontsize=8, transform=ax.get_xaxis_transform())


def spectral_profile_plot(ax, profile: np.ndarray, eigenvalues: np.ndarray, title: str = "spectral projection profile"):
    """Bars of ``||E^T e_i||`` (normalised) against eigenvector index, eigenvalue on a twin axis."""
    i = np.arange(1, len(profile) + 1)
    ax.bar(i, profile, color=COLORS[0], label=r"$\|E^\top e_i\|$ (normalised)")
    ax.set_xlabel("eigenvector index i (descending eigenvalue, trivial one dropped)")
    ax.set_ylabel("projection (relative to i = 1)")
    ax.set_title(title)
    tw = ax.twinx()
    tw.plot(i, eigenvalues, color=COLORS[3], marker=".", lw=1, label="eigenvalue")
    tw.set_ylabel("eigenvalue of $D^{-1}A + (D^{-1}A)^\\top$", color=COLORS[3])
    tw.spines["right"].set_visible(True)
    return tw


def cosine_distance_plot(ax, profiles: dict[str, dict[int, float]], title: str = "cosine vs graph distance"):
    for i, (label, prof) in enumerate(profiles.items()):
        ks = sorted(prof)
        ax.plot(ks, [prof[k] for k in ks], marker="o", label=label, color=COLORS[i % 10])
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("graph distance between the two nodes (hops)")
    ax.set_ylabel("mean cosine similarity")
    ax.set_title(title)
    ax.legend(fontsize=8)
