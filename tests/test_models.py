import pytest
import torch

from geomlib import models, specs, tasks
from geomlib.evaluate import edge_recall, edge_scores, path_accuracy
from geomlib.graphs import cycle
from geomlib.models import mamba
from geomlib.train import TrainConfig, train


@pytest.fixture(scope="module")
def star_task():
    return tasks.pathstar_task(4, 4, seed=0, train_fraction=0.75)


def _fit(model, data, steps, lr=1e-2):
    torch.manual_seed(0)
    return train(model, data, TrainConfig(steps=steps, lr=lr, warmup=10), progress=False)


@pytest.mark.parametrize("kind", ["gpt", "mamba"])
def test_sequence_models_overfit_edges_and_paths(kind, star_task):
    t = star_task
    spec, extra = (specs.GPT(n_layer=1, n_head=2, n_embd=32), dict(block_size=16)) if kind == "gpt" else \
        (specs.Mamba(n_layer=1, d_model=32), {})
    torch.manual_seed(0)
    m = models.build_model(spec, vocab_size=t.vocab.size, **extra)
    _fit(m, {"edges": t.edges, "paths": t.train_paths}, 300)
    g = t.graph
    assert edge_recall(edge_scores(m, t.vocab), g, k="degree") == 1.0
    assert path_accuracy(m, t.train_paths, t.vocab)["full_path"] == 1.0


@pytest.mark.parametrize("make", [lambda n: models.LinearNet(n, 32), lambda n: models.Node2Vec(n, 32, init_std=0.1),
                                  lambda n: models.LinearNet(n, 64, init_std=0.125, w_init_std=0.0, freeze_embeddings=True)])
def test_shallow_models_memorise_a_cycle(make):
    g = cycle(8, seed=0)
    v = tasks.Vocab(g.num_nodes)
    torch.manual_seed(0)
    m = make(g.num_nodes)
    _fit(m, tasks.edge_examples(g, v), 400, lr=3e-2)
    assert edge_recall(m.scores().detach(), g, k="degree") == 1.0
    assert torch.allclose(edge_scores(m, v), m.scores().detach(), atol=1e-5)


def test_logits_only_at_target_positions(star_task):
    m = models.build_model(specs.GPT(n_layer=1, n_head=1, n_embd=16), vocab_size=star_task.vocab.size, block_size=16)
    logits, loss = m(star_task.train_paths.inputs, star_task.train_paths.targets)
    assert logits.shape == (star_task.train_paths.num_targets, star_task.vocab.size) and loss.ndim == 0
    assert m(star_task.train_paths.inputs)[0].shape[:2] == star_task.train_paths.inputs.shape


def test_frozen_embeddings_and_tying():
    m = models.build_model(specs.GPT(n_layer=1, n_head=1, n_embd=8, freeze_embeddings=True), vocab_size=10, block_size=4)
    assert m.lm_head.weight is m.wte.weight and not m.wte.weight.requires_grad
    assert models.count_parameters(m) < models.count_parameters(m, trainable_only=False)
    untied = models.build_model(specs.GPT(n_layer=1, n_head=1, n_embd=8, tied=False), vocab_size=10, block_size=4)
    assert untied.lm_head.weight is not untied.wte.weight
    big = models.build_model(specs.GPT(n_layer=1, n_head=1, n_embd=64, emb_init_std=1.0), vocab_size=10, block_size=4)
    assert 0.8 < big.wte.weight.std().item() < 1.2


def test_bad_model_configs_raise():
    with pytest.raises(ValueError, match="multiple of n_head"):
        specs.GPT(n_layer=1, n_embd=10, n_head=3)
    with pytest.raises(TypeError, match="n_heads"):
        specs.GPT(n_layer=1, n_heads=2, n_embd=8)
    with pytest.raises(TypeError, match="takes a model spec"):
        models.build_model("gpt", vocab_size=10)
    gpt = specs.GPT(n_layer=1, n_head=1, n_embd=8)
    with pytest.raises(TypeError, match="sizes vocab_size, block_size; got vocab_size"):
        models.build_model(gpt, vocab_size=10)
    with pytest.raises(ValueError, match="vocab_size must be >= 1, got 0"):
        models.build_model(gpt, vocab_size=0, block_size=4)
    with pytest.raises(ValueError, match="dropout must be in"):
        specs.GPT(n_layer=1, n_head=1, n_embd=8, dropout=1.5)
    m = models.build_model(gpt, vocab_size=10, block_size=4)
    with pytest.raises(ValueError, match="block_size"):
        m(torch.zeros(1, 5, dtype=torch.long))


