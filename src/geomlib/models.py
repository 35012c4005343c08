"""The models of the paper, in plain torch.

Every model maps a batch of token rows ``idx`` (B, T) to next-token logits and, given
``targets`` (B, T), negative where no loss is taken (the tasks write ``IGNORE = -100`` there), returns
``(logits, loss)`` with logits computed **only at the target positions** (the output matmul
over the vocabulary dominates the cost on CPU).

* :class:`GPT`: nanoGPT-style decoder, learned positions, pre-LayerNorm, tied embeddings.
* :class:`Mamba`: selective state-space blocks (pure torch, sequential scan), tied embeddings.
* :class:`LinearNet`: ``logits = E W E^T``; ``freeze_embeddings=True`` is the associative control.
* :class:`Node2Vec`: 1-hop, tied, full softmax: ``P(v | u) = softmax_v(<E_u, E_v>)``.

The two shallow models (LinearNet, Node2Vec) read only the token at each target position: they
have no context, the query node *is* the input.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["GPTConfig", "GPT", "MambaConfig", "Mamba", "LinearNet", "Node2Vec", "build_model", "count_parameters"]


def _logits_and_loss(h: torch.Tensor, targets: torch.Tensor | None, head):
    """Apply ``head`` at target positions only and return (logits, mean cross-entropy)."""
    if targets is None:
        return head(h), None
    mask = targets >= 0  # a negative target (the tasks' IGNORE) takes no loss
    logits = head(h[mask])
    loss = F.cross_entropy(logits.float(), targets[mask])
    return logits, loss


def _node_rows(idx: torch.Tensor, targets: torch.Tensor | None, num_nodes: int) -> torch.Tensor:
    """``idx`` made safe to index a node table. A shallow model reads only the tokens at the
    target positions (all of them without targets): those must be node ids, else a clear error.
    A prefix token such as ``[EDGE]`` elsewhere is never read; it is mapped to a valid row only so
    that the whole batch can be indexed (and dropped out) in one go."""
    q = idx if targets is None else idx[targets >= 0]
    if q.numel() and (int(q.min()) < 0 or int(q.max()) >= num_nodes):
        bad = q[(q < 0) | (q >= num_nodes)][0].item()
        raise ValueError(f"token {bad} is not a node id in 0..{num_nodes - 1}: the shallow models are queried "
                         "with a node (a special token may only stand where no target is asked)")
    return idx.clamp(0, num_nodes - 1)


def _check_tokens(idx: torch.Tensor, vocab_size: int, where: str = "") -> None:
    """A clear error for a token outside ``0..vocab_size-1`` (the embedding's own is an opaque
    index error, or a device-side assert on a GPU); ``where`` prefixes the message (e.g. the
    trainer's stream)."""
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= vocab_size):
        bad = idx[(idx < 0) | (idx >= vocab_size)][0].item()
        raise ValueError(f"{where}token {bad} is outside the model's vocabulary of size {vocab_size} (tokens "
                         f"0..{vocab_size - 1}); build the model with the task's vocab.size")


# --------------------------------------------------------------------------- Transformer
@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    tied: bool = True
    freeze_embeddings: bool = False  # the associative control: token embeddings stay random
    init_std: float = 0.02
    emb_init_std: float | None = None  # token-embedding init scale (default: init_std)
    pos_init_std: float | None = None  # positional-embedding init scale (default: init_std; the release: 1.0)
    scaled_residual_init: bool = True  # GPT-2's init_std / sqrt(2 n_layer) for residual projections
    # (the release's version of it never fires: False is the release)
    bias: bool = True

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = cfg.dropout

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        if x.is_cuda or t > 64:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        else:  # measured: on CPU, for our short sequences, the plain math is ~3x faster than the fused kernel
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
            att = att.masked_fill(torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
            att = F.dropout(att.softmax(-1), self.dropout, self.training)
            y = att @ v
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """A nanoGPT-style decoder: learned positions, pre-LayerNorm blocks, tied token embeddings
    (``wte``, whose rows are the node embeddings the geometry metrics read)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.apply(self._init)
        if cfg.scaled_residual_init:
            for name, p in self.named_parameters():  # GPT-2 scaled init of residual projections
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, 0.0, cfg.init_std / math.sqrt(2 * cfg.n_layer))
        nn.init.normal_(self.wte.weight, 0.0, cfg.emb_init_std or cfg.init_std)
        if cfg.pos_init_std is not None:
            nn.init.normal_(self.wpe.weight, 0.0, cfg.pos_init_std)
        if cfg.tied:
            self.lm_head.weight = self.wte.weight
        if cfg.freeze_embeddings:
            self.wte.weight.requires_grad_(False)

    def _init(self, m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, self.config.init_std)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.config.block_size:
            raise ValueError(f"sequence length {t} exceeds block_size {self.config.block_size}")
        if not (idx.is_cuda and self.training):  # a GPU training step: the trainer checked its data once
            _check_tokens(idx, self.config.vocab_size)
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(t, device=idx.device)))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)

    def forward(self, idx, targets=None):
        return _logits_and_loss(self.hidden(idx), targets, self.lm_head)

    def next_logits(self, idx: torch.Tensor) -> torch.Tensor:
        """The logits of the token after each row of ``idx`` (B, vocab): the head applied at the last
        position only (decoding; the full ``forward`` would compute B x T x vocab)."""
        return self.lm_head(self.hidden(idx)[:, -1])

    def hidden_states(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's representation of ``idx``, (B, T, width) each: the block input (token plus
        position embeddings), each block's output, and the final LayerNorm's (what the head reads)."""
        _check_tokens(idx, self.config.vocab_size)
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device)))
        out = [x]
        for block in self.h:
            x = block(x)
            out.append(x)
        return out + [self.ln_f(x)]

    def token_embeddings(self) -> torch.Tensor:
        """The input embedding table (vocab, width): where the geometry is read."""
        return self.wte.weight.detach()


