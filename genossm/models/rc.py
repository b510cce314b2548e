"""Reverse-complement symmetry: exact equivariance by weight sharing, and strand averaging.

RC equivariance (Caduceus-PS, Schiff et al. 2024), for bidirectional models. The hidden state
`(B, L, 2d)` holds two strands: channels [0, d) belong to the forward strand, channels [d, 2d)
to the reverse strand, stored reversed in position AND channel order. The map

    rc_hidden(h) = h.flip(positions, channels)

swaps the two halves and reverses each, so it is what reverse-complementing the input must do
to every hidden state. Each piece keeps that exactly:
- embedding: E(x) = [emb(x), flip_channels(emb(complement(x)))];
- every layer (norm, mixer, residual, MLP) f, with ONE set of weights: F(h) = [f(h1),
  rc(f(rc(h2)))]; then F(rc_hidden(h)) = rc_hidden(F(h)) for any f, so depth keeps it;
- LM head: logits = W h1 + (W flip_channels(h2))[complement of each vocabulary id].
Together: logits(RC(x)) = logits(x) flipped in position with the vocabulary complemented, up to
float rounding. `strand_embeddings` folds the two halves into one `(B, L, d)` per-position
embedding that is the same for x at position l and for RC(x) at position L-1-l.

`rc_average(model, tokens)` is for ANY model at inference and says exactly what it averages:
see its docstring.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from genossm.tokenizer import reverse_complement_tokens


def complement_permutation(vocab_size: int, device=None, vocabulary=None) -> torch.Tensor:
    """Vocabulary id -> id of its complement (A<->T, C<->G; N, specials and padding ids fixed).

    `vocabulary` (a `genossm.tokenizer.Vocabulary`, e.g. `config.tokenizer.vocabulary()`):
    the model's token ids; None is genossm's own (A C G T N MASK PAD)."""
    if vocabulary is not None and not vocabulary.is_default:
        return torch.as_tensor(vocabulary.complement(vocab_size), device=device)
    ids = torch.arange(vocab_size, device=device)
    base_ids = reverse_complement_tokens(ids[:7]).flip(-1)  # the tokenizer's complement table
    return torch.cat([base_ids, ids[7:]])


def rc_hidden(h: torch.Tensor) -> torch.Tensor:
    """What reverse-complementing the input does to a strand-pair hidden state `(B, L, C)`."""
    return h.flip(1, 2)


def swap_halves(h: torch.Tensor) -> torch.Tensor:
    """`(B, L, 2d)` -> the two strand halves exchanged, each kept as stored (not re-oriented).

    Caduceus-PS's blocks with fused add+norm read the halves this way round (their fused path
    normalises `h[..., d:]` as the forward strand and `h[..., :d]` flipped as the reverse one),
    so the published PS models apply this before every block (`ModelConfig.rc_swap_halves`). It
    commutes with `rc_hidden`, so the model stays RC-equivariant."""
    d = h.shape[-1] // 2
    return torch.cat([h[..., d:], h[..., :d]], dim=-1)


def strand_embeddings(h: torch.Tensor) -> torch.Tensor:
    """`(B, L, 2d)` strand-pair hidden state -> `(B, L, d)`: mean of the forward strand's
    features and the reverse strand's features of the same base pair (channel order restored)."""
    d = h.shape[-1] // 2
    return 0.5 * (h[..., :d] + h[..., d:].flip(-1))


class RCEquivariantEmbedding(nn.Module):
    def __init__(self, vocab_size: int, d_model: int, vocabulary=None):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.register_buffer("complement", complement_permutation(vocab_size, vocabulary=vocabulary),
                             persistent=False)

    @property
    def weight(self) -> torch.Tensor:
        return self.embedding.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        forward_strand = self.embedding(tokens)  # (B, L, d)
        reverse_strand = self.embedding(self.complement[tokens]).flip(-1)  # (B, L, d)
        return torch.cat([forward_strand, reverse_strand], dim=-1)  # (B, L, 2d)


