"""Training targets for the two objectives, made from a window of tokens.

Targets are aligned with the model's logits: `targets[t]` is what the logits at position t should
predict, `IGNORE` where nothing is predicted. Only bases (A, C, G, T) are ever targets: an N or
a padding position carries no information to learn.
"""

from __future__ import annotations

import numpy as np

from genossm.tokenizer import MASK, NUM_BASES

IGNORE = -100  # torch.nn.functional.cross_entropy's default ignore_index


def causal_targets(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Next-base prediction: the logits at t predict token t+1; the last position predicts nothing."""
    targets = np.full(tokens.shape, IGNORE, dtype=np.int64)
    targets[..., :-1] = tokens[..., 1:]
    targets[targets >= NUM_BASES] = IGNORE
    return tokens.astype(np.int64), targets


def masked_targets(tokens: np.ndarray, rng: np.random.Generator, mask_fraction: float = 0.15,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """BERT-style masking: pick `mask_fraction` of the bases; of those 80% become MASK, 10% a
    random base and 10% stay, and only the picked positions are targets."""
    inputs = tokens.astype(np.int64)
    is_base = inputs < NUM_BASES
    picked = (rng.random(inputs.shape) < mask_fraction) & is_base
    targets = np.where(picked, inputs, IGNORE)
    action = rng.random(inputs.shape)
    inputs = np.where(picked & (action < 0.8), MASK, inputs)
    random_bases = rng.integers(0, NUM_BASES, size=inputs.shape)
    inputs = np.where(picked & (action >= 0.8) & (action < 0.9), random_bases, inputs)
    return inputs, targets


def make_example(tokens: np.ndarray, objective: str, rng: np.random.Generator,
                 mask_fraction: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    if objective == "causal":
        return causal_targets(tokens)
    if objective == "masked":
        return masked_targets(tokens, rng, mask_fraction)
    raise ValueError(f"objective must be 'causal' or 'masked', got {objective!r}")