# --------------------------------------------------------------------------- Mamba
@dataclass
class MambaConfig:
    vocab_size: int
    n_layer: int = 2
    d_model: int = 128
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    tied: bool = True
    freeze_embeddings: bool = False
    init_std: float = 0.02
    block_size: int = 4096  # unused by the model (no positions); kept for a shared interface
    compile_scan: bool = True  # torch.compile the selective scan (falls back to eager, with a warning)
    # Variants of the authors' release (Mamba hypotheses; the defaults are the book's block):
    residual: bool = True  # x + mixer(norm(x)); the release applies mixer(norm(x)) with no residual
    final_norm: bool = True  # a LayerNorm before the output head; the release has none
    release_init: bool = False  # every Linear in a block N(0, init_std), zero biases (dt = softplus(0))
    no_decay_ssm: bool = False  # no weight decay on A_log, D, the conv and biases (reference Mamba)

    def __post_init__(self):
        for name in ("vocab_size", "n_layer", "d_model", "d_state", "d_conv", "expand"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


class MambaBlock(nn.Module):
    """Selective SSM block (Gu & Dao 2023): in-proj, causal depthwise conv, input-dependent
    (delta, B, C), diagonal state update ``h_t = exp(delta A) h_{t-1} + delta B x_t``, gated output."""

    def __init__(self, cfg: MambaConfig):
        super().__init__()
        d_inner = cfg.expand * cfg.d_model
        self.dt_rank = math.ceil(cfg.d_model / 16)
        self.d_state = cfg.d_state
        self.compile_scan = cfg.compile_scan
        self.norm = nn.LayerNorm(cfg.d_model)
        self.in_proj = nn.Linear(cfg.d_model, 2 * d_inner, bias=False)
        self.conv = nn.Conv1d(d_inner, d_inner, cfg.d_conv, groups=d_inner, padding=cfg.d_conv - 1)
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * cfg.d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, cfg.d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, cfg.d_model, bias=False)
        with torch.no_grad():  # dt initialised in [1e-3, 1e-1] as in the reference implementation
            dt = torch.exp(torch.rand(d_inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.residual = cfg.residual
        if cfg.release_init:
            for lin in (self.in_proj, self.x_proj, self.dt_proj, self.out_proj):
                nn.init.normal_(lin.weight, 0.0, cfg.init_std)
                if lin.bias is not None:
                    nn.init.zeros_(lin.bias)
        if cfg.no_decay_ssm:  # read by the trainer's AdamW parameter groups
            for p in (self.A_log, self.D, self.conv.weight, self.conv.bias, self.dt_proj.bias):
                p._no_weight_decay = True

    def forward(self, x):
        b, t, _ = x.shape
        xz = self.in_proj(self.norm(x))
        u, z = xz.chunk(2, dim=-1)
        u = F.silu(self._causal_conv(u))
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt)).float()  # (b, t, d_inner)
        A = -torch.exp(self.A_log.float())  # (d_inner, n)
        y = _scan(self.compile_scan)(delta, A, B.float(), C.float(), u.float())
        y = y.to(u.dtype) + u * self.D
        out = self.out_proj(y * F.silu(z))
        return x + out if self.residual else out

    def _causal_conv(self, u):
        """The depthwise causal convolution over time, as ``d_conv`` shifted multiply-adds: the
        same weights as ``self.conv`` but about 10x cheaper than Conv1d on these short sequences."""
        k, t = self.conv.weight.shape[-1], u.shape[1]
        w = self.conv.weight[:, 0, :]  # (d_inner, k); tap k-1 multiplies the current token
        padded = F.pad(u, (0, 0, k - 1, 0))
        out = self.conv.bias
        for j in range(k):
            out = out + padded[:, j: j + t] * w[:, j]
        return out