class RCEquivariantWrapper(nn.Module):
    """Runs a `(B, L, d) -> (B, L, d)` module on both strands of a `(B, L, 2d)` state.

    The two strands go through the module as one batch of 2B (one set of weights, one kernel
    launch); the wrapped module's `forward_chunked` is wrapped the same way.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def _both_strands(self, fn, h: torch.Tensor) -> torch.Tensor:
        d = h.shape[-1] // 2
        batch = h.shape[0]
        stacked = torch.cat([h[..., :d], rc_hidden(h[..., d:])], dim=0)  # (2B, L, d)
        out = fn(stacked)
        return torch.cat([out[:batch], rc_hidden(out[batch:])], dim=-1)  # (B, L, 2d)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self._both_strands(self.module, h)

    def forward_chunked(self, h: torch.Tensor, chunk_size: int) -> torch.Tensor:
        return self._both_strands(lambda x: self.module.forward_chunked(x, chunk_size), h)


def rc_equivariant_logits(h: torch.Tensor, weight: torch.Tensor, complement: torch.Tensor) -> torch.Tensor:
    """LM head on a strand-pair state `(B, L, 2d)` with head weight `(V, d)` -> `(B, L, V)`."""
    d = h.shape[-1] // 2
    forward_logits = nn.functional.linear(h[..., :d], weight)  # (B, L, V)
    # The reverse strand predicts the complement of each base: read its logits through the
    # complement permutation so both halves vote for the same forward-strand base.
    reverse_logits = nn.functional.linear(h[..., d:].flip(-1), weight)[..., complement]
    return forward_logits + reverse_logits


class StrandAverage(NamedTuple):
    log_probs: torch.Tensor  # (B, L, V): log-probabilities of the token AT each position
    embeddings: torch.Tensor  # (B, L, d_model)


def token_log_probs(model, tokens: torch.Tensor, chunk_size: int | None = None):
    """One strand: per-position log-probabilities of the token at that position, and embeddings.

    Masked models predict position l from logits at l. Causal models predict position l from the
    logits at l - 1, so position 0 has no prediction: its row is NaN.
    """
    if chunk_size is None:
        logits, hidden = model(tokens, return_embeddings=True)
    else:
        logits, hidden = model.forward_chunked(tokens, chunk_size, return_embeddings=True)
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # (B, L, V)
    if model.config.objective == "causal":
        first = torch.full_like(log_probs[:, :1], float("nan"))
        log_probs = torch.cat([first, log_probs[:, :-1]], dim=1)
    return log_probs, hidden


def rc_average(model, tokens: torch.Tensor, chunk_size: int | None = None) -> StrandAverage:
    """Average a model's outputs over the two strands of `tokens` `(B, L)`.

    The model runs on x and on RC(x); the RC run's outputs are mapped back to x's positions and
    vocabulary (position L-1-l -> l, each base id -> its complement) and averaged with x's run:
    - `log_probs[b, l, v]`: the mean of the two strands' log-probabilities that position l holds
      base v (so an LLR read from it is the mean of the two strands' LLRs). It is NOT
      renormalised (a mean of log-probabilities is a log geometric mean). For a masked model
      both strands condition on the whole window. For a causal model the forward strand gives
      log P(x_l | x_<l) and the reverse strand log P(x_l | x_>l); position 0 has only the
      reverse strand's value and position L-1 only the forward strand's.
    - `embeddings[b, l]`: the mean of the per-position embeddings of position l from both runs.
    The result is symmetric: `rc_average(RC(x))` is `rc_average(x)` mapped the same way.
    `chunk_size` runs both strands through `model.forward_chunked` (exact, bounded memory).
    """
    complement = complement_permutation(model.config.vocab_size, device=tokens.device,
                                        vocabulary=model.config.tokenizer.vocabulary())
    forward_lp, forward_emb = token_log_probs(model, tokens, chunk_size)
    reverse_lp, reverse_emb = token_log_probs(model, complement[tokens.long()].flip(-1), chunk_size)
    reverse_lp = reverse_lp.flip(1)[..., complement]  # back to x's positions and bases
    reverse_emb = reverse_emb.flip(1)
    both = torch.stack([forward_lp, reverse_lp])  # (2, B, L, V)
    log_probs = both.nanmean(dim=0)  # one strand's value where the other has no prediction
    embeddings = 0.5 * (forward_emb.float() + reverse_emb.float())
    return StrandAverage(log_probs, embeddings)