def test_mamba_is_causal():
    torch.manual_seed(0)
    m = models.build_model(specs.Mamba(n_layer=2, d_model=16), vocab_size=12)
    x = torch.randint(0, 12, (2, 7))
    y = x.clone()
    y[:, 5:] = (y[:, 5:] + 1) % 12
    a, b = m(x)[0], m(y)[0]
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6) and not torch.allclose(a[:, 5:], b[:, 5:])


def test_cpu_attention_matches_sdpa():
    """The model's own attention on a CPU (the plain-math path taken for short sequences) gives what
    PyTorch's fused scaled_dot_product_attention gives, causal mask included."""
    torch.manual_seed(0)
    m = models.build_model(specs.GPT(n_layer=2, n_head=2, n_embd=16), vocab_size=20, block_size=8).eval()
    attn = m.h[0].attn
    x = torch.randn(3, 8, 16)
    with torch.no_grad():
        ours = attn(x)  # t = 8 <= 64 on a CPU tensor: the plain-math branch
        q, k, v = (z.view(3, 8, 2, 8).transpose(1, 2) for z in attn.c_attn(x).split(16, dim=2))
        ref = attn.c_proj(torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
                          .transpose(1, 2).reshape(3, 8, 16))
        assert torch.allclose(ours, ref, atol=1e-6)
        # and the mask matters: a later position changes no earlier one's output
        later = x.clone()
        later[:, 5:] += 1.0
        assert torch.allclose(attn(later)[:, :5], ours[:, :5], atol=1e-6) and not torch.allclose(attn(later), ours)


def test_mamba_fast_paths_match_the_reference():
    """The compiled scan and the shifted multiply-add convolution give the reference numbers."""
    torch.manual_seed(0)
    b, t, d, n = 5, 4, 8, 3
    args = [torch.rand(b, t, d), -torch.rand(d, n), torch.randn(b, t, n), torch.randn(b, t, n), torch.randn(b, t, d)]
    ref = torch.zeros(b, t, d)
    h = torch.zeros(b, d, n)
    for i in range(t):  # the recurrence, written out with explicit (b, d, n) tensors
        h = torch.exp(args[0][:, i, :, None] * args[1]) * h + args[0][:, i, :, None] * args[4][:, i, :, None] * args[2][:, i, None, :]
        ref[:, i] = torch.einsum("bdn,bn->bd", h, args[3][:, i])
    assert torch.allclose(mamba.selective_scan(*args), ref, atol=1e-5)
    assert torch.allclose(mamba._scan(True)(*args), ref, atol=1e-5)
    block = models.MambaBlock(specs.Mamba(n_layer=1, d_model=8))
    u = torch.randn(b, t, 16)
    conv = block.conv(u.transpose(1, 2))[..., :t].transpose(1, 2)
    assert torch.allclose(block._causal_conv(u), conv, atol=1e-5)


def test_mamba_release_variants_are_options_with_the_books_block_as_default():
    from geomlib.models import Mamba
    from geomlib.tasks import Examples
    from geomlib.train import TrainConfig, train

    torch.manual_seed(0)
    book = Mamba(specs.Mamba(n_layer=2, d_model=16), vocab_size=12, compile_scan=False)
    release = Mamba(specs.Mamba(n_layer=2, d_model=16, residual=False, final_norm=False, release_init=True,
                                no_decay_ssm=True), vocab_size=12, compile_scan=False)
    assert isinstance(release.norm_f, torch.nn.Identity) and isinstance(book.norm_f, torch.nn.LayerNorm)
    block = release.layers[0]
    assert torch.all(block.dt_proj.bias == 0)  # dt = softplus(0) = 0.69 in every channel
    assert 0.015 < block.in_proj.weight.std() < 0.025
    x = torch.randn(2, 5, 16)
    assert not torch.allclose(block(x), book.layers[0].__class__.forward(block, x) + x)  # no residual
    # no weight decay on the SSM parameters: under a strong decay (lr x wd = 0.1 a step) they move
    # only by Adam's own steps (<= lr each), while the book's block shrinks A_log (a 2-D tensor)
    data = Examples(torch.randint(0, 12, (4, 3)), torch.full((4, 3), -100))
    data.targets[:, -1] = 1
    cfg = TrainConfig(steps=2, lr=1e-3, weight_decay=100.0, grad_clip=None)
    a_log = block.A_log.detach().clone()
    train(release, data, cfg, progress=False)
    assert (block.A_log - a_log).abs().max() < 3e-3
    book_a = book.layers[0].A_log.detach().clone()
    train(book, data, cfg, progress=False)
    assert (book_a - book.layers[0].A_log).max() > 0.3


