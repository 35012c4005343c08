"""What every model shares: the loss at the target positions only, the token check, and the
decoder stack of the GPT and the Mamba (:class:`Decoder`)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Decoder", "linear_cross_entropy"]


def _logits_and_loss(h: torch.Tensor, targets: torch.Tensor | None, head):
    """Apply ``head`` at target positions only and return (logits, mean cross-entropy)."""
    if targets is None:
        return head(h), None
    mask = targets >= 0  # a negative target (the tasks' IGNORE) takes no loss
    logits = head(h[mask])
    loss = F.cross_entropy(logits.float(), targets[mask])
    return logits, loss


class _LinearCrossEntropy(torch.autograd.Function):
    """Sum over targets of ``-log softmax(h[rows[j]] @ W^T)[targets[j]]``, computed ``chunk`` rows
    of ``h`` at a time: the (rows, vocab) logits are never held whole, and the gradient is
    computed in the same pass (the loss is only ever scaled before ``backward``). The chunk's
    buffers are allocated once: a fresh 100 MB tensor per chunk costs more than its matmul on a CPU."""

    @staticmethod
    def forward(ctx, h, weight, rows, targets, chunk, dtype):
        grads = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        order = torch.argsort(rows, stable=True)  # targets grouped by their row: a chunk's are one slice
        rows, targets = rows[order], targets[order]
        n, vocab = h.shape[0], weight.shape[0]
        count = torch.bincount(rows, minlength=n).to(torch.float32)  # targets per row
        bounds = torch.searchsorted(rows, torch.arange(0, n + chunk, chunk, device=rows.device)).tolist()
        hc, wc = h.to(dtype), weight.to(dtype)
        grad_h = torch.empty_like(h) if grads else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if grads else None
        total = torch.zeros((), dtype=torch.float32, device=h.device)
        width = min(chunk, n)
        new = lambda dt: torch.empty(width, vocab, dtype=dt, device=h.device)  # noqa: E731
        z, p = new(torch.float32), new(torch.float32)  # the logits; the softmax, then the logits' gradient
        low = z if dtype == torch.float32 else new(dtype)  # the matrix products' dtype
        minus_one = torch.tensor(-1.0, device=h.device)
        for i, a in enumerate(range(0, n, chunk)):
            b, (s, e) = min(a + chunk, n), bounds[i:i + 2]
            r, t = rows[s:e] - a, targets[s:e]
            zc, pc, lc = z[: b - a], p[: b - a], low[: b - a]
            torch.mm(hc[a:b], wc.t(), out=lc)
            if lc is not zc:
                zc.copy_(lc)
            torch.ops.aten._softmax.out(zc, -1, False, out=pc)
            pt = pc[r, t]
            loss = -pt.log()  # = lse - z_t, exactly; where p_t underflows, lse is computed for that row
            lost = ~(pt > 1e-30)
            if lost.any():
                loss[lost] = torch.logsumexp(zc[r[lost]], -1) - zc[r[lost], t[lost]]
            total += loss.sum()
            if grads:  # d/dz of the chunk's loss: count x softmax - one-hot of each target, in fp32
                pc.mul_(count[a:b, None]).index_put_((r, t), minus_one, accumulate=True)
                g = lc.copy_(pc) if lc is not zc else pc
                grad_h[a:b] = g @ wc
                grad_w += g.t() @ hc[a:b]
        ctx.save_for_backward(grad_h, grad_w)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        return grad_out * grad_h, grad_out * grad_w, None, None, None, None


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor,
                         chunk: int) -> torch.Tensor:
    """The mean cross-entropy of the head ``weight`` (vocab, width) over targets ``j``, each read
    at hidden state ``h[rows[j]]``, computed ``chunk`` rows of ``h`` at a time without the whole
    (rows, vocab) logits tensor. The same value and gradient as ``F.cross_entropy(h[rows] @
    weight.T, targets)`` up to summation order; a row asked for several targets (an interior node's
    two neighbours) is computed once. Matrix products run in the autocast dtype when autocast is
    on (as the plain head's would), softmax and loss in fp32."""
    dtype = torch.get_autocast_dtype(h.device.type) if torch.is_autocast_enabled(h.device.type) else torch.float32
    with torch.autocast(h.device.type, enabled=False):
        return _LinearCrossEntropy.apply(h, weight, rows, targets, int(chunk), dtype) / len(targets)


def _chunked_loss(h: torch.Tensor, targets: torch.Tensor, source: torch.Tensor | None, weight: torch.Tensor,
                  chunk: int) -> torch.Tensor:
    """The loss of :func:`_logits_and_loss` by :func:`linear_cross_entropy`: ``h`` (M', T, width)
    holds the hidden states of distinct input rows; example ``i``'s targets (``targets[i]``) are
    read at row ``source[i]`` of ``h`` (``i`` without ``source``)."""
    i, t = (targets >= 0).nonzero(as_tuple=True)
    at = (i if source is None else source[i]) * h.shape[1] + t  # the hidden state each target reads
    used, rows = torch.unique(at, return_inverse=True)
    return linear_cross_entropy(h.reshape(-1, h.shape[-1])[used], weight, rows, targets[i, t], chunk)


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


def check_tokens(idx: torch.Tensor, vocab_size: int, where: str = "") -> None:
    """A clear error for a token outside ``0..vocab_size-1`` (the embedding's own is an opaque
    index error, or a device-side assert on a GPU); ``where`` prefixes the message (e.g. the
    trainer's stream)."""
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= vocab_size):
        bad = idx[(idx < 0) | (idx >= vocab_size)][0].item()
        raise ValueError(f"{where}token {bad} is outside the model's vocabulary of size {vocab_size} (tokens "
                         f"0..{vocab_size - 1}); build the model with the task's vocab.size")


