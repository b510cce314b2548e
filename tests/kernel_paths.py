"""A tiny model through the Triton kernels against the PyTorch reference path (tests/models).

`DEVICE` is where both paths run: on a GPU, CUDA (compiled Triton takes no CPU tensors); else
the CPU, with the kernels in the Triton interpreter (conftest.py). The path is chosen by
GENOSSM_KERNELS, so a test sets it with monkeypatch between the two calls of
`logits_and_grads`.
"""

from __future__ import annotations

import torch

from genossm.models.config import ModelConfig
from genossm.models.lm import build_model

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def tiny_model(**config) -> torch.nn.Module:
    """A seeded model of `ModelConfig(**config)` on DEVICE, embeddings scaled up from the 0.02
    init so that differences between the paths show in the logits."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(**config))
    with torch.no_grad():
        model.embedding.weight.normal_(0, 1.0)
    return model.to(DEVICE)


def tokens(length: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 5, (1, length), generator=torch.Generator().manual_seed(seed)).to(DEVICE)


def logits_and_grads(model, inputs):
    """Logits and every parameter's gradient of a fixed random projection of them."""
    model.zero_grad(set_to_none=True)
    logits = model(inputs)
    weights = torch.randn(logits.shape, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    (logits * weights).sum().backward()
    return logits.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}
