"""What every model shares: the loss at the target positions only, the token check, and the
decoder stack of the GPT and the Mamba (:class:`Decoder`)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Decoder"]


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

    def forward(self, idx, targets=None):
        return _logits_and_loss(self.hidden(idx), targets, self.lm_head)

    def next_logits(self, idx: torch.Tensor) -> torch.Tensor:
        """The logits of the token after each row of ``idx`` (B, vocab): the head applied at the last
        position only (decoding; the full ``forward`` would compute B x T x vocab)."""
        return self.lm_head(self.hidden(idx)[:, -1])

    def token_embeddings(self) -> torch.Tensor:
        """The input embedding table (vocab, width): where the geometry is read."""
        return self.wte.weight.detach()
