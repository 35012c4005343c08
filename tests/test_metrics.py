import numpy as np
import pytest
import torch

from geomlib import geometry, spectral
from geomlib.evaluate import edge_recall
from geomlib.graphs import cycle, grid, path_star
from geomlib.models import Node2Vec
from geomlib.tasks import Vocab, edge_examples
from geomlib.train import TrainConfig, train


def test_geometric_level_hand_computed():
    g = cycle(4, seed=None)  # edges 0-1, 1-2, 2-3, 3-0
    e = np.array([[1.0, 0], [1, 0], [0, 1], [0, 1]])
    # cosines: (0,1)=1, (1,2)=0, (2,3)=1, (3,0)=0
    assert geometry.geometric_level(e, g) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        geometry.cosine_matrix(np.zeros((2, 2)))


def test_edge_recall_hand_computed():
    g = cycle(4, seed=None)
    s = np.zeros((4, 4))
    s[0, 1] = s[0, 3] = 1  # node 0 ranks both neighbours first
    s[1, 0] = 1
    s[1, 3] = 2  # node 1 ranks a non-neighbour first
    # ties count as misses: rows 2 and 3 are all zeros (no information), row 0 ties its two neighbours
    assert edge_recall(s, g, k=2) == pytest.approx(3 / 8)  # 0->1, 0->3, 1->0; 1->2 and rows 2, 3 missed
    assert edge_recall(s, g, k=1) == pytest.approx(0 / 8)  # every top-1 is shared or wrong
    s[2, 1] = s[2, 3] = s[3, 0] = s[3, 2] = 1
    assert edge_recall(s, g, k=2) == pytest.approx(7 / 8)  # only 1->2 missed
    with pytest.raises(ValueError):
        edge_recall(np.zeros((3, 3)), g)


def test_nearest_child_probe():
    g = path_star(3, 4, seed=0)
    e = np.zeros((g.num_nodes, 3))
    for a, p in enumerate(g.paths):
        e[p[1:], a] = 1.0  # each arm along its own axis
    e[g.root] = 1.0
    assert geometry.nearest_child_probe(e, g) == 1.0
    e2 = e.copy()
    e2[g.paths[:, -1]] = np.roll(np.eye(3), 1, axis=1)  # every leaf points at the next arm
    assert geometry.nearest_child_probe(e2, g) == 0.0


def test_spectral_profile_of_an_eigenvector():
    g = cycle(12, seed=None)
    vals, vecs = spectral.eigenpairs(g)
    assert np.all(np.diff(vals) <= 1e-12) and vals.shape == (11,)
    prof = spectral.projection_profile(vecs[:, [0]], vecs)
    assert prof[0] == 1.0 and np.allclose(prof[1:], 0, atol=1e-10)
    assert vals[0] == pytest.approx(vals[1])  # the cycle's degenerate top pair
    assert spectral.energy_share(vecs[:, :2], vecs, 2)["share"] == pytest.approx(1.0)


def test_node2vec_on_a_cycle_is_spectral():
    g = cycle(15, seed=0)
    torch.manual_seed(0)
    m = Node2Vec(g.num_nodes, 100, init_std=0.02)
    train(m, edge_examples(g, Vocab(g.num_nodes)), TrainConfig(steps=600, lr=1.0, optimizer="sgd", schedule="constant",
                                                                 grad_clip=None), progress=False)
    vals, vecs = spectral.eigenpairs(g)
    share = spectral.energy_share(m.token_embeddings(), vecs, 2)
    assert share["share"] > 0.9 > share["random_baseline"] * 5
    assert geometry.ring_order_fraction(m.token_embeddings(), g) == 1.0


def test_two_hop_auc_and_distance_profile():
    g = grid(3, 3, seed=None)
    coords = np.array([[r, c] for r in range(3) for c in range(3)], float)
    s = -np.abs(coords[:, None] - coords[None]).sum(-1)  # minus Manhattan distance = minus hop distance
    assert geometry.two_hop_auc(s, g) == 1.0
    assert geometry.two_hop_auc(np.zeros((9, 9)), g) == 0.5


def test_geometric_margin_sign():
    g = cycle(10, seed=None)
    vals, vecs = spectral.eigenpairs(g)
    e = vecs[:, :2] * 3  # a circle
    geo = geometry.geometric_margin(e, np.eye(2), g)
    assert geo["margin"] > 0 and geo["skewed_top1"] == 1.0
    big = cycle(30, seed=None)
    e_rand = np.random.default_rng(0).normal(size=(30, 64))
    w = np.linalg.pinv(e_rand) @ (big.adjacency * 10) @ np.linalg.pinv(e_rand).T  # a pure lookup in W
    assoc = geometry.geometric_margin(e_rand, w, big)
    assert np.allclose(e_rand @ w @ e_rand.T, big.adjacency * 10)  # W alone recalls every edge...
    assert assoc["margin"] < 0 and assoc["skewed_top1"] < 0.5  # ...but the geometry does not