def selective_scan(delta, A, B, C, u):
    """The selective-SSM recurrence ``h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t``,
    ``y_t = C_t . h_t``, with ``delta, u: (b, t, d)``, ``A: (d, n)``, ``B, C: (b, t, n)``; returns
    ``y: (b, t, d)``. Written per step so that a compiler can fuse each step into one loop and
    never materialise the ``(b, t, d, n)`` tensors (sequences here are short)."""
    h = torch.zeros(u.shape[0], u.shape[2], A.shape[1], device=u.device, dtype=u.dtype)
    ys = []
    for i in range(u.shape[1]):
        h = torch.exp(delta[:, i, :, None] * A) * h + (delta[:, i, :, None] * u[:, i, :, None]) * B[:, i, None, :]
        ys.append((h * C[:, i, None, :]).sum(-1))
    return torch.stack(ys, 1)


_COMPILED: dict[str, object] = {}


def _scan(compile_scan: bool):
    """:func:`selective_scan`, compiled with ``torch.compile`` for training when asked and
    possible (3-4x faster on CPU here; about 20 s of compilation per sequence length). If compilation fails on
    this platform, warn once and run the plain version: the same numbers, only slower."""
    if not compile_scan or _COMPILED.get("failed") or not torch.is_grad_enabled():
        return selective_scan  # evaluation (no grad) is cheap, and greedy decoding's growing
        # lengths would each cost a compilation
    return _compiled_scan


def _compiled_scan(*args):
    try:
        if "fn" not in _COMPILED:
            fn = torch.compile(selective_scan, dynamic=True)
            # a trial forward *and backward* on copies of the first inputs: a compiled backward that
            # fails would otherwise escape later, from ``loss.backward()``, past this fallback
            trial = [a.detach().clone().requires_grad_(a.is_floating_point()) for a in args]
            fn(*trial).float().sum().backward()
            _COMPILED["fn"] = fn
        return _COMPILED["fn"](*args)
    except Exception as e:  # noqa: BLE001 - inductor needs a C++ toolchain; fall back loudly
        import warnings
        warnings.warn(f"torch.compile of the Mamba scan failed ({type(e).__name__}: {e}); using the "
                      "uncompiled scan (same results, slower)", RuntimeWarning, stacklevel=2)
        _COMPILED["failed"] = True
        return selective_scan(*args)