class Decoder(nn.Module):
    """What the GPT and the Mamba share: token embeddings ``wte`` (whose rows are the node
    embeddings the geometry metrics read), a stack of blocks, a final norm, the output head."""

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:  # the stack's input
        raise NotImplementedError

    def _stack(self) -> tuple[nn.ModuleList, nn.Module]:  # the blocks and the final norm
        raise NotImplementedError

    def hidden_states(self, idx: torch.Tensor, check: bool = True) -> list[torch.Tensor]:
        """Every layer's representation of ``idx``, (B, T, width) each: the stack's input (token
        embeddings, plus positions for the GPT), each block's output, and the final norm's (what
        the head reads). ``check``: refuse a token outside the vocabulary first."""
        if check:
            check_tokens(idx, self.vocab_size)
        blocks, norm = self._stack()
        x = self._embed(idx)
        out = [x]
        for block in blocks:
            x = block(x)
            out.append(x)
        return out + [norm(x)]

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """The final norm's output (what the head reads). A GPU training step skips the token
        check: the trainer checked its data once."""
        return self.hidden_states(idx, check=not (idx.is_cuda and self.training))[-1]

    def forward(self, idx, targets=None, *, source: torch.Tensor | None = None, head_chunk: int | None = None):
        """``(logits, loss)`` (see :mod:`geomlib.models`). With ``head_chunk`` the loss is computed
        by :func:`linear_cross_entropy`, ``head_chunk`` rows at a time, and no logits are returned
        (``None``); ``source`` (M,) then says which row of ``idx`` each of the M rows of
        ``targets`` reads, so that examples sharing an input are computed once."""
        if head_chunk is None or targets is None:
            if source is not None:
                raise ValueError("source (examples sharing an input) needs head_chunk and targets")
            return _logits_and_loss(self.hidden(idx), targets, self.lm_head)
        return None, _chunked_loss(self.hidden(idx), targets, source, self.lm_head.weight, head_chunk)

    def next_logits(self, idx: torch.Tensor) -> torch.Tensor:
        """The logits of the token after each row of ``idx`` (B, vocab): the head applied at the last
        position only (decoding; the full ``forward`` would compute B x T x vocab)."""
        return self.lm_head(self.hidden(idx)[:, -1])

    def token_embeddings(self) -> torch.Tensor:
        """The input embedding table (vocab, width): where the geometry is read."""
        return self.wte.weight.detach()