def test_node2vec_node_sum_loss_is_the_release_objective():
    """The release's Node2Vec loss: for each source node, the mean over its neighbours of
    -log P(v | u), summed over nodes; a bad loss name is refused when the model is built."""
    torch.manual_seed(0)
    m = models.Node2Vec(5, 8, init_std=1.0, loss="node_sum")
    src = torch.tensor([0, 0, 0, 1, 2, 2, 4])
    dst = torch.tensor([1, 2, 3, 0, 0, 4, 2])
    _, loss = m(src[:, None], dst[:, None])
    logp = torch.log_softmax(m.E @ m.E.T, dim=1)
    expected = sum(-logp[u, dst[src == u]].mean() for u in src.unique())
    assert torch.allclose(loss, expected, atol=1e-5)
    with pytest.raises(ValueError, match="loss must be one of"):
        models.Node2Vec(5, 8, loss="sum")


# ----------------------------------------------------------------------------- the GPU path, checked on the CPU
@pytest.mark.parametrize("spec, kw", [(specs.GPT(n_layer=2, n_head=2, n_embd=16), dict(block_size=8)),
                                      (specs.Mamba(n_layer=2, d_model=16), dict(compile_scan=False))])
def test_decoding_computes_the_head_only_where_it_reads_it(spec, kw):
    """Greedy decoding and edge scores apply the head at the last position only (at the paper's
    scale the full forward made B x T x 50,006 logits per step), with the same result."""
    from geomlib.evaluate import greedy_decode
    torch.manual_seed(0)
    model = models.build_model(spec, vocab_size=23, **kw).eval()
    idx = torch.randint(0, 23, (64, 5))
    with torch.no_grad():
        assert torch.allclose(model.next_logits(idx), model(idx)[0][:, -1], atol=1e-6)
        seq = idx[:, :3]
        for _ in range(4):  # the former decoding: the whole forward, its last row
            seq = torch.cat([seq, model(seq)[0][:, -1, :18].argmax(-1, keepdim=True)], 1)
    assert torch.equal(greedy_decode(model, idx[:, :3], 4, allowed=18), seq[:, 3:])


def test_a_compiled_scan_whose_backward_fails_falls_back(monkeypatch):
    """The compile fallback guarded the forward only: a compiled backward that fails escaped from
    ``loss.backward()``. Now the first compiled call tries forward and backward."""
    class BrokenBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            raise RuntimeError("the compiled backward failed")

    monkeypatch.setattr(mamba, "_COMPILED", {})
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: (lambda *a: BrokenBackward.apply(fn(*a))))
    torch.manual_seed(0)
    model = models.Mamba(specs.Mamba(n_layer=2, d_model=16), vocab_size=12, compile_scan=True)
    idx = torch.randint(0, 12, (4, 6))
    with pytest.warns(RuntimeWarning, match="uncompiled scan"):
        loss = model(idx, idx)[1]
    loss.backward()  # no escape
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    plain = models.Mamba(specs.Mamba(n_layer=2, d_model=16), vocab_size=12, compile_scan=False)
    plain.load_state_dict(model.state_dict())
    plain(idx, idx)[1].backward()
    assert all(torch.allclose(a, p.grad) for a, p in zip(grads, plain.parameters()))


def test_every_mamba_hypothesis_is_a_spec_the_models_build(monkeypatch):
    """The hypothesis runs of 'Mamba too?' (benchmarks/mamba_hypotheses.py) name model settings and
    stage settings by keyword; each variant must be a valid spec (two were not: ``no_decay_ssm``
    lived only in the model's former config class, ``path_fraction`` was passed to the trainer)."""
    from pathlib import Path

    from geomlib.specs import plain
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import mamba_hypotheses as mh
    for name in mh.VARIANTS:
        run = mh.variant_config(name)
        models.build_model(run.model, vocab_size=30, compile_scan=False)
        assert plain(run.model)["kind"] == "mamba"
    assert plain(mh.variant_config("no decay on SSM parameters").model)["no_decay_ssm"] is True
    assert "no_decay_ssm" not in plain(mh.variant_config("baseline").model)  # keyed when set
    assert mh.variant_config("natural path share").stages[1].path_fraction is None


def _grads(model, *args, **kw):
    model.zero_grad(set_to_none=True)
    loss = model(*args, **kw)[1]
    loss.backward()
    return float(loss), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("kind", ["gpt", "mamba"])