class Mamba(nn.Module):
    """A stack of selective state-space blocks (pure torch) with tied token embeddings and no
    positional embeddings."""

    def __init__(self, cfg: MambaConfig):
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(MambaBlock(cfg) for _ in range(cfg.n_layer))
        self.norm_f = nn.LayerNorm(cfg.d_model) if cfg.final_norm else nn.Identity()
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        nn.init.normal_(self.wte.weight, 0.0, cfg.init_std)
        nn.init.normal_(self.lm_head.weight, 0.0, cfg.init_std)
        if cfg.tied:
            self.lm_head.weight = self.wte.weight
        if cfg.freeze_embeddings:
            self.wte.weight.requires_grad_(False)

    def hidden(self, idx):
        if not (idx.is_cuda and self.training):  # a GPU training step: the trainer checked its data once
            _check_tokens(idx, self.config.vocab_size)
        x = self.wte(idx)
        for layer in self.layers:
            x = layer(x)
        return self.norm_f(x)

    def forward(self, idx, targets=None):
        return _logits_and_loss(self.hidden(idx), targets, self.lm_head)

    def next_logits(self, idx: torch.Tensor) -> torch.Tensor:
        """The logits of the token after each row of ``idx`` (B, vocab), as :meth:`GPT.next_logits`."""
        return self.lm_head(self.hidden(idx)[:, -1])

    def hidden_states(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's representation of ``idx``, (B, T, width) each: the token embeddings, each
        block's output, and the final norm's (what the head reads), as :meth:`GPT.hidden_states`."""
        _check_tokens(idx, self.config.vocab_size)
        x = self.wte(idx)
        out = [x]
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out + [self.norm_f(x)]

    def token_embeddings(self) -> torch.Tensor:
        """The input embedding table (vocab, width): where the geometry is read."""
        return self.wte.weight.detach()


# --------------------------------------------------------------------------- shallow models
class LinearNet(nn.Module):
    """``logits(u) = E_u W E^T`` over the ``num_nodes`` nodes.

    ``freeze_embeddings=True`` keeps ``E`` at its random init: every edge must then be stored
    in ``W`` as a lookup (associative memory), none in the geometry of ``E``.
    """

    def __init__(self, num_nodes: int, width: int, init_std: float = 0.02, w_init_std: float | None = None,
                 freeze_embeddings: bool = False, dropout: float = 0.0, dropout_after_w: bool = False):
        super().__init__()
        self.dropout_after_w = dropout_after_w  # the release: logits = E drop(W E_u); else drop(E_u) W E^T
        if num_nodes < 2 or width < 1:
            raise ValueError(f"LinearNet needs num_nodes >= 2 and width >= 1, got {num_nodes}, {width}")
        self.num_nodes = num_nodes
        self.E = nn.Parameter(torch.randn(num_nodes, width) * init_std, requires_grad=not freeze_embeddings)
        self.W = nn.Parameter(torch.randn(width, width) * (init_std if w_init_std is None else w_init_std))
        self.drop = nn.Dropout(dropout)

    def scores(self) -> torch.Tensor:
        """All logits, (N, N): row u is the model's answer to ``[EDGE] u``."""
        return self.E @ self.W @ self.E.T

    def forward(self, idx, targets=None):
        rows = self.E[_node_rows(idx, targets, self.num_nodes)]
        if self.dropout_after_w:
            return _logits_and_loss(rows, targets, lambda h: self.drop(h @ self.W) @ self.E.T)
        return _logits_and_loss(self.drop(rows), targets, lambda h: h @ self.W @ self.E.T)

    def token_embeddings(self) -> torch.Tensor:
        return self.E.detach()


class Node2Vec(nn.Module):
    """1-hop Node2Vec with a full softmax and tied embeddings: only a table ``E``.

    It has no matrix in which to store a lookup, so whatever it memorises is geometry.
    """

    LOSSES = ("mean", "node_sum")

    def __init__(self, num_nodes: int, dim: int = 100, init_std: float = 0.02, loss: str = "mean"):
        super().__init__()
        if num_nodes < 2 or dim < 1:
            raise ValueError(f"Node2Vec needs num_nodes >= 2 and dim >= 1, got {num_nodes}, {dim}")
        if loss not in self.LOSSES:
            raise ValueError(f"Node2Vec loss must be one of {self.LOSSES}, got {loss!r}")
        self.num_nodes = num_nodes
        self.loss = loss  # "mean": over the batch's edges; "node_sum" (the release): per source node, summed
        self.E = nn.Parameter(torch.randn(num_nodes, dim) * init_std)

    def scores(self) -> torch.Tensor:
        return self.E @ self.E.T

    def forward(self, idx, targets=None):
        rows = _node_rows(idx, targets, self.num_nodes)
        if targets is None or self.loss == "mean":
            return _logits_and_loss(self.E[rows], targets, lambda h: h @ self.E.T)
        # the release's objective: the sum over source nodes u of the mean over u's neighbours of
        # -log P(v | u), i.e. each edge's loss weighted by 1 / (edges from u in the batch), summed
        mask = targets >= 0
        u = rows[mask]
        logits = self.E[u] @ self.E.T
        ce = F.cross_entropy(logits.float(), targets[mask], reduction="none")
        return logits, (ce / torch.bincount(u, minlength=self.num_nodes)[u]).sum()

    def token_embeddings(self) -> torch.Tensor:
        return self.E.detach()


def node2vec_loss(E: torch.Tensor, directed_edges: torch.Tensor) -> torch.Tensor:
    """1-hop Node2Vec's objective on any embedding table ``E`` (rows = nodes): mean over the
    directed edges ``u -> v`` of ``-log softmax_v(<E_u, E_w>)``, full softmax over the rows. As an
    auxiliary loss it pulls a sequence model's token embeddings towards Node2Vec's geometry."""
    return F.cross_entropy(E[directed_edges[:, 0]] @ E.T, directed_edges[:, 1])


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Distinct parameters (tied weights counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


_MODELS = {"gpt": (GPT, GPTConfig), "mamba": (Mamba, MambaConfig)}
_SHALLOW = {"linear": LinearNet, "node2vec": Node2Vec}


def build_model(kind: str, **config) -> nn.Module:
    """Build a model from a plain dict (as stored in presets and caches): ``"gpt"`` and
    ``"mamba"`` take their config fields; ``"linear"`` and ``"node2vec"`` take ``num_nodes`` and
    their constructor arguments."""
    try:
        if kind in _SHALLOW:
            return _SHALLOW[kind](**config)
        if kind in _MODELS:
            cls, cfg_cls = _MODELS[kind]
            return cls(cfg_cls(**config))
    except TypeError as e:
        raise ValueError(f"bad {kind} config: {e}") from None
    raise ValueError(f"unknown model kind {kind!r}; choose from {sorted(_MODELS) + sorted(_SHALLOW)}")

