import numpy as np
import pytest
import torch

from geomlib import tasks
from geomlib.graphs import cycle, path_star
from geomlib.tasks import IGNORE


def test_edge_examples_roundtrip():
    g = cycle(6, seed=3)
    v = tasks.Vocab(g.num_nodes)
    ex = tasks.edge_examples(g, v)
    assert len(ex) == 12 and ex.num_targets == 12
    assert v.decode(ex.inputs[0]) == ["[EDGE]", str(int(ex.inputs[0, 1]))]
    pairs = {(int(u), int(t)) for u, t in zip(ex.inputs[:, 1], ex.targets[:, 1])}
    assert pairs == {tuple(e) for e in g.directed_edges.tolist()}
    assert torch.all(ex.targets[:, 0] == IGNORE)
    assert len(tasks.edge_examples(g, v, "forward")) == 6
    assert len(tasks.edge_examples(g, v, self_edges=True)) == 18
    with pytest.raises(ValueError):
        tasks.edge_examples(g, v, "sideways")
    with pytest.raises(ValueError):
        v.decode([v.size])


def test_path_examples_layout_and_masks():
    g = path_star(4, 5, seed=0)
    v = tasks.Vocab(g.num_nodes)
    ex = tasks.path_examples(g, v, [2])
    seq = v.decode(ex.inputs[0])
    assert seq[:3] == ["[PATH]", str(g.paths[2, -1]), "[PAUSE]"]
    assert ex.inputs.shape == (1, 5 + 2)
    assert ex.targets[0, :2].tolist() == [IGNORE, IGNORE]
    assert ex.targets[0, 2:].tolist() == g.paths[2].tolist()  # root, n1, ..., leaf
    assert ex.inputs[0, 3:].tolist() == g.paths[2, :-1].tolist()  # teacher forcing
    hard = tasks.path_examples(g, v, [2], hardest_token=True)
    assert hard.num_targets == 1 and int(hard.targets[0, 3]) == g.paths[2, 1]
    rev = tasks.path_examples(g, v, [2], order="reverse")
    assert rev.targets[0, 2:].tolist() == g.paths[2, ::-1].tolist()


def test_split_is_disjoint_and_complete():
    tr, te = tasks.split_arms(100, 0.75, seed=4)
    assert len(tr) == 75 and len(te) == 25 and not set(tr) & set(te)
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(100))
    with pytest.raises(ValueError):
        tasks.split_arms(1)


def test_pathstar_task_at_paper_scale():
    task = tasks.pathstar_task(10_000, 6, seed=0)
    assert task.graph.num_nodes == 50_001 and len(task.edges) == 100_000
    assert len(task.train_paths) == 7_500 and len(task.test_paths) == 2_500
    held = set(task.test_paths.inputs[:, 1].tolist())
    assert not held & set(task.train_paths.inputs[:, 1].tolist())
    # held-out arms' edges are all in the edge data
    edge_pairs = set(zip(task.edges.inputs[:, 1].tolist(), task.edges.targets[:, 1].tolist()))
    p = task.graph.paths[task.test_arms[0]]
    assert all((int(a), int(b)) in edge_pairs for a, b in zip(p[:-1], p[1:]))


def test_in_context_examples_are_valid_stars():
    t = tasks.InContextPathStar(d=3, l=4, num_labels=20)
    ex = t.sample(16, torch.Generator().manual_seed(0))
    assert ex.inputs.shape == (16, t.seq_len)
    for row_in, row_t in zip(ex.inputs, ex.targets):
        e = row_in[: 2 * t.num_edges].view(-1, 2).tolist()
        path = row_t[row_t != IGNORE].tolist()
        assert len(path) == 4 and row_in[2 * t.num_edges + 1] == path[0] and row_in[2 * t.num_edges + 2] == path[-1]
        assert all([a, b] in e for a, b in zip(path[:-1], path[1:]))
        assert int(row_t[t.n1_position]) == path[1]
    with pytest.raises(ValueError):
        tasks.InContextPathStar(d=10, l=10, num_labels=20)