def test_ancestor_probe_and_participation_ratio():
    g = path_star(3, 5, seed=0)
    e = np.zeros((g.num_nodes, 3))
    for a, p in enumerate(g.paths):
        e[p[1:], a] = 1.0
    e[g.root] = 1.0
    assert all(geometry.ancestor_probe(e, g, k) == 1.0 for k in (1, 2, 3))
    assert geometry.ancestor_probe(e, g, 3) == geometry.nearest_child_probe(e, g)
    with pytest.raises(ValueError):
        geometry.ancestor_probe(e, g, 4)
    assert spectral.participation_ratio(np.array([1.0, 1.0, 0, 0])) == pytest.approx(2.0)
    assert spectral.participation_ratio(np.ones(10)) == pytest.approx(10.0)


def test_bottom_energy_share_and_linearisation():
    g = cycle(9, seed=None)
    vals, vecs = spectral.eigenpairs(g)
    assert spectral.energy_share(vecs[:, -2:], vecs, 2, which="bottom")["share"] == pytest.approx(1.0)
    assert spectral.energy_share(vecs[:, -2:], vecs, 2, which="top")["share"] == pytest.approx(0.0, abs=1e-12)
    K = spectral.node2vec_linearisation(g)
    assert np.allclose(K, K.T) and np.allclose(K.sum(1), 0.0, atol=1e-12)  # the constant vector does not grow
    # the chapter's check, in the linear regime: small init follows (I + lr K)^t E0 ...
    assert spectral.linearisation_check(g, 16, init_std=1e-5, lr=1.0, steps=5)["rel_err"] < 1e-3
    # ... and a large init does not (the check can fail)
    assert spectral.linearisation_check(g, 16, init_std=1.0, lr=1.0, steps=5)["rel_err"] > 0.1


def test_hidden_probes_read_every_layer_and_agree_with_the_embedding_probe_at_the_input():
    """Mamba's input layer at the leaf's position is its token-embedding row: there the hidden
    probe's embedding score is the nearest-child probe; a random model scores near chance."""
    import torch

    from geomlib.geometry import ancestor_probe, hidden_probes
    from geomlib.models import build_model
    from geomlib.specs import GPT, Mamba
    from geomlib.tasks import pathstar_task
    task = pathstar_task(40, 4, seed=0)
    for spec, kw in ((Mamba(n_layer=2, d_model=16), dict(compile_scan=False)),
                     (GPT(n_layer=2, n_head=2, n_embd=16), dict(block_size=8))):
        torch.manual_seed(0)
        model = build_model(spec, vocab_size=task.vocab.size, **kw)
        probes = hidden_probes(model, task)
        assert list(probes) == [f"{layer}/{pos}" for layer in ("layer0", "layer1", "layer2", "final")
                                for pos in ("leaf", "readout")]
        assert all(0.0 <= v <= 1.0 for p in probes.values() for v in p.values())
        if spec.kind == "mamba":
            assert probes["layer0/leaf"]["embedding"] == ancestor_probe(model.token_embeddings(), task.graph, 2,
                                                                        task.test_arms)
        assert np.mean([p["embedding"] for p in probes.values()]) < 0.3  # untrained: near chance (1/40)


def test_the_lookup_bands_enclose_the_trained_lookups():
    """The lookup band is measured, not assumed: every trained associative control of the shipped
    precision study stays inside one run's band, and every mean over 2 or 3 of its seeds (what
    the chapters average) inside the band for means."""
    import json
    from pathlib import Path

    from geomlib.geometry import LOOKUP_BAND_Z, LOOKUP_BAND_Z_ONE_RUN
    path = Path(__file__).resolve().parents[1] / "data" / "precision.json"
    cells: dict = {}
    for r in json.loads(path.read_text())["runs"]:
        if r["net"] == "associative control":
            cells.setdefault((r["graph"], r["self_edges"], r["precision"]), {})[r["seed"]] = r["margin_z"]
    singles = [z for zs in cells.values() for z in zs.values()]
    assert len(singles) >= 80 and max(singles) < LOOKUP_BAND_Z_ONE_RUN
    assert max(singles) > LOOKUP_BAND_Z  # why one run needs its own, wider band
    means = [np.mean([zs[s + i] for i in range(n)]) for zs in cells.values() for n in (2, 3)
             for s in range(len(zs) - n + 1)]
    assert max(means) < LOOKUP_BAND_Z
