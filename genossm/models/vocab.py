"""A model with its own vocabulary, seen through genossm's ids by the inference pipelines.

genossm's windows, masking and scoring work in genossm's ids (A C G T N MASK PAD = 0..6) and read
base probabilities from the first four logits. A converted model keeps its peer's ids (e.g.
HyenaDNA's and Caduceus' [CLS] [SEP] [BOS] [MASK] [PAD] [RESERVED] [UNK] A C G T N, padded to 16
rows), so `load_model(OUT)(peer_input_ids)` gives the peer's logits. `inference_view(model)`
returns what the commands run: for a model with genossm's vocabulary the model itself; otherwise
a `VocabularyView` that
- maps genossm's ids to the model's (`Vocabulary.from_genossm`),
- appends the tokens the model's tokenizer adds to every sequence (e.g. [SEP]) and drops their
  outputs again. Only for models that read the whole sequence (masked, bidirectional): a causal
  model's outputs at the bases cannot depend on tokens after them, so nothing is appended there,
  which keeps the causal fast paths (recurrent state, suffix reuse) exact and available;
- returns logits in genossm's vocabulary order (`Vocabulary.genossm_columns`), so the four base
  logits come first as everywhere else in genossm.
Sequences reach the model exactly as its own tokenizer encodes them, except that IUPAC
ambiguity codes, which genossm reads as N, reach it as N rather than as the peer's [UNK]
(`Vocabulary.encode` reproduces the peer tokenizer on raw text, IUPAC codes included).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn


class VocabularyView(nn.Module):
    """`model` (a DNALanguageModel with its own vocabulary) taking and giving genossm's ids."""

    def __init__(self, model):
        super().__init__()
        from genossm.models.config import TokenizerConfig
        from genossm.tokenizer import VOCAB_SIZE

        self.model = model
        vocabulary = model.config.tokenizer.vocabulary()
        device = next(model.parameters()).device
        self.register_buffer("to_model", torch.as_tensor(vocabulary.from_genossm, device=device), persistent=False)
        self.register_buffer("columns", torch.as_tensor(vocabulary.genossm_columns, device=device),
                             persistent=False)
        appended = vocabulary.append_ids if model.config.objective != "causal" else vocabulary.append_ids[:0]
        self.register_buffer("appended", torch.as_tensor(appended, device=device), persistent=False)
        # What the pipelines read: genossm's vocabulary, the model's shape and objective.
        self.config = dataclasses.replace(model.config, vocab_size=VOCAB_SIZE, tokenizer=TokenizerConfig())

    # ------------------------------------------------------------------ ids in, logits out
    def _ids(self, tokens: torch.Tensor) -> torch.Tensor:
        ids = self.to_model[tokens.long()]
        if len(self.appended) and ids.dim() == 2:
            ids = torch.cat([ids, self.appended.expand(ids.shape[0], -1)], dim=1)
        return ids

    def _out(self, logits: torch.Tensor, hidden: torch.Tensor, length: int):
        return logits[:, :length][..., self.columns], hidden[:, :length]

    def forward(self, tokens: torch.Tensor, return_embeddings: bool = False):
        logits, hidden = self._out(*self.model(self._ids(tokens), return_embeddings=True), tokens.shape[1])
        return (logits, hidden) if return_embeddings else logits

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.embed(self._ids(tokens))[:, :tokens.shape[1]]

    def forward_chunked(self, tokens: torch.Tensor, chunk_size: int, return_embeddings: bool = False):
        logits, hidden = self.model.forward_chunked(self._ids(tokens), chunk_size, return_embeddings=True)
        logits, hidden = self._out(logits, hidden, tokens.shape[1])
        return (logits, hidden) if return_embeddings else logits

    # ------------------------------------------------------------------ causal fast paths (nothing appended)
    @property
    def supports_recurrent_state(self) -> bool:
        return self.model.supports_recurrent_state

    @property
    def supports_suffix_cache(self) -> bool:
        return self.model.supports_suffix_cache

    def allocate_inference_state(self, batch: int, device=None, dtype=None):
        return self.model.allocate_inference_state(batch, device, dtype)

    def forward_with_state(self, tokens: torch.Tensor, state=None):
        logits, hidden, state = self.model.forward_with_state(self.to_model[tokens.long()], state)
        return logits[..., self.columns], hidden, state

    def step(self, token: torch.Tensor, state):
        logits, hidden, state = self.model.step(self.to_model[token.long()], state)
        return logits[..., self.columns], hidden, state

    def prefix_cache(self, tokens: torch.Tensor):
        logits, hidden, cache = self.model.prefix_cache(self.to_model[tokens.long()])
        return logits[..., self.columns], hidden, cache

    def forward_suffix(self, cache, tokens: torch.Tensor, starts, rows=None):
        logits, hidden = self.model.forward_suffix(cache, self.to_model[tokens.long()], starts, rows)
        return logits[..., self.columns], hidden


def inference_view(model):
    """`model` as genossm's pipelines use it: itself when it has genossm's vocabulary, else a
    `VocabularyView` (see the module docstring)."""
    if model.config.tokenizer.vocabulary().is_default:
        return model
    return VocabularyView(model)