def test_chunked_head_is_the_full_batch_loss_and_gradient(kind):
    """An exact full batch: the chunked head over each distinct input once (an interior node's two
    neighbours, the root's d) gives the plain head's loss and gradient, in fp32 to rounding, and in
    bf16 as close to fp32's as the plain head's bf16 is."""
    t = tasks.pathstar_task(12, 5, seed=0)
    spec = specs.GPT(n_layer=2, n_head=2, n_embd=32) if kind == "gpt" else specs.Mamba(n_layer=1, d_model=16)
    sizes = {"block_size": 8} if kind == "gpt" else {}
    torch.manual_seed(0)
    m = models.build_model(spec, vocab_size=t.vocab.size, **sizes)
    with torch.no_grad():
        m.wte.weight.normal_(0.0, 0.1)  # logits far from uniform
    e = t.edges
    inputs, source = torch.unique(e.inputs, dim=0, return_inverse=True)
    assert len(inputs) == t.graph.num_nodes < len(e)
    loss, ref = _grads(m, e.inputs, e.targets)
    for chunk in (1, 7, 10_000):
        got, g = _grads(m, inputs, e.targets, source=source, head_chunk=chunk)
        assert got == pytest.approx(loss, rel=1e-6)
        for n in ref:
            assert torch.allclose(g[n], ref[n], rtol=1e-4, atol=1e-6 * ref[n].abs().max()), n
    paths = t.train_paths  # several targets per row, none shared
    loss, ref = _grads(m, paths.inputs, paths.targets)
    got, g = _grads(m, paths.inputs, paths.targets, head_chunk=5)
    assert got == pytest.approx(loss, rel=1e-6) and all(torch.allclose(g[n], ref[n], atol=1e-6) for n in ref)
    if kind == "gpt":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _, plain = _grads(m, e.inputs, e.targets)
            _, chunked = _grads(m, inputs, e.targets, source=source, head_chunk=7)
        _, ref = _grads(m, e.inputs, e.targets)
        for n in ("wte.weight", "h.0.mlp.c_fc.weight", "h.1.attn.c_attn.weight"):
            off = lambda g: float((g[n] - ref[n]).norm() / ref[n].norm())  # noqa: E731
            assert off(chunked) < max(2 * off(plain), 0.01), n


def test_chunked_head_bad_input_is_refused():
    t = tasks.pathstar_task(4, 4, seed=0)
    m = models.build_model(specs.GPT(n_layer=1, n_head=1, n_embd=8), vocab_size=t.vocab.size, block_size=8)
    with pytest.raises(ValueError, match="head_chunk"):
        m(t.edges.inputs, t.edges.targets, source=torch.zeros(len(t.edges), dtype=torch.long))
    with pytest.raises(ValueError, match="head_chunk must be >= 1"):
        TrainConfig(steps=1, head_chunk=0)
    net = models.build_model(specs.Linear(width=8), num_nodes=t.graph.num_nodes)
    with pytest.raises(ValueError, match="decoder"):
        train(net, t.edges, TrainConfig(steps=1, head_chunk=4), progress=False)


_MEMORY = """
import resource, torch
from geomlib import models, specs, tasks
from geomlib.models.base import _chunked_loss
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
torch.manual_seed(0)
t = tasks.pathstar_task(4000, 6, seed=0)  # 40,000 edge examples, a 20,006-token vocabulary
m = models.build_model(specs.GPT(n_layer=2, n_head=4, n_embd=128), vocab_size=t.vocab.size, block_size=8)
inputs, source = torch.unique(t.edges.inputs, dim=0, return_inverse=True)
start = peak()
h = m.hidden(inputs)
body = peak()
_chunked_loss(h, t.edges.targets, source, m.lm_head.weight, 512).backward()
print(body - start, peak() - body)
"""


def test_chunked_head_memory_is_bounded_by_the_chunk():
    """A full-batch step over 40,000 edge examples (20,001 distinct inputs) and a 20,006-token
    vocabulary: the plain head's fp32 logits alone would be 1.6 GB over the distinct inputs (3.2 GB
    over the examples), and their gradient as much again; the chunked head and the backward pass add
    less than 300 MB to the peak of the body's forward (its activations: about 20 KB per input token
    for the 2 x 128 GPT, which the chunking does not bound)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _MEMORY], capture_output=True, text=True, check=True)
    body, head = (int(x) for x in out.stdout.split()[-2:])
    assert head < 300e6, f"the chunked head and backward grew the peak by {head / 1e6:.0f} MB (body {body / 1e6:.0f} MB)"


def test_chunked_head_loss_where_the_softmax_underflows():
    """A target 200 nats below the best logit: its softmax entry is 0 in fp32, and the loss is still exact."""
    import torch.nn.functional as F

    from geomlib.models.base import linear_cross_entropy

    h = torch.tensor([[100.0, 0.0], [0.5, 0.2]], requires_grad=True)
    w = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    rows, targets = torch.tensor([0, 0, 1]), torch.tensor([1, 0, 2])
    got = linear_cross_entropy(h, w, rows, targets, chunk=1)
    want = F.cross_entropy(h[rows] @ w.T, targets)
    assert torch.isfinite(got) and got.item() == pytest.approx(want.item(), rel=1e-6)
    (g_h, g_w), (w_h, w_w) = torch.autograd.grad(got, (h, w)), torch.autograd.grad(want, (h, w))
    assert torch.allclose(g_h, w_h, atol=1e-6) and torch.allclose(g_w, w_w, atol=1e-6)
