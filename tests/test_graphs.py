import networkx as nx
import numpy as np
import pytest

from geomlib import graphs


@pytest.mark.parametrize("d,l", [(1, 2), (3, 5), (50, 6)])
def test_path_star_invariants(d, l):
    g = graphs.path_star(d, l, seed=1)
    n = d * (l - 1) + 1
    assert g.num_nodes == n and len(g.edges) == n - 1
    assert sorted(np.unique(g.paths).tolist()) == list(range(n))  # every node on exactly one path (root shared)
    assert g.degree[g.root] == d
    assert np.all(g.degree[g.leaves] == 1)
    assert np.all(g.paths[:, 0] == g.root)
    assert np.all(g.depth[g.paths] == np.arange(l))
    assert nx.is_tree(g.to_networkx())
    for a, path in enumerate(g.paths):  # one path per leaf, and it is the graph's own
        assert nx.shortest_path(g.to_networkx(), g.root, path[-1]) == path.tolist()
        assert np.all(g.arm[path[1:]] == a)


def test_relabelling_is_a_seeded_permutation():
    a, b, c = graphs.path_star(5, 4, seed=0), graphs.path_star(5, 4, seed=0), graphs.path_star(5, 4, seed=1)
    assert np.array_equal(a.edges, b.edges)
    assert not np.array_equal(a.edges, c.edges)
    assert nx.is_isomorphic(a.to_networkx(), c.to_networkx())
    assert graphs.path_star(3, 3, seed=None).root == 0


def test_tiny_graphs():
    t = graphs.tiny_graphs()
    assert {k: g.num_nodes for k, g in t.items()} == {"path-star": 17, "grid": 16, "cycle": 15, "irregular": 16}
    assert np.all(t["cycle"].degree == 2)
    assert len(t["grid"].edges) == 24
    irr = t["irregular"].to_networkx()
    assert nx.number_connected_components(irr) == 2 and len(t["irregular"].edges) == 14 + 6
    assert t["cycle"].distances.max() == 7


@pytest.mark.parametrize("call,err", [
    (lambda: graphs.path_star(0, 5), ValueError),
    (lambda: graphs.path_star(3, 1), ValueError),
    (lambda: graphs.path_star(2.5, 3), TypeError),
    (lambda: graphs.path_star(10**6, 100), ValueError),
    (lambda: graphs.cycle(2), ValueError),
    (lambda: graphs.grid(1, 1), ValueError),
    (lambda: graphs.from_networkx(nx.DiGraph([(0, 1)])), ValueError),
    (lambda: graphs.cycle(5).leaves, ValueError),
])
def test_bad_sizes_raise_clearly(call, err):
    with pytest.raises(err):
        call()


def test_has_edge_agrees_with_the_adjacency_matrix_without_building_it():
    import numpy as np

    from geomlib.graphs import cycle, grid, path_star

    for g in (path_star(5, 4, seed=1), cycle(9, seed=2), grid(3, 4, seed=3)):
        u, v = np.meshgrid(np.arange(g.num_nodes), np.arange(g.num_nodes), indexing="ij")
        assert np.array_equal(g.has_edge(u.ravel(), v.ravel()), g.adjacency[u.ravel(), v.ravel()] > 0)
    big = path_star(10_000, 6)
    assert big.has_edge(big.paths[:, 0], big.paths[:, 1]).all() and not big.has_edge([-1, 0], [0, 10**6]).any()
    assert "adjacency" not in big.__dict__  # the 5 x 10^4 x 5 x 10^4 matrix was never built
