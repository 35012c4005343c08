"""Every claim the book checks can fail.

For each claim id recorded by a chapter, a *broken-phenomenon input* (an untrained model, random
embeddings, an explicit lookup memory, a history in which nothing is learned, two arms of a
comparison that are the same) goes through that claim's metric from geomlib and its check from
``geomlib.claims.CHECKS``, and the check must fail. The test fails when a chapter records a claim
that has no entry in ``CHECKS`` or no negative case here, so a new claim cannot skip this.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from geomlib.claims import CHECKS, passes
from geomlib.evaluate import (
    READ_BACKWARDS_LEVEL,
    backward_lower_bounds,
    edge_recall,
    lag_steps,
    pathstar_metrics,
    readable_by,
    steps_at_or_above,
)
from geomlib.geometry import (
    LOOKUP_BAND_Z_ONE_RUN,
    cosine_matrix,
    edge_contrast,
    geometric_level,
    geometric_margin,
    hidden_probes,
    margin_z,
    nearest_child_probe,
    ring_order_fraction,
    two_hop_auc,
)
from geomlib.graphs import cycle, grid, tiny_graphs
from geomlib.models import build_model
from geomlib.specs import GPT, Mamba
from geomlib.spectral import (
    eigenpairs,
    energy_share,
    laplacian_eigenmap,
    linearisation_check,
    participation_ratio,
    principal_angles,
    projection_profile,
)
from geomlib.sweep import probe_first_share
from geomlib.tasks import pathstar_task
from geomlib.train import History

BOOK = Path(__file__).resolve().parents[1] / "book"
RNG = np.random.default_rng(0)


def book_claim_ids(by_chapter: bool = False):
    """Every claim id a chapter records: the string literals of the cells that check claims, less
    the names of shipped files (by chapter: ``{chapter: ids}``)."""
    found = {}
    for nb in BOOK.glob("*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] == "code" and ("ch.check(" in src or "check_claim(" in src):
                found.setdefault(nb.stem, set()).update(  # a shipped file's name is not a claim id
                    i for i in re.findall(r"[\"']([a-z_0-9]+\.[a-z_0-9]+)[\"']", src) if not i.endswith(".json"))
    return found if by_chapter else set().union(*found.values())


def random_embeddings(n: int, width: int = 64) -> np.ndarray:
    return RNG.standard_normal((n, width))


def lookup(graph, width: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """An explicit lookup memory: random embeddings, W chosen so that E W E^T scores every edge."""
    E = RNG.standard_normal((graph.num_nodes, width)) / np.sqrt(width)
    P = np.linalg.pinv(E)
    return E, P @ (5.0 * graph.adjacency) @ P.T


def geometric(graph) -> tuple[np.ndarray, np.ndarray]:
    """A geometric memory: the Laplacian eigenmap as embeddings, W = identity."""
    E = laplacian_eigenmap(graph, 2) * graph.num_nodes
    return E, np.eye(E.shape[1])


def flat_history(**final) -> History:
    """A run in which nothing is learned: every metric stays at its starting value."""
    return History(rows=[dict(step=s, **final) for s in (0, 100, 200)])


def reverse_cascade_history() -> History:
    """A run that read held-out paths backwards: the path-share-0.25 ablation of the release recipe as
    first shipped (AMD EPYC, every 200 steps; ``data/pathstar_release``), its counts on leaves whose
    ``n1`` is wrong bounded from below; a synthetic one (a third of the leaves with ``n2`` right and
    ``n1`` wrong for 2,000 steps) where it is not shipped."""
    shipped = BOOK.parent / "data" / "pathstar_release" / "ablation-path-share-0-25-seed0.json"
    if shipped.exists():
        run = json.loads(shipped.read_text())
        return History(rows=backward_lower_bounds(run["rows"], run["config"]["l"]))
    return History(rows=[dict(step=s, heldout_backward=0.33 if 1000 <= s < 3000 else 0.0) for s in range(0, 4000, 200)])


def backward_steps(history: History) -> int:
    """Steps with at least READ_BACKWARDS_LEVEL of held-out leaves read backwards (the cascade chapter's metric)."""
    return steps_at_or_above(history, "heldout_backward", READ_BACKWARDS_LEVEL)


@pytest.fixture(scope="module")
def untrained_pathstar():
    """Metrics of untrained models on a small path-star task (what chance looks like)."""
    task = pathstar_task(20, 5, seed=0)
    out = {}
    for kind, (spec, sizes) in {"gpt": (GPT(n_layer=1, n_head=1, n_embd=16), dict(block_size=task.train_paths.inputs.shape[1])),
                                "mamba": (Mamba(n_layer=1, d_model=16), dict(compile_scan=False))}.items():
        torch.manual_seed(0)
        model = build_model(spec, vocab_size=task.vocab.size, **sizes).eval()
        with torch.no_grad():
            out[kind] = pathstar_metrics(task, train=True, edges=True)(model)
        out[kind]["linear_probe_embeddings"] = hidden_probes(model, task)["layer0/leaf"]["linear"]
    return task, out


def cycle_margin_z(memory) -> float:
    g = cycle(15, 0)
    E, W = memory(g)
    return float(np.mean([margin_z(E, W, g, seed=s)["z"] for s in range(3)]))


def cycle_margin(memory) -> float:
    """The raw geometric margin of ``memory`` on the cycle of 15 (the paper's statistic)."""
    g = cycle(15, 0)
    return float(geometric_margin(*memory(g), g)["margin"])


def constant_recall() -> float:
    """Recall of a memory whose answers are all the same (an untrained W = 0 net)."""
    return min(edge_recall(np.zeros((g.num_nodes, g.num_nodes)), g, "degree") for g in tiny_graphs(0).values())


def random_two_hop() -> float:
    return min(two_hop_auc(cosine_matrix(random_embeddings(g.num_nodes)), g) for g in tiny_graphs(0).values())


def random_spectral(what: str) -> float:
    graphs = tiny_graphs(0)
    if what == "top_share":
        return float(np.mean([energy_share(random_embeddings(g.num_nodes), eigenpairs(g)[1], 4)["share"]
                              for g in graphs.values()]))
    if what == "level":
        return float(np.mean([geometric_level(random_embeddings(g.num_nodes), g) for g in graphs.values()]))
    g = cycle(15, 0)
    return energy_share(random_embeddings(15), eigenpairs(g)[1], 2)["share"]


def former_paper_graph_run(untrained: dict) -> float:
    """Held-out full path at the end of the first run at the paper's graph (d = 10^4, l = 6; its edge
    stage in minibatches: 0.04, ``data/headline_cpu.json``), or an untrained model's where it is not shipped."""
    shipped = BOOK.parent / "data" / "headline_cpu.json"
    if shipped.exists():
        return json.loads(shipped.read_text())["rows"][-1]["heldout_full_path"]
    return untrained["heldout_full_path"]


def negative_cases(untrained) -> dict:
    """claim id -> a function returning (measured on a broken input, threshold for a computed rule)."""
    task, metrics = untrained
    gpt, mamba, d = metrics["gpt"], metrics["mamba"], task.d
    same = 0.7  # both sides of a comparison equal: a difference of 0
    return {
        # recall: an untrained memory whose answers are all equal recalls nothing (ties count as misses)
        **{cid: lambda: (constant_recall(), None) for cid in (
            "associative_vs_geometric.recall_associative", "associative_vs_geometric.recall_geometric", "geometry_from_local_supervision.recall", "unclear_why.control_recall",
            "spectral_bias.recall", "linear_net.recall", "knobs.recall")},
        # unseen 2-hop structure: random embeddings have none
        **{cid: lambda: (random_two_hop(), None) for cid in (
            "associative_vs_geometric.two_hop_geometric", "geometry_from_local_supervision.two_hop", "unclear_why.geometry_without_pressure")},
        # an associative memory whose answers do rank 2-hop nodes first (a geometric memory's cosines)
        "associative_vs_geometric.two_hop_associative": lambda: (np.mean([two_hop_auc(cosine_matrix(geometric(g)[0]), g)
                                                              for g in (cycle(15, 0), grid(4, 4, 0))]), None),
        "associative_vs_geometric.pca_ring": lambda: (ring_order_fraction(random_embeddings(15), cycle(15, 0)), None),
        # path-star: an untrained model
        "path_finding_from_memory.heldout_full_path": lambda: (gpt["heldout_full_path"], None),
        "path_finding_from_memory.heldout_n1_over_chance": lambda: (gpt["heldout_n1"] * d, None),
        # the paper's graph: the first attempt at it, whose edge stage ran minibatches (shipped), or an untrained model
        "path_finding_from_memory.paper_graph": lambda: (former_paper_graph_run(gpt), None),
        # the batch regime: an untrained model's probes (full batch), and a full-batch run's (the small batch)
        "scaling.full_batch_geometry": lambda: (min(gpt[f"probe_k{k}"] for k in range(1, task.l - 1)), None),
        # longer paths: an untrained model reads no held-out path
        "scaling.l8_heldout_full_path": lambda: (gpt["heldout_full_path"], None),
        "scaling.minibatch_regime": lambda: (1.0, None),
        "hardest_token.heldout_n1": lambda: (gpt["heldout_n1_tf"], None),
        "geometry_explains.probe": lambda: (nearest_child_probe(random_embeddings(task.graph.num_nodes), task.graph,
                                                       task.test_arms), None),
        "geometry_explains.control_memorises": lambda: (gpt["edge_top1_neighbour_without_root"], None),
        "geometry_explains.control_fits": lambda: (gpt["train_full_path"], None),
        # a control that generalises to held-out leaves (as the free model does)
        "geometry_explains.control_chance": lambda: (1.0, 10 / d),
        "mamba_too.heldout_n1_above_chance": lambda: (mamba["heldout_n1"] * d, None),
        "mamba_too.heldout_full_path": lambda: (mamba["heldout_full_path"], None),
        "mamba_too.geometry_probe": lambda: (mamba["probe"], None),
        # an untrained Mamba's embedding table: no linear map fitted on training leaves finds held-out n1
        "mamba_too.linear_geometry": lambda: (mamba["linear_probe_embeddings"], None),
        # in-context: an untrained model learns no later token; a model that solves n1 is not at chance
        "path_finding_from_memory.incontext_later_tokens_learned": lambda: (flat_history(ic_later=0.02).last["ic_later"], None),
        "path_finding_from_memory.incontext_n1_at_chance": lambda: (1.0, 1 / 2 + 0.1),
        # cascade: probes that never switch on; n1 switched on 600 steps after the training paths, or neither ever
        "no_reverse_cascade.before_any_path": lambda: (readable_by(flat_history(probe_k1=0.1, probe_k2=0.0), ["probe_k1", "probe_k2"]),
                                            100),
        "no_reverse_cascade.n1_no_lag": lambda: (max(
            lag_steps(History(rows=[dict(step=s, train_full_path=float(s >= 400), heldout_n1=float(s >= 1000))
                                    for s in range(0, 1100, 100)]), "train_full_path", "heldout_n1", threshold=0.5),
            lag_steps(flat_history(train_full_path=0.0, heldout_n1=0.0), "train_full_path", "heldout_n1", threshold=0.5)), 100),
        # a reverse cascade: the shipped path-share-0.25 ablation of the release recipe (n2 right while n1 is wrong on
        # a third of the held-out leaves for thousands of steps), and a synthetic one where it is not shipped
        "no_reverse_cascade.no_backward_phase": lambda: (backward_steps(reverse_cascade_history()), None),
        "no_reverse_cascade.release_no_backward_phase": lambda: (backward_steps(reverse_cascade_history()), None),
        # local supervision: a lookup's level stays near 0, never rises or settles; random contrast ~ 0
        "geometry_from_local_supervision.peak_level": lambda: (flat_history(level=0.02)["level"].max(), None),
        "geometry_from_local_supervision.settles": lambda: ((lambda lv: lv.max() - lv[-1])(np.array([0.0, 0.4, 0.8])), None),  # rises, stays
        "geometry_from_local_supervision.forward_only": lambda: (np.mean([edge_contrast(random_embeddings(g.num_nodes), g)
                                                for g in tiny_graphs(0).values()]), None),
        # "it is unclear why": free embeddings that learned nothing, against the frozen control
        "unclear_why.geometry_over_control": lambda: (min(
            two_hop_auc(cosine_matrix(random_embeddings(g.num_nodes)), g)
            - two_hop_auc(cosine_matrix(random_embeddings(g.num_nodes)), g) for g in tiny_graphs(0).values()), None),
        # spectral bias: random embeddings; a large init leaves the linear regime
        "spectral_bias.top_share": lambda: (random_spectral("top_share"), None),
        "spectral_bias.cycle_circle": lambda: (random_spectral("cycle"), None),
        "spectral_bias.level": lambda: (random_spectral("level"), None),
        "spectral_bias.release_start_top_share": lambda: (random_spectral("top_share"), None),  # a table never trained
        "spectral_bias.release_start_level": lambda: (random_spectral("level"), None),
        "spectral_bias.eigenmap_angle": lambda: (np.degrees(principal_angles(random_embeddings(15), laplacian_eigenmap(
            cycle(15, 0), 2))).max(), None),
        "spectral_bias.large_graph": lambda: (
            (lambda g: (lambda s: s["share"] / s["random_baseline"])(energy_share(random_embeddings(400), eigenpairs(g)[1],
                                                                                  10)))(grid(20, 20, 0)), None),
        "spectral_bias.linearisation": lambda: (linearisation_check(cycle(15, 0), 16, init_std=1.0, lr=1.0, steps=40)["rel_err"],
                                           None),
        # the linear net: random embeddings use many directions; a lookup's margin sits in its noise band
        "linear_net.few_directions": lambda: (participation_ratio(projection_profile(random_embeddings(15), eigenpairs(
            cycle(15, 0))[1], normalise=False)), 0.5 * participation_ratio(projection_profile(
                random_embeddings(15), eigenpairs(cycle(15, 0))[1], normalise=False))),
        "linear_net.exactly_two": lambda: (np.mean([participation_ratio(projection_profile(random_embeddings(15), eigenpairs(
            cycle(15, 0))[1], normalise=False)) <= 2.5 for _ in range(3)]), None),
        "linear_net.margin_positive": lambda: (cycle_margin_z(lookup), None),
        "linear_net.control_margin": lambda: (cycle_margin_z(geometric), None),
        "linear_net.control_far_below": lambda: (cycle_margin_z(lookup) - cycle_margin_z(lookup), None),  # both lookups
        "knobs.large_lr": lambda: (np.mean([cycle_margin_z(lookup) > LOOKUP_BAND_Z_ONE_RUN and cycle_margin(lookup) > 0
                                            for _ in range(2)]), None),
        "knobs.associative": lambda: (cycle_margin_z(geometric), None),
        "knobs.associative_negative": lambda: (cycle_margin(geometric), None),  # a geometric memory: positive
        **{cid: lambda: (cycle_margin_z(lookup), None) for cid in (
            "knobs.weight_decay", "knobs.dropout", "knobs.small_init")},
        # comparisons whose two sides are the same: a difference of zero
        **{cid: lambda: (same - same, None) for cid in (
            "headroom.zigzag", "headroom.level_gap", "headroom.self_edges_zigzag", "headroom.self_edges_level",
            "scaling.more_arms", "scaling.longer_paths", "scaling.bigger_models", "interventions.best_mean_gain")},
        # interventions: a best variant that loses on one seed; self-edges that help
        "interventions.best_never_worse": lambda: (float(np.min(np.array([0.9, 0.2, 0.8]) - np.array([0.5, 0.5, 0.5]))),
                                                   None),
        "interventions.self_edges_do_not_help": lambda: (0.4, None),
        # the probe switches on after held-out n1 in every cell; no cell switching on at all
        "scaling.probe_first": lambda: (max(probe_first_share([dict(probe_first=500, n1_first=400)] * 5)[0],
                                            probe_first_share([dict(probe_first=None, n1_first=None)] * 5)[0]), None),
    }


def test_every_book_claim_is_registered():
    ids = book_claim_ids()
    assert len(ids) >= 50, f"found only {len(ids)} claim ids in the book"
    missing = sorted(ids - set(CHECKS))
    assert not missing, f"claims recorded by the book but not in geomlib.claims.CHECKS: {missing}"
    extra = sorted(set(CHECKS) - ids)
    assert not extra, f"geomlib.claims.CHECKS lists claims no chapter records: {extra}"


def test_a_claim_id_is_named_after_its_chapter():
    wrong = {cid: chapter for chapter, ids in book_claim_ids(by_chapter=True).items() for cid in ids
             if cid in CHECKS and not cid.startswith(chapter + ".")}
    assert not wrong, f"claim ids not prefixed by the chapter that records them: {wrong}"


def test_every_claim_has_a_negative_case(untrained_pathstar):
    missing = sorted(set(CHECKS) - set(negative_cases(untrained_pathstar)))
    assert not missing, f"claims with no broken-phenomenon case in this test: {missing}"


@pytest.mark.parametrize("claim", sorted(CHECKS))
def test_the_check_fails_on_a_broken_phenomenon(claim, untrained_pathstar):
    measured, threshold = negative_cases(untrained_pathstar)[claim]()
    assert np.isfinite(measured)
    assert not passes(claim, measured, threshold), \
        f"{claim}: a broken input measured {measured:.4g} and still passes {CHECKS[claim]}"


def test_tendencies_are_checked_claims():
    from geomlib.claims import TENDENCIES
    assert TENDENCIES <= set(CHECKS)


def test_recall_counts_ties_as_misses():
    g = cycle(6, 0)
    assert edge_recall(np.zeros((6, 6)), g, "degree") == 0.0  # a constant answer recalls nothing
    assert edge_recall(g.adjacency.astype(float), g, "degree") == 1.0


def test_check_claim_refuses_a_threshold_that_differs_from_the_registry(tmp_path, monkeypatch):
    from geomlib.claims import check_claim

    monkeypatch.setenv("GEOMLIB_LEDGER", str(tmp_path / "ledger.json"))
    with pytest.raises(ValueError, match="differs from geomlib.claims.CHECKS"):
        check_claim("path_finding_from_memory.heldout_full_path", 0.95, ">=", 0.3, paper="p", description="d", chapter="c",
                    preset="cpu", seed=0)
